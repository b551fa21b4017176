"""`vopd compare`: objectives head to head from the same student, data order, seed and hardware.

Each arm (an objective, optionally with the TVDF curriculum: `opd+tvdf`) is a preset-shaped set of
overrides on one base config, with its own protocol (prompts per step, samples per prompt, ...;
`CompareSettings.arm_overrides` changes one arm). Every arm first gets a learning-rate sweep (the
first seed, the sweep budget; the best final validation mIoU wins, and a sweep whose candidates do
not separate is flagged and, with `sweep_extend`, rerun once at a longer budget), then runs once
per seed under the same budget — wall-clock of training (evaluation excluded) or samples seen.
Runs live in `<out>/runs` and `<out>/sweep`; a finished run (its summary.json written with the
same config) is never rerun, an interrupted one resumes from its last checkpoint. The report
(launch.compare_report) is rebuilt from the ledgers at the end.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_OBJECTIVES = ("opd", "opd_full_rkl", "grpo", "tempsamp", "sft", "opd+tvdf")
TVDF_SUFFIX = "+tvdf"
# Where every arm starts (with prepared demo assets): the warm-started student at the blind floor,
# or the competent student (val mIoU at 40-50% of the teacher's gain over the floor).
START_POINTS = ("floor", "competent")


@dataclass(frozen=True)
class ArmSpec:
    """One arm: the overrides that turn the base config into it, its lr sweep, and what it is."""

    name: str
    overrides: tuple[str, ...]
    lrs: tuple[float, ...]
    notes: str
    # `ARM@noiseNN`: the share of training records whose span is corrupted (None: clean labels).
    label_noise: float | None = None


# GRPO's remedies (docs/OBJECTIVES.md §2 and the prototype's notes in docs/GENERATED_DATA.md): a
# format and an end-of-sequence reward next to the IoU, and DAPO's dynamic filtering of groups
# without signal. No KL to a reference (TimeLens's beta = 0: a KL of 0.04 anchored GRPO to its
# start in earlier rounds); `--set "grpo:trainer.objective_kwargs={kl_coef: 0.04,
# filter_zero_variance: true}"` puts TRL's penalty back. 2 prompts x 8 samples = 16 completions
# per step, the OPD arms' 16 prompts x 1.
_RL_REMEDIES = (
    "reward.format_weight=0.2",
    "reward.eos_weight=0.2",
    "trainer.objective_kwargs={filter_zero_variance: true}",
)
ARMS: dict[str, ArmSpec] = {
    "opd": ArmSpec(
        "opd",
        ("trainer.objective=opd", "trainer.prompts_per_step=16", "rollout.n=1"),
        (1e-4, 3e-4, 1e-3),
        "Video-OPD's sampled-token estimator r_t = log pi_T - log pi_S (the paper's form)",
    ),
    "opd_full_rkl": ArmSpec(
        "opd_full_rkl",
        ("trainer.objective=opd_full_rkl", "trainer.prompts_per_step=16", "rollout.n=1"),
        (3e-4, 1e-3, 2e-3),
        "OPD with the exact reverse KL over the vocabulary at every student-visited position",
    ),
    "grpo": ArmSpec(
        "grpo",
        ("trainer.objective=grpo", "trainer.prompts_per_step=2", "rollout.n=8", *_RL_REMEDIES),
        (1e-4, 3e-4, 1e-3),
        "GRPO, G = 8, IoU reward + format 0.2 + end-of-sequence 0.2, PPO clip 0.2, no KL to a "
        "reference (TimeLens), dynamic filtering of groups without signal",
    ),
    "tempsamp": ArmSpec(
        "tempsamp",
        ("trainer.objective=tempsamp", "trainer.prompts_per_step=2", "rollout.n=7", *_RL_REMEDIES),
        (1e-4, 3e-4, 1e-3),
        "TempSamp-R1: 7 sampled + 1 ground-truth row per group, soft reward shaping (tau 0.8), "
        "the same remedies as GRPO",
    ),
    "sft": ArmSpec(
        "sft",
        ("trainer.objective=sft", "trainer.prompts_per_step=16", "rollout.n=1"),
        (1e-3, 2e-3),
        "supervised training on the ground-truth answers (the control arm; needs labels)",
    ),
    "seqkd": ArmSpec(
        "seqkd",
        ("trainer.objective=seqkd", "trainer.prompts_per_step=16", "rollout.n=1"),
        (1e-3, 2e-3),
        "sequence-level KD: supervised training on the teacher's greedy answers (generated when "
        "a prompt is first drawn, cached; the generation is on the clock); needs no labels",
    ),
    "seqkd_sampled": ArmSpec(
        "seqkd_sampled",
        (
            "trainer.objective=seqkd",
            "trainer.prompts_per_step=16",
            "rollout.n=1",
            "trainer.objective_kwargs={teacher_samples: 4, teacher_temperature: 1.0}",
        ),
        (1e-3, 2e-3),
        "sequence-level KD on 4 sampled teacher answers per prompt (temperature 1)",
    ),
    "opd_topk_tail_rkl": ArmSpec(
        "opd_topk_tail_rkl",
        (
            "trainer.objective=opd_topk_tail_rkl",
            "teacher.top_k=20",
            "trainer.prompts_per_step=16",
            "rollout.n=1",
        ),
        (3e-4, 1e-3, 2e-3),
        "OPD with the teacher's top-20 plus a tail bucket (reverse KL; 20 values per position)",
    ),
}
_TVDF_OVERRIDES = (
    "curriculum.kind=tvdf",
    "curriculum.teacher_k=1",  # greedy teacher predictions: one offline pass over the train split
    "curriculum.subset_size=800",
)


def arm_spec(name: str) -> ArmSpec:
    """The arm called `name`: a key of ARMS, `<arm>+tvdf` (the arm on the TVDF subset), either
    with `@noiseNN` (trained on a copy of the training annotations in which NN% of the records
    carry a corrupted span; only for arms that read training labels)."""
    labelled_name, noise = split_noise(name)
    base_name = labelled_name.removesuffix(TVDF_SUFFIX)
    if base_name not in ARMS:
        known = [*ARMS, *(f"{a}{TVDF_SUFFIX}" for a in ARMS)]
        raise ValueError(
            f"unknown arm {name!r}; known: {', '.join(known)} (each optionally with "
            f"{NOISE_SUFFIX}NN for NN% noisy training labels)"
        )
    base = ARMS[base_name]
    spec = base
    if labelled_name != base_name:
        spec = ArmSpec(
            labelled_name,
            (*base.overrides, *_TVDF_OVERRIDES),
            base.lrs,
            base.notes
            + "; TVDF curriculum (teacher-reliable, student-disagreeing samples, top 800)",
        )
    if noise is None:
        return spec
    if not arm_reads_labels(spec):
        raise ValueError(
            f"arm {name!r}: {base_name} trains without the training labels, so {NOISE_SUFFIX} "
            "would change nothing; label noise applies to arms that read labels (sft, grpo, "
            f"tempsamp, or any arm with {TVDF_SUFFIX})"
        )
    return ArmSpec(
        name,
        spec.overrides,
        spec.lrs,
        spec.notes + f"; trained on labels with {noise:.0%} of the training spans corrupted "
        f"(shift / shrink / swap, `vopd data corrupt` seed {NOISE_SEED}); evaluated on clean "
        "labels",
        label_noise=noise,
    )


# `ARM@noiseNN`: the arm on noisy training labels. One corrupted copy per share, made once with
# a fixed seed (the noise is a property of the data, the same for every run seed; nested: the
# records corrupted at 25% are among those at 50%).
NOISE_SUFFIX = "@noise"
NOISE_SEED = 0


def split_noise(name: str) -> tuple[str, float | None]:
    """`sft@noise25` -> ("sft", 0.25); a name without the suffix -> (name, None)."""
    head, sep, tail = name.partition("@")
    if not sep:
        return name, None
    digits = tail.removeprefix(NOISE_SUFFIX[1:])
    if not tail.startswith(NOISE_SUFFIX[1:]) or not digits.isdigit() or not 0 < int(digits) <= 100:
        raise ValueError(
            f"arm {name!r}: the suffix must be {NOISE_SUFFIX}NN, NN the percentage (1-100) of "
            "training records whose span is corrupted"
        )
    return head, int(digits) / 100


def arm_reads_labels(arm: ArmSpec) -> bool:
    """Whether an arm's training reads the training spans: its objective needs labels (rewards
    or targets), or its TVDF curriculum selects samples by them."""
    from launch.config import TrainerConfig
    from trainer.objectives.registry import get_objective_spec

    objective = next(
        (o.partition("=")[2] for o in arm.overrides if o.startswith("trainer.objective=")),
        TrainerConfig.objective,  # an arm that names none runs the config's default
    )
    return get_objective_spec(objective).needs_labels or "curriculum.kind=tvdf" in arm.overrides


def noisy_train_file(train: str, video_root: str | None, noise: float, out: Path) -> list[str]:
    """The overrides that train on a copy of `train` with `noise` of its spans corrupted
    (written once under `out/data`, with its sidecar listing every change; the same file on a
    re-run)."""
    from tvg.label_noise import corrupt_file

    source = Path(train)
    target = out / "data" / f"{source.stem}_noise{round(noise * 100)}{source.suffix}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        corrupt_file(source, target, share=noise, seed=NOISE_SEED)
    # Video paths stay relative to the clean file's root.
    root = video_root if video_root else str(source.parent)
    return [f"data.train={target}", f"data.video_root={root}"]


@dataclass(frozen=True)
class Budget:
    """How long each run lasts: `wallclock` seconds of training, `flops` of the learner's
    forward and backward passes, `samples` prompts seen, or `completions` (the report's
    completions view: sampled rows; for an arm that samples nothing, its training rows)."""

    kind: str
    value: float

    def overrides(self, prompts_per_step: int, completions_per_step: int = 0) -> list[str]:
        """Config overrides that apply the budget to an arm with this batch size (prompts per
        step; completions per step for a `completions` budget)."""
        if self.kind in ("samples", "completions"):
            per_step = prompts_per_step if self.kind == "samples" else completions_per_step
            if per_step < 1:
                raise ValueError(f"a {self.kind} budget needs the arm's {self.kind} per step")
            steps = max(1, math.ceil(self.value / per_step))
            return [f"trainer.steps={steps}", "trainer.budget_s=null", "trainer.budget_flops=null"]
        if self.kind == "flops":
            return [
                "trainer.steps=1000000",
                "trainer.budget_s=null",
                f"trainer.budget_flops={self.value}",
            ]
        return [
            "trainer.steps=1000000",
            f"trainer.budget_s={self.value}",
            "trainer.budget_flops=null",
        ]

    def __str__(self) -> str:
        if self.kind in ("samples", "completions"):
            return f"{self.kind}={int(self.value)}"
        if self.kind == "flops":
            return f"flops={self.value:.4g}"
        return f"wallclock={self.value:g}s"


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_FLOPS_UNITS = {"g": 1e9, "t": 1e12, "p": 1e15}
BUDGET_KINDS = ("wallclock", "flops", "samples", "completions")


def parse_budget(text: str) -> Budget:
    """`wallclock=300` (seconds; `5m`, `1h` also work), `flops=3.3e12` (learner FLOPs; `3.3T`,
    `500G`, `1P` also work), `samples=4000` or `completions=4800`."""
    kind, sep, value = text.partition("=")
    kind = kind.strip()
    if not sep or kind not in BUDGET_KINDS:
        raise ValueError(
            f"budget {text!r} must be wallclock=SECONDS, flops=N, samples=N or completions=N"
        )
    value = value.strip().lower()
    scale = 1.0
    units = {"wallclock": _UNITS, "flops": _FLOPS_UNITS}.get(kind, {})
    if value and value[-1] in units:
        scale, value = units[value[-1]], value[:-1]
    try:
        number = float(value) * scale
    except ValueError:
        raise ValueError(f"budget {text!r}: {value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"budget {text!r} must be positive")
    return Budget(kind, number)


@dataclass
class CompareSettings:
    """Everything `vopd compare` needs."""

    config: str = "demo_opd"
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    budget: Budget = field(default_factory=lambda: Budget("wallclock", 300.0))
    seeds: tuple[int, ...] = (0, 1, 2)
    out_dir: str = "runs/compare"
    sweep_budget: Budget | None = field(default_factory=lambda: Budget("wallclock", 90.0))
    lrs: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per-arm sweep override
    assets_dir: str | None = "artifacts/demo"  # fills model/data paths and references
    overrides: tuple[str, ...] = ()  # applied to every arm
    arm_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    references: dict[str, float] | None = None  # {"floor": .., "teacher": ..} if no assets
    start: str = "floor"  # START_POINTS: which prepared student every arm starts from
    # A sweep is "separated" when its best final val mIoU leads the second best, and the blind
    # floor, by at least this many mIoU points; an unseparated one is rerun once at
    # `sweep_extend` (None: reported as not separated, nothing rerun).
    sweep_min_gap: float = 2.0
    sweep_extend: Budget | None = None


def lr_tag(lr: float) -> str:
    """The directory name of an lr's sweep run: `lr3e-04`."""
    return f"lr{lr:.0e}".replace("+", "")


def budget_tag(budget: Budget) -> str:
    """A budget as a directory name: `wallclock300s`, `samples4000`."""
    return str(budget).replace("=", "").replace(".", "p")


def arm_config(settings: CompareSettings, arm: ArmSpec, lr: float, seed: int, budget: Budget, out):
    """The RunConfig of one run of `arm`."""
    from launch.config import load_config

    base = [*asset_overrides(settings.assets_dir, settings.start), *arm.overrides]
    base += [*settings.overrides, *settings.arm_overrides.get(arm.name, ())]
    probe = load_config(settings.config, base)
    if arm.label_noise is not None:
        data = probe.data
        base += noisy_train_file(
            data.train, data.video_root, arm.label_noise, Path(settings.out_dir)
        )
    return load_config(
        settings.config,
        [
            *base,
            *budget.overrides(probe.trainer.prompts_per_step, completions_per_step(probe)),
            f"learner.lr={lr}",
            f"trainer.seed={seed}",
            f"out_dir={out}",
            "checkpoint.keep_best=false",
        ],
    )


def completions_per_step(config: Any) -> int:
    """What one step of the RunConfig `config` adds to the report's completions view: its
    sampled rows, or for an arm that samples nothing its training rows."""
    from launch.compare_report import arm_protocol, completions_per_prompt

    protocol = arm_protocol(asdict(config), [], config.learner.lr)
    return int(protocol["prompts_per_step"]) * completions_per_prompt(protocol)


def start_model(assets: dict[str, Any], start: str) -> str:
    """The student directory of a start point in prepared demo assets (ValueError when the
    assets lack it)."""
    if start not in START_POINTS:
        raise ValueError(f"--start {start!r}: expected one of {', '.join(START_POINTS)}")
    if start == "floor":
        return str(assets["student"])
    entry = assets.get("student_competent")
    if entry is None:
        raise ValueError(
            "--start competent: the prepared assets have no competent student; run "
            "`vopd prepare-demo` (it adds it to existing assets)"
        )
    return str(entry["model"])


def asset_overrides(assets_dir: str | None, start: str = "floor") -> list[str]:
    """Model and data paths from prepared demo assets (none when there are none): the student
    of the start point (`floor` or `competent`), which is also the KL penalty's reference, the
    teacher and the data. `competent` without assets is a ValueError."""
    from launch.demo_assets import load_assets

    assets = load_assets(assets_dir) if assets_dir else None
    if assets is None:
        if start != "floor":
            raise ValueError(
                f"--start {start}: needs prepared demo assets (--assets DIR, built by "
                "`vopd prepare-demo`); without them give model.student=... instead"
            )
        return []
    student = start_model(assets, start)
    data = Path(assets["data"])
    return [
        f"model.student={student}",
        f"model.reference={student}",  # GRPO / TempSamp-R1's KL anchor: the start itself
        f"model.teacher={assets['teacher']}",
        f"data.train={data / 'train.json'}",
        f"data.val={data / 'val.json'}",
        f"data.test={data / 'test.json'}",
        f"data.video_root={data / 'videos'}",
    ]


def reference_points(settings: CompareSettings) -> dict[str, float]:
    """The blind floor and the teacher's validation mIoU the targets are defined from."""
    from launch.demo_assets import load_assets

    if settings.references is not None:
        return dict(settings.references)
    assets = load_assets(settings.assets_dir) if settings.assets_dir else None
    if assets is not None:
        return {
            "floor": float(assets["blind_floor"]["val"]),
            "teacher": float(assets["metrics"]["teacher"]["val"]["mIoU"]),
        }
    return measure_references(settings)


def measure_references(settings: CompareSettings) -> dict[str, float]:
    """Teacher val mIoU (greedy, vLLM) and the blind floor fitted on the val split itself."""
    from launch.config import load_config
    from launch.demo_assets import evaluate_model
    from tvg.blind_floor import fit_blind_answer
    from tvg.formats import read_samples

    config = load_config(settings.config, list(settings.overrides))
    root = Path(config.data.video_root) if config.data.video_root else Path(config.data.val).parent
    teacher = evaluate_model(config.model.teacher, {"val": Path(config.data.val)}, root)["val"]
    samples = read_samples(config.data.val, video_root=config.data.video_root)
    floor = fit_blind_answer(
        [s.duration for s in samples], [list(s.spans[0]) for s in samples]
    ).miou
    return {"floor": float(floor), "teacher": float(teacher["mIoU"])}


def run_one(config: Any) -> dict[str, Any]:
    """Run (or resume, or reuse) one training run; return its summary."""
    from launch.config import config_to_yaml
    from launch.driver import Driver

    out = Path(config.out_dir)
    saved = out / "config.yaml"
    same_config = saved.is_file() and saved.read_text() == config_to_yaml(config)
    if (out / "summary.json").is_file() and saved.is_file():
        if same_config:
            print(f"[compare] {out}: finished earlier, reusing")
            return json.loads((out / "summary.json").read_text())
        raise RuntimeError(
            f"{out} holds a finished run with another config; use another --out or --force"
        )
    resume = same_config and any(out.glob("checkpoints/step_*"))
    if not resume and out.exists():
        shutil.rmtree(out)
    print(f"[compare] {'resuming' if resume else 'starting'} {out}")
    driver = Driver(config, resume=resume)
    try:
        return driver.run()
    finally:
        driver.shutdown()


def final_val_miou(run_dir: Path) -> float:
    """The last validation mIoU in a run's ledger (NaN when it never evaluated)."""
    from launch.ledger import read_ledger

    values = [r["val"]["mIoU"] for r in read_ledger(run_dir / "metrics.jsonl") if "val" in r]
    return float(values[-1]) if values else float("nan")


def run_compare(settings: CompareSettings, force: bool = False) -> dict[str, Any]:
    """Sweep, run every arm over every seed, then write the report; returns the report data."""
    from launch.compare_report import write_report

    out = Path(settings.out_dir)
    if force and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    arms = [arm_spec(name) for name in settings.objectives]
    references = reference_points(settings)
    state: dict[str, Any] = {
        "settings": _settings_dict(settings),
        "references": references,
        "arms": {},
    }
    # Every arm's lr sweep first, then the runs seed by seed (all arms of seed 0, then seed 1,
    # ...), so that a partial comparison is complete per seed and slow drifts of the machine's
    # speed spread over the arms instead of landing on one.
    for arm in arms:
        lrs = settings.lrs.get(arm.name, arm.lrs)
        entry: dict[str, Any] = {
            "overrides": list(arm.overrides),
            "extra_overrides": list(settings.arm_overrides.get(arm.name, ())),
            "notes": arm.notes,
            "lr_sweep": {},
            "sweep_stages": [],
            "lr": lrs[len(lrs) // 2] if len(lrs) > 1 else lrs[0],
            "chosen_by": (
                "no sweep (--sweep-budget none): the middle candidate"
                if len(lrs) > 1
                else "a single candidate (no sweep)"
            ),
            "runs": {},
        }
        state["arms"][arm.name] = entry
        if settings.sweep_budget is not None and len(lrs) > 1:
            sweep_arm(settings, arm, lrs, references["floor"], out, entry, state)
        _write_json(out / "compare.json", state)
    for seed in settings.seeds:
        for arm in arms:
            entry = state["arms"][arm.name]
            reused = sweep_run_for(settings, entry, seed, out)
            if reused is not None:
                print(
                    f"[compare] {arm.name} seed {seed}: the lr sweep's run at lr {entry['lr']:g} "
                    f"({reused}) is this run (same budget, seed and config)"
                )
                entry["runs"][str(seed)] = reused
                _write_json(out / "compare.json", state)
                continue
            run_dir = out / "runs" / arm.name / f"seed{seed}"
            run_one(arm_config(settings, arm, entry["lr"], seed, settings.budget, run_dir))
            entry["runs"][str(seed)] = str(run_dir.relative_to(out))
            _write_json(out / "compare.json", state)
    return write_report(out)


def sweep_run_for(
    settings: CompareSettings, entry: dict[str, Any], seed: int, out: Path
) -> str | None:
    """The sweep run (relative to `out`) that already is the arm's run for `seed`: the sweep's
    last stage ran at the comparison's own budget, on this seed (the first), at the chosen lr,
    and finished. None otherwise. The two configs differ only in their out_dir."""
    stages = entry.get("sweep_stages") or []
    if not stages or seed != settings.seeds[0] or stages[-1]["budget"] != str(settings.budget):
        return None
    rel = stages[-1]["runs"].get(repr(entry["lr"]))
    if rel is None or not (out / rel / "summary.json").is_file():
        return None
    return str(rel)


def sweep_arm(
    settings: CompareSettings,
    arm: ArmSpec,
    lrs: tuple[float, ...],
    floor: float,
    out: Path,
    entry: dict[str, Any],
    state: dict[str, Any],
) -> None:
    """Run an arm's lr sweep (first seed, the sweep budget) and, when it does not separate its
    candidates and `settings.sweep_extend` is set, once more at that longer budget; fill `entry`
    (lr_sweep, sweep_stages, lr, chosen_by) from the last stage run. Finished runs are reused."""
    from launch.compare_report import sweep_verdict

    budgets = [settings.sweep_budget]
    if settings.sweep_extend is not None:
        budgets.append(settings.sweep_extend)
    seed = settings.seeds[0]
    for index, budget in enumerate(budgets):
        assert budget is not None
        base = out / "sweep" / arm.name
        if index:  # the extension keeps its own directories: the first stage stays reusable
            base = base / budget_tag(budget)
        finals: dict[str, float] = {}
        runs: dict[str, str] = {}
        for lr in lrs:
            run_dir = base / lr_tag(lr)
            run_one(arm_config(settings, arm, lr, seed, budget, run_dir))
            finals[repr(lr)] = final_val_miou(run_dir)
            runs[repr(lr)] = str(run_dir.relative_to(out))
        verdict = sweep_verdict(finals, floor, settings.sweep_min_gap)
        entry["sweep_stages"].append(
            {
                "budget": str(budget),
                "final": finals,
                "runs": runs,
                "separated": verdict["separated"],
                "reason": verdict["reason"],
            }
        )
        entry["lr_sweep"] = finals
        entry["lr"] = verdict["chosen"]
        entry["chosen_by"] = (
            f"the highest final val mIoU of the {'extended ' if index else ''}sweep at {budget} "
            f"(seed {seed}; ties to the smaller lr)"
            + ("" if verdict["separated"] else f"; NOT separated: {verdict['reason']}")
        )
        _write_json(out / "compare.json", state)
        if verdict["separated"]:
            break
        more = (
            f"; extending it once to {budgets[index + 1]}"
            if index + 1 < len(budgets)
            else ("" if index else " (--sweep-extend BUDGET reruns it once at a longer budget)")
        )
        print(
            f"[compare] WARNING: {arm.name}'s lr sweep at {budget} is not separated: "
            f"{verdict['reason']}{more}"
        )


def _settings_dict(settings: CompareSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["budget"] = str(settings.budget)
    data["sweep_budget"] = str(settings.sweep_budget) if settings.sweep_budget else None
    data["sweep_extend"] = str(settings.sweep_extend) if settings.sweep_extend else None
    return data


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
