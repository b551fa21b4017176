"""The run configuration: a typed schema, YAML presets and dotted command-line overrides.

`load_config(path, overrides)` merges a YAML file (or a preset name from launch/configs/) onto the
schema's defaults, then `key=value` overrides; an unknown key or a value of the wrong type is a
`ConfigError` naming the key (and the file), never a crash later in a training step.

One tree: a section that is a package's configuration is that package's own type (rollout:
`rollout.engine_config.RolloutConfig`, teacher: `teacher_server.config.TeacherSettings`, learner:
`trainer.config.LearnerConfig`, curriculum: `curriculum.config.CurriculumConfig`), so each value
is defined once and handed down as part of its section; the other sections are defined here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from curriculum.config import CurriculumConfig
from rollout.engine_config import CPU_LINEAR_KINDS, RolloutConfig
from teacher_server.config import TeacherSettings
from trainer.config import LearnerConfig
from trainer.lr_schedule import SCHEDULES

PRESET_DIR = Path(__file__).parent / "configs"


# Settings that moved: an objective's options live in one place, trainer.objective_kwargs.
MOVED_KEYS: dict[str, str] = {
    "reward.dynamic_filtering": "trainer.objective_kwargs.filter_zero_variance",
    "reward.tempsamp_variant": "trainer.objective_kwargs.variant",
}


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the source."""


@dataclass
class ModelConfig:
    """Student and teacher model directories (ordinary Hugging Face directories)."""

    student: str = "artifacts/demo/models/qwen3_vl-student"
    teacher: str = "artifacts/demo/models/qwen3_vl-teacher"
    # Frozen reference of the KL penalty (GRPO / TempSamp-R1 with objective_kwargs.kl_coef > 0);
    # None = the initial student.
    reference: str | None = None
    freeze_vision: bool = False


@dataclass
class DataConfig:
    """Training and evaluation data, and how prompts and videos are built."""

    train: str = "artifacts/demo/data/train.json"
    val: str = "artifacts/demo/data/val.json"
    test: str = "artifacts/demo/data/test.json"
    format: str | None = None
    video_root: str | None = None
    prompt_style: str = "timelens"
    fps: float = 1.0
    max_frames: int = 64
    max_pixels: int = 128 * 32 * 32
    # Frames below this many pixels are scaled up to it (tvg.video_sampling.fit_frame_size):
    # e.g. the 64-px synthetic videos at 384 * 384 give video prompts of realistic length (144
    # vision tokens per 2-frame pair; benchmarks/model_ladder.py).
    min_pixels: int = 32 * 32
    lenient: bool = False
    # A directory every process of the run shares for decoded frames (the frame cache's disk
    # tier): the rollout engines, teacher workers and learner ranks on one node then decode each
    # video once instead of once each (each keeps its own memory tier in front). Relative paths
    # lie under out_dir, and such a run-scoped directory is deleted when the run ends; any other
    # path is kept, and runs may share it (entries are keyed by file, mtime, size and video
    # settings, so an edited video or other settings are decoded anew). Not size-bounded: point
    # it at a filesystem with room for the decoded frames (node-local storage such as /dev/shm
    # on clusters). None: each process decodes into its own memory cache.
    frame_cache_dir: str | None = None

    def video_settings(self) -> Any:
        """The video sampling settings (`tvg.video.VideoSettings`) this section describes."""
        from tvg.video import VideoSettings

        return VideoSettings(
            fps=self.fps,
            max_frames=self.max_frames,
            max_pixels=self.max_pixels,
            min_pixels=self.min_pixels,
        )


@dataclass
class TrainerConfig:
    """The objective and the loop's length (`steps`, and optionally a wall-clock `budget_s`
    and / or a learner-FLOPs `budget_flops`)."""

    # A registered objective or an alias (resolved once, when the config is loaded).
    objective: str = "opd"
    # The objective's options (its spec lists them: advantage, step and loss options).
    objective_kwargs: dict[str, Any] = field(default_factory=dict)
    prompts_per_step: int = 8
    # PPO-style reuse of each rollout batch: `ppo_epochs` passes over it, each split into
    # `ppo_mini_batches` optimizer updates (verl's ppo_epochs / ppo_mini_batch_size). With
    # 1 x 1 the batch is on-policy for its only update and a PPO clip never acts.
    ppo_epochs: int = 1
    ppo_mini_batches: int = 1
    steps: int = 100
    seed: int = 0
    budget_s: float | None = None
    # A learner-compute budget: the run ends with the step that brings the learner's forward and
    # backward FLOPs (the ledger's `learner_flops`, summed) to this many; null: none. With
    # `budget_s` too, whichever runs out first ends the run (and the cosine decay).
    budget_flops: float | None = None
    # Every N steps (0: never) measure the rollout-vs-learner log-prob mismatch and the entropy:
    # read from the update's own forward when the step is one update over the whole batch (no
    # cost), else from a forward pass of its own before the updates (ppo_mini_batches or
    # ppo_epochs > 1).
    mismatch_every: int = 1
    # In-process recoveries from a dead or stuck learner rank (restart the learner group, rewind
    # to the last checkpoint) before the run stops with an error.
    max_recoveries: int = 2
    # 0: strictly on-policy (each step samples with the weights the learner just synced).
    # 1: one step off-policy: step t+1's batch samples on the rollout engines while step t is
    # scored and trained, from the weights one update older (recorded as `staleness` in the
    # ledger). Needs rollout engines of their own (not rollout.colocate).
    off_policy_steps: int = 0


@dataclass
class RewardConfig:
    """Rewards (GRPO / TempSamp-R1 train on them; every objective logs them)."""

    format_weight: float = 0.0
    eos_weight: float = 0.0
    distance_weighted: bool = False


@dataclass
class ResourcesConfig:
    """Ray CPUs reserved per actor. The driver runs the phases one after another, so on a single
    small machine the actors can share the cores (0 = reserve nothing); on a cluster reserve real
    CPUs/GPUs so that Ray places the pools on their own resources."""

    num_cpus: int | None = None
    rollout_cpus: float = 0.0
    teacher_cpus: float = 0.0
    learner_cpus: float = 0.0
    rollout_gpus: float = 0.0
    teacher_gpus: float = 0.0
    learner_gpus: float = 0.0


@dataclass
class EvalConfig:
    """Periodic greedy evaluation on the validation split."""

    every_steps: int = 25
    max_samples: int | None = None
    max_new_tokens: int = 32


@dataclass
class CheckpointConfig:
    """Checkpoints: how often, how many to keep."""

    every_steps: int = 50
    keep_last: int = 2
    keep_best: bool = False
    best_metric: str = "mIoU"


@dataclass
class FaultConfig:
    """Fault injection to rehearse failures (docs/FAULTS.md): `kill` = "KIND@STEP", KIND one of
    teacher | rollout | learner | driver, STEP the 1-based training step; None = no fault."""

    kill: str | None = None


@dataclass
class PoolPlacementConfig:
    """Where one actor pool goes on a Ray cluster (placement.learner / rollout / teacher /
    reference; launch/placement.py). Each actor is one placement-group bundle: its CPUs / GPUs
    (resources.*) plus these custom resources, on nodes matching these labels."""

    # Custom Ray resources each of the pool's bundles reserves besides its CPUs / GPUs, e.g.
    # {teacher_node: 1}: the pool runs only on nodes started with that resource
    # (`ray start --resources='{"teacher_node": 8}'`).
    resources: dict[str, float] = field(default_factory=dict)
    # Node labels (Ray label selectors) the pool's nodes must carry, e.g. {vopd-pool: teacher}
    # for nodes started with `ray start --labels vopd-pool=teacher` (values: x, !x, in(a,b)).
    node_labels: dict[str, str] = field(default_factory=dict)
    # layout=per_pool only: the pool's group strategy, PACK (default), SPREAD, STRICT_PACK or
    # STRICT_SPREAD (e.g. learner ranks on distinct nodes).
    strategy: str | None = None


@dataclass
class PlacementConfig:
    """How the actor pools are placed on the nodes of a Ray cluster (docs/CLUSTER.md)."""

    # none: no placement group, Ray's default scheduling (one machine) | packed: one group, as
    # few nodes as possible | spread: one group, as many nodes as possible | per_pool: one
    # group per pool (its strategy); per-pool resources / node labels keep pools apart.
    layout: str = "none"
    # How long the groups may take to be placed (at start-up, and again after a node died).
    timeout_s: float = 300.0
    learner: PoolPlacementConfig = field(default_factory=PoolPlacementConfig)
    rollout: PoolPlacementConfig = field(default_factory=PoolPlacementConfig)
    teacher: PoolPlacementConfig = field(default_factory=PoolPlacementConfig)
    reference: PoolPlacementConfig = field(default_factory=PoolPlacementConfig)


@dataclass
class RunConfig:
    """Everything a `vopd train` run needs."""

    out_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    fault: FaultConfig = field(default_factory=FaultConfig)

    def frame_cache_path(self) -> str | None:
        """The absolute path of the shared frame-cache directory (`data.frame_cache_dir`, a
        relative one under out_dir), or None when the run has none."""
        if self.data.frame_cache_dir is None:
            return None
        return str(_absolute(Path(self.out_dir) / Path(self.data.frame_cache_dir).expanduser()))

    def frame_cache_is_run_scoped(self) -> bool:
        """Whether the shared frame-cache directory is the run's own (under out_dir, deleted when
        the run ends)."""
        path = self.frame_cache_path()
        return path is not None and Path(path).is_relative_to(_absolute(Path(self.out_dir)))


def _absolute(path: Path) -> Path:
    """`path` made absolute with its `..` and `.` parts resolved lexically (no symlinks)."""
    return Path(os.path.normpath(path.absolute()))


def resolve_config_path(path_or_preset: str) -> Path:
    """A YAML path, or the preset of that name in launch/configs/ (e.g. "opd")."""
    path = Path(path_or_preset)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{path_or_preset}.yaml"
    if preset.is_file():
        return preset
    known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    raise ConfigError(f"config {path_or_preset!r} is neither a file nor a preset {known}")


def read_yaml_config(path: Path) -> Any:
    """A config file as an OmegaConf mapping; unreadable text, invalid YAML, a document that is
    not a mapping, or a section given as a scalar is a `ConfigError` naming the file (and line or
    key). YAML is read with OmegaConf's safe loader: tags such as !!python/object are refused."""
    import yaml
    from omegaconf import DictConfig, ListConfig, OmegaConf

    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc}") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(
            f"{path}: expected a mapping of sections (model:, data:, trainer:, ...), "
            f"got {'a list' if isinstance(loaded, ListConfig) else type(loaded).__name__}"
        )
    sections = {f.name for f in fields(RunConfig) if f.name != "out_dir"}
    for key, value in OmegaConf.to_container(loaded, resolve=False).items():
        if key in sections and value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"{path}: key {key!r}: expected a section (a mapping of settings), "
                f"got {type(value).__name__} {value!r}"
            )
    return loaded


def _parse_override(override: str) -> Any:
    """One `key=value` override as an OmegaConf mapping (the value is read as YAML)."""
    import yaml
    from omegaconf import OmegaConf

    key, sep, _ = override.partition("=")
    if not sep:
        raise ConfigError(f"override {override!r} is not of the form key=value")
    if not key.strip():
        raise ConfigError(f"override {override!r} has an empty key")
    if key.strip() in {f.name for f in fields(RunConfig) if f.name != "out_dir"}:
        raise ConfigError(
            f"override {override!r}: {key.strip()!r} is a section; set one of its fields "
            f"({key.strip()}.<field>=value)"
        )
    try:
        return OmegaConf.from_dotlist([override])
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"override {override!r}: the value is not valid YAML: {problem}"
        ) from None


def load_config(path_or_preset: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Merge defaults, a YAML file or preset, and `key=value` overrides into a checked RunConfig."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = OmegaConf.structured(RunConfig)
    source = "defaults"
    try:
        merged = schema
        if path_or_preset:
            path = resolve_config_path(path_or_preset)
            source = str(path)
            merged = OmegaConf.merge(merged, read_yaml_config(path))
        if overrides:
            source = "command-line overrides"
            for override in overrides:
                merged = OmegaConf.merge(merged, _parse_override(override))
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        message = str(exc).splitlines()[0]
        if key in MOVED_KEYS:
            message = f"this setting is now {MOVED_KEYS[key]}"
        raise ConfigError(f"{source}: key {key!r}: {message}") from None
    assert isinstance(config, RunConfig)
    validate_config(config)
    return config


def validate_config(config: RunConfig) -> None:
    """Check value ranges and choices that the types alone cannot express."""
    checks: list[tuple[bool, str]] = [
        (config.rollout.engine in ("vllm", "hf"), "rollout.engine must be 'vllm' or 'hf'"),
        (config.rollout.n >= 1, "rollout.n must be >= 1"),
        (
            math.isfinite(config.rollout.temperature) and config.rollout.temperature > 0,
            "rollout.temperature must be > 0 and finite",
        ),
        (0 < config.rollout.top_p <= 1, "rollout.top_p must be in (0, 1]"),
        (config.rollout.num_workers >= 1, "rollout.num_workers must be >= 1"),
        (
            config.rollout.weight_transport in ("object_store", "collective"),
            "rollout.weight_transport must be 'object_store' or 'collective'",
        ),
        (
            config.rollout.cpu_linear in CPU_LINEAR_KINDS,
            f"rollout.cpu_linear must be one of {CPU_LINEAR_KINDS}",
        ),
        (config.teacher.backend in ("vllm", "hf", "remote"), "teacher.backend: vllm|hf|remote"),
        (config.learner.num_ranks >= 1, "learner.num_ranks must be >= 1"),
        (config.learner.zero_stage in (0, 1, 2, 3), "learner.zero_stage must be 0-3"),
        (config.learner.precision in ("fp32", "bf16"), "learner.precision must be fp32|bf16"),
        (math.isfinite(config.learner.lr) and config.learner.lr > 0, "learner.lr must be > 0"),
        (len(config.learner.betas) == 2, "learner.betas must have two values"),
        (config.trainer.steps >= 1, "trainer.steps must be >= 1"),
        (config.trainer.prompts_per_step >= 1, "trainer.prompts_per_step must be >= 1"),
        (config.data.fps > 0, "data.fps must be > 0"),
        (config.checkpoint.keep_last >= 1, "checkpoint.keep_last must be >= 1"),
    ]
    for ok, message in checks + _range_checks(config) + _curriculum_checks(config.curriculum):
        if not ok:
            raise ConfigError(message)
    if config.teacher.backend == "remote" and not config.teacher.url:
        raise ConfigError("teacher.url is required when teacher.backend=remote")
    _check_objective(config)
    _check_colocated_rollout(config)
    _check_off_policy(config)
    _check_fault(config)
    _check_placement(config)
    _check_frame_cache_dir(config)


def _check_frame_cache_dir(config: RunConfig) -> None:
    """data.frame_cache_dir: not empty, and not out_dir itself or a folder holding it (a
    run-scoped directory is deleted when the run ends)."""
    if config.data.frame_cache_dir is None:
        return
    if not config.data.frame_cache_dir.strip():
        raise ConfigError("data.frame_cache_dir must be a directory path or null, not empty")
    path = Path(str(config.frame_cache_path()))
    out_dir = _absolute(Path(config.out_dir))
    if out_dir.is_relative_to(path):
        raise ConfigError(
            f"data.frame_cache_dir {config.data.frame_cache_dir!r} is out_dir or holds it; "
            "give it a folder of its own (e.g. 'frame_cache', under out_dir)"
        )


def _check_colocated_rollout(config: RunConfig) -> None:
    """rollout.colocate: one engine per learner rank, and no setting of a rollout pool that the
    layout does not start (its own CPUs / GPUs)."""
    rollout, res = config.rollout, config.resources
    if not rollout.colocate:
        return
    if rollout.num_workers != config.learner.num_ranks:
        raise ConfigError(
            f"rollout.colocate: each learner rank owns one rollout engine, so rollout.num_workers "
            f"({rollout.num_workers}) must equal learner.num_ranks ({config.learner.num_ranks})"
        )
    if rollout.weight_transport != "object_store":
        raise ConfigError(
            f"rollout.colocate: each rank hands its weights to its own engine in place; "
            f"rollout.weight_transport={rollout.weight_transport!r} would change nothing"
        )
    if res.rollout_cpus or res.rollout_gpus:
        raise ConfigError(
            "rollout.colocate: the engines run inside the learner ranks, which hold "
            "resources.learner_cpus / learner_gpus; resources.rollout_cpus / rollout_gpus "
            f"({res.rollout_cpus} / {res.rollout_gpus}) would change nothing"
        )


def _check_off_policy(config: RunConfig) -> None:
    """trainer.off_policy_steps=1 samples the next batch on the rollout engines while the
    current one trains: it needs an objective that samples, on engines of their own."""
    from trainer.objectives.registry import get_objective_spec

    if not config.trainer.off_policy_steps:
        return
    spec = get_objective_spec(config.trainer.objective)
    if not spec.samples or spec.teacher == "answers":
        raise ConfigError(
            f"trainer.off_policy_steps: objective {spec.name!r} samples nothing from the "
            "student, so there is no next batch to sample ahead"
        )
    if config.rollout.colocate:
        raise ConfigError(
            "trainer.off_policy_steps: with rollout.colocate each engine lives in a learner rank, "
            "which cannot sample while it trains; use the separate layout"
        )
    if config.teacher.stream:
        raise ConfigError(
            "trainer.off_policy_steps: teacher.stream would change nothing; one step off-policy, "
            "the teacher already scores step t while step t+1 samples"
        )


def _check_placement(config: RunConfig) -> None:
    """The placement section: a known layout, and no key that would change nothing (pool
    settings without a layout, a pool the run does not start, a bundle reserving nothing)."""
    from launch.placement import check_placement

    problems = check_placement(config)
    if problems:
        raise ConfigError("; ".join(problems))


def _range_checks(config: RunConfig) -> list[tuple[bool, str]]:
    """Counts, periods and limits that would otherwise fail later, some inside a training step
    (a period of 0 is a division by zero after the first update, a timeout of 0 fails the first
    rollout, max_new_tokens=0 the first sampling call)."""
    trainer, rollout, teacher = config.trainer, config.rollout, config.teacher
    budget = trainer.budget_s
    flops_budget = trainer.budget_flops
    cpus = config.resources.num_cpus
    return [
        (config.eval.every_steps >= 1, "eval.every_steps must be >= 1"),
        (config.eval.max_new_tokens >= 1, "eval.max_new_tokens must be >= 1"),
        (config.checkpoint.every_steps >= 1, "checkpoint.every_steps must be >= 1"),
        (trainer.mismatch_every >= 0, "trainer.mismatch_every must be >= 0 (0 = never)"),
        (budget is None or budget > 0, "trainer.budget_s must be > 0 (or null: no budget)"),
        (
            flops_budget is None or flops_budget > 0,
            "trainer.budget_flops must be > 0 (or null: no budget)",
        ),
        (rollout.max_new_tokens >= 1, "rollout.max_new_tokens must be >= 1"),
        (rollout.max_model_len >= 1, "rollout.max_model_len must be >= 1"),
        (rollout.weight_bucket_mb >= 1, "rollout.weight_bucket_mb must be >= 1"),
        (rollout.timeout_s > 0, "rollout.timeout_s must be > 0"),
        (teacher.num_workers >= 1, "teacher.num_workers must be >= 1"),
        (teacher.timeout_s > 0, "teacher.timeout_s must be > 0"),
        (config.learner.timeout_s > 0, "learner.timeout_s must be > 0"),
        (trainer.max_recoveries >= 0, "trainer.max_recoveries must be >= 0"),
        (
            trainer.off_policy_steps in (0, 1),
            "trainer.off_policy_steps must be 0 (on-policy) or 1 (one step off-policy)",
        ),
        (trainer.ppo_epochs >= 1, "trainer.ppo_epochs must be >= 1"),
        (trainer.ppo_mini_batches >= 1, "trainer.ppo_mini_batches must be >= 1"),
        (config.learner.micro_batch_size >= 1, "learner.micro_batch_size must be >= 1"),
        (config.learner.threads >= 1, "learner.threads must be >= 1"),
        (config.learner.warmup_steps >= 0, "learner.warmup_steps must be >= 0"),
        (
            config.learner.schedule in SCHEDULES,
            f"learner.schedule must be 'constant' or 'cosine', got {config.learner.schedule!r}",
        ),
        (0.0 <= config.learner.min_lr_ratio <= 1.0, "learner.min_lr_ratio must be in [0, 1]"),
        (config.data.max_frames >= 2, "data.max_frames must be >= 2"),
        (config.data.max_pixels >= 1, "data.max_pixels must be >= 1"),
        (
            1 <= config.data.min_pixels <= config.data.max_pixels,
            "data.min_pixels must be in [1, data.max_pixels]",
        ),
        (cpus is None or cpus >= 0, "resources.num_cpus must be >= 0 (or null: all cores)"),
    ]


def _check_objective(config: RunConfig) -> None:
    """The objective must be registered (an alias is resolved here, once), its options known and
    valid (a dry run of its advantage and loss on a tiny batch), and the run shaped as it needs
    (groups of its minimum size)."""
    from trainer.objectives.registry import UNION_ONLY_OPTIONS, get_objective_spec

    trainer = config.trainer
    try:
        spec = get_objective_spec(trainer.objective)
    except ValueError as exc:
        raise ConfigError(f"trainer.objective: {exc}") from None
    trainer.objective = spec.name
    options = dict(trainer.objective_kwargs)
    unknown = sorted(set(options) - set(spec.options()))
    if unknown:
        raise ConfigError(
            f"trainer.objective_kwargs: unknown option(s) {unknown} for objective "
            f"{spec.name!r}; known: {', '.join(spec.options())}"
        )
    inert = spec.inert_options(options)
    if spec.teacher == "full" and config.teacher.top_k <= 0:
        inert += [
            f"{name} (acts only on the union-of-top-k form: teacher.top_k > 0)"
            for name in options
            if name in UNION_ONLY_OPTIONS
        ]
    if inert:
        raise ConfigError(
            f"trainer.objective_kwargs for objective {spec.name!r}: option(s) that would change "
            f"nothing here: {'; '.join(inert)}"
        )
    try:
        dry_run_objective(spec.name, options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"trainer.objective_kwargs {options} for objective {spec.name!r}: {exc}"
        ) from None
    if config.teacher.colocate:
        if spec.teacher not in ("sampled", "topk", "full"):
            raise ConfigError(
                f"teacher.colocate: objective {spec.name!r} reads no teacher log-probs "
                f"(teacher signal {spec.teacher!r}); nothing to co-locate"
            )
        if config.teacher.backend == "remote":
            raise ConfigError("teacher.colocate: a remote teacher cannot run on the learner ranks")
    if config.teacher.stream:
        if spec.teacher not in ("sampled", "topk", "full") or config.teacher.colocate:
            raise ConfigError(
                f"teacher.stream: objective {spec.name!r} with teacher.colocate="
                f"{config.teacher.colocate} has no teacher pool scoring the rollout; nothing "
                "to stream"
            )
        if spec.ground_truth != "none":
            raise ConfigError(
                f"teacher.stream: objective {spec.name!r} adds ground-truth rows after the "
                "rollout; they cannot be scored while it samples"
            )
    if spec.samples and config.rollout.n < spec.min_group_size:
        raise ConfigError(
            f"objective {spec.name!r} learns from groups of >= {spec.min_group_size} sampled "
            f"completions per prompt (a group of one has advantage 0); rollout.n="
            f"{config.rollout.n}"
        )


def dry_run_objective(objective: str, options: dict[str, Any]) -> None:
    """Run the objective's advantage and loss with `options` on a tiny batch (two groups of two
    rows, every input field filled), so that a bad option value fails when the config is loaded
    instead of inside the first training step."""
    import torch

    from trainer.objectives.registry import ObjectiveInputs, get_objective

    gen = torch.Generator().manual_seed(0)
    batch, length, vocab = 4, 3, 5
    rows = torch.log_softmax(torch.randn(batch, length, vocab, generator=gen), -1)
    teacher = torch.log_softmax(torch.randn(batch, length, vocab, generator=gen), -1)
    tokens = torch.zeros(batch, length, 1, dtype=torch.long)
    top_lp, top_ids = teacher.topk(2, -1)
    logprobs = rows.gather(-1, tokens)[..., 0]
    inputs = ObjectiveInputs(
        logprobs=logprobs,
        mask=torch.ones(batch, length),
        old_logprobs=logprobs.detach(),
        teacher_logprobs=teacher.gather(-1, tokens)[..., 0],
        ref_logprobs=logprobs.detach() - 0.1,
        rewards=torch.tensor([0.0, 1.0, 0.5, 0.2]),
        group_ids=torch.tensor([0, 0, 1, 1]),
        is_ground_truth=torch.tensor([False, True, False, True]),
        student_logprob_rows=rows,
        teacher_topk_ids=top_ids,
        teacher_topk_logprobs=top_lp,
    )
    output = get_objective(objective)(inputs, **options)
    if not bool(torch.isfinite(output.loss)):
        raise ValueError(f"the options give a non-finite loss ({float(output.loss)})")


def _check_fault(config: RunConfig) -> None:
    """`fault.kill` must be KIND@STEP, within the run, and name a phase the objective has."""
    from launch.faults import parse_fault
    from trainer.objectives.registry import get_objective_spec

    text = config.fault.kill
    if text is None:
        return
    try:
        spec = parse_fault(text)
    except ValueError as exc:
        raise ConfigError(f"fault.kill: {exc}") from None
    objective = config.trainer.objective
    if spec.step > config.trainer.steps:
        raise ConfigError(
            f"fault.kill={text}: step {spec.step} is after the run's last step "
            f"(trainer.steps={config.trainer.steps})"
        )
    objective_spec = get_objective_spec(objective)
    if spec.kind == "teacher" and not objective_spec.needs_teacher:
        raise ConfigError(f"fault.kill={text}: objective {objective!r} has no teacher phase")
    if spec.kind == "rollout" and not objective_spec.samples:
        raise ConfigError(
            f"fault.kill={text}: objective {objective!r} samples nothing (no rollout phase)"
        )


def _curriculum_checks(c: CurriculumConfig) -> list[tuple[bool, str]]:
    """Value checks of the curriculum section."""
    return [
        (c.kind in ("uniform", "tvdf", "difficulty"), "curriculum.kind: uniform|tvdf|difficulty"),
        (
            c.rule in ("top_k", "uniform", "bucket", "gaussian"),
            "curriculum.rule: top_k|uniform|bucket|gaussian",
        ),
        (0.0 <= c.tau_teacher <= 1.0, "curriculum.tau_teacher must be in [0, 1]"),
        (c.teacher_k >= 1, "curriculum.teacher_k must be >= 1"),
        (
            c.teacher_k == 1 or c.teacher_temperature > 0,
            "curriculum.teacher_temperature must be > 0 when teacher_k > 1",
        ),
        (c.buckets >= 1, "curriculum.buckets must be >= 1"),
        (c.gaussian_sigma > 0, "curriculum.gaussian_sigma must be > 0"),
        (c.difficulty_sigma > 0, "curriculum.difficulty_sigma must be > 0"),
        (c.difficulty_bins >= 1, "curriculum.difficulty_bins must be >= 1"),
        (c.max_new_tokens >= 1, "curriculum.max_new_tokens must be >= 1"),
        (c.batch_size >= 1, "curriculum.batch_size must be >= 1"),
        (c.num_workers >= 1, "curriculum.num_workers must be >= 1"),
        (c.refresh in ("none", "rounds", "online"), "curriculum.refresh: none|rounds|online"),
        (
            c.refresh != "online" or c.refresh_every >= 1,
            "curriculum.refresh_every (K) must be >= 1 when curriculum.refresh=online",
        ),
    ]


def config_to_yaml(config: RunConfig) -> str:
    """The resolved configuration as YAML (saved beside every run)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(config))
