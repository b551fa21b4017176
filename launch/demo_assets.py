"""`vopd prepare-demo`: the demo's assets, built once and cached.

1. the synthetic level-1 dataset (real mp4 files; train / val / test, blind floor per split);
2. the tiny Qwen3-VL models from configs (shared tokenizer);
3. a **teacher** trained to competence by supervised training through the same distributed loop
   (objective `sft`, cosine decay, the best validation checkpoint kept: the constant-lr recipe
   collapses late, see BENCHMARKS.md "Synthetic task learnability");
4. a **student** warm-started on the answers: it learns the answer format, not the task. The same
   supervised recipe, evaluated on the whole validation split every `student_eval_every` steps
   (at most `student_steps`); the floor student is the model of the last evaluation still at the
   floor (val mIoU <= floor + `student_leave_fraction` x (teacher - floor)) before the first one
   past it: a student at the blind floor, just before the jump supervised training shows on
   this task. A fixed step count landed at different distances from that jump in two builds of
   the same seed (gloo reductions are not bitwise reproducible), and OPD from the farther one
   sat at the floor for ~400 steps. A student past the floor at its first evaluation is a
   RuntimeError naming the values (outside quick mode);
5. a **competent student**: the floor student trained on by the same supervised recipe, evaluated
   on the whole validation split every `competent_eval_every` steps, and taken at the first
   evaluation whose mIoU lies in the band floor + [0.40, 0.50] x (teacher - floor) (the papers'
   RL baselines start from a model that already grounds, not from the floor). A jump over the
   band between two evaluations rewinds to the evaluation before it and evaluates every
   `competent_fine_eval_every` steps; if that jumps over the band too, the checkpoint closest to
   it is taken when it lies within `competent_tolerance` points and recorded as such; otherwise,
   or when `competent_max_steps` pass below the band, a RuntimeError names every value seen. In
   quick mode nothing fails: the tiny run is recorded with its status ("quick: not in band").
The result (paths and the val/test metrics of each) is recorded in `<out>/assets.json`, written
atomically; a second call reuses everything unless `force` is set, and assets that lack the
competent student (or built it with other settings) get only that stage.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ASSETS_FILE = "assets.json"
ASSETS_VERSION = 1
COMPETENT = "student_competent"


@dataclass(frozen=True)
class DemoAssetSettings:
    """Sizes and budgets of the demo assets (defaults measured on 2 CPU cores)."""

    out_dir: str = "artifacts/demo"
    seed: int = 0
    n_train: int = 2000
    n_val: int = 100
    n_test: int = 100
    level: int = 1
    teacher_steps: int = 1500
    teacher_lr: float = 2e-3
    student_steps: int = 1200  # the floor student's search: at most this many steps
    student_lr: float = 2e-3
    student_eval_every: int = 50
    student_leave_fraction: float = 0.10  # of the teacher's gain over the floor: "left the floor"
    prompts_per_step: int = 8
    eval_every: int = 100
    # The competent student (stage 5): supervised steps on top of the floor student, at most
    # `competent_max_steps`, evaluated on the whole val split every `competent_eval_every` steps.
    competent_lr: float = 2e-3
    competent_max_steps: int = 1000
    competent_eval_every: int = 25
    competent_fine_eval_every: int = 5
    competent_band_low: float = 0.40  # fractions of the teacher's gain over the blind floor
    competent_band_high: float = 0.50
    competent_tolerance: float = 3.0  # mIoU points: how far outside the band a jump may land
    quick: bool = False  # tiny budgets: the competent student is recorded, never required


# The settings that only the competent student depends on: changing them rebuilds that stage.
COMPETENT_FIELDS = (
    "competent_lr",
    "competent_max_steps",
    "competent_eval_every",
    "competent_fine_eval_every",
    "competent_band_low",
    "competent_band_high",
    "competent_tolerance",
    "quick",
)


# The settings that only the floor student (and so the competent one) depends on.
STUDENT_FIELDS = ("student_steps", "student_lr", "student_eval_every", "student_leave_fraction")


def _split_settings(
    settings: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the settings of stages 1-3, the floor student's, the competent student's) of a settings
    dict; a field the dict lacks (assets written by an older version) reads as None."""
    staged = (*STUDENT_FIELDS, *COMPETENT_FIELDS)
    base = {k: v for k, v in settings.items() if k not in staged}
    student = {k: settings.get(k) for k in STUDENT_FIELDS}
    return base, student, {k: settings.get(k) for k in COMPETENT_FIELDS}


def _sft_overrides(
    settings: DemoAssetSettings, model: str, out: Path, steps: int, lr: float, cosine: bool
) -> list[str]:
    data = Path(settings.out_dir) / "data"
    return [
        f"out_dir={out}",
        f"model.student={model}",
        f"data.train={data / 'train.json'}",
        f"data.val={data / 'val.json'}",
        f"data.video_root={data / 'videos'}",
        f"trainer.steps={steps}",
        f"trainer.prompts_per_step={settings.prompts_per_step}",
        f"trainer.seed={settings.seed}",
        f"learner.lr={lr}",
        "learner.warmup_steps=30",
        f"learner.schedule={'cosine' if cosine else 'constant'}",
        f"eval.every_steps={min(settings.eval_every, steps)}",
        "eval.max_new_tokens=24",
        f"checkpoint.every_steps={steps}",
        "checkpoint.keep_last=1",
        "checkpoint.keep_best=true",
    ]


def _train_sft(overrides: list[str]) -> dict[str, Any]:
    from launch.config import load_config
    from launch.driver import Driver

    config = load_config("sft", overrides)
    if Path(config.out_dir).exists():  # a rebuild: the earlier run's ledger and checkpoints go
        shutil.rmtree(config.out_dir)
    driver = Driver(config)
    try:
        return driver.run()
    finally:
        driver.shutdown()


def evaluate_model(
    model_dir: str, data_files: dict[str, Path], video_root: Path, max_tokens: int = 24
) -> dict[str, dict[str, float]]:
    """Greedy R1@m / mIoU / parse rate of a model directory on each named annotation file, with
    one vLLM rollout worker started once for all of them."""
    from launch.driver import evaluate
    from rollout.batch import PromptSpec
    from rollout.engine_config import EngineConfig
    from rollout.group import GroupConfig, RolloutGroup
    from tvg.formats import read_samples
    from tvg.video import VideoSettings

    settings = VideoSettings(fps=1.0, max_frames=64)
    group = RolloutGroup(
        EngineConfig(model=model_dir), GroupConfig(num_workers=1, cpus_per_worker=0)
    )
    try:
        results = {}
        for name, data_file in data_files.items():
            samples = read_samples(data_file, video_root=video_root)
            prompts = [PromptSpec.from_sample(s, "timelens", settings) for s in samples]
            results[name] = evaluate(group, prompts, max_tokens).metrics
        return results
    finally:
        group.shutdown()


def _copy_model(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)


def load_assets(out_dir: str | Path) -> dict[str, Any] | None:
    """The recorded assets of a finished `prepare_demo`, or None."""
    path = Path(out_dir) / ASSETS_FILE
    if not path.is_file():
        return None
    assets = json.loads(path.read_text())
    return assets if assets.get("version") == ASSETS_VERSION else None


def _write_assets(out: Path, assets: dict[str, Any]) -> None:
    tmp = out / (ASSETS_FILE + ".tmp")
    tmp.write_text(json.dumps(assets, indent=2))
    os.replace(tmp, out / ASSETS_FILE)


def _stale_stage(cached: dict[str, Any] | None, settings: DemoAssetSettings) -> str | None:
    """The first stage of the cached assets that `settings` would build otherwise: "base"
    (dataset, models, teacher), "student", "competent", or None when all of them hold."""
    if cached is None:
        return "base"
    wanted, have = _split_settings(asdict(settings)), _split_settings(cached["settings"])
    if have[0] != wanted[0]:
        return "base"
    if have[1] != wanted[1] or "student_search" not in cached:
        return "student"
    entry = cached.get(COMPETENT)
    return None if entry is not None and entry.get("settings") == wanted[2] else "competent"


# What a rebuild from each stage keeps, in its message.
_KEPT = {
    "student": "the dataset and teacher",
    "competent": "the dataset, teacher and floor student",
}


def prepare_demo(settings: DemoAssetSettings, force: bool = False) -> dict[str, Any]:
    """Build (or reuse) the dataset, the trained teacher, the warm-started (floor) student and
    the competent student; a stage is rebuilt when its settings (or an earlier stage's) change."""
    out = Path(settings.out_dir)
    cached = None if force else load_assets(out)
    stale = _stale_stage(cached, settings)
    if stale is None:
        print(f"[prepare-demo] reusing assets in {out} (use --force to rebuild)")
        return cached
    if stale == "base":
        assets = _build_base(settings, force)
    else:
        print(f"[prepare-demo] reusing {_KEPT[stale]} in {out}")
        assets = {**cached, "settings": asdict(settings)}
        assets.pop(COMPETENT, None)
    _write_assets(out, assets)  # recorded now: a kill in a later stage keeps these
    if stale != "competent":
        assets.update(build_floor_student(settings, assets))
        _write_assets(out, assets)
    assets[COMPETENT] = build_competent_student(settings, assets)
    _write_assets(out, assets)
    entry = assets[COMPETENT]
    print(
        f"[prepare-demo] competent student ({entry['status']}): val mIoU "
        f"{entry['val']['mIoU']:.1f} after {entry['step']} more steps, band "
        f"[{entry['band']['mIoU'][0]:.1f}, {entry['band']['mIoU'][1]:.1f}]"
    )
    return assets


def _build_base(settings: DemoAssetSettings, force: bool) -> dict[str, Any]:
    """Stages 1-3: dataset, tiny models, teacher; the teacher's val/test metrics."""
    from launch.config import load_config
    from launch.driver import init_ray
    from launch.tiny_models import build_tiny_models
    from tvg.synth import write_dataset

    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    print(f"[prepare-demo] synthetic dataset -> {data}")
    stats = write_dataset(
        data,
        settings.n_train,
        settings.n_val,
        settings.n_test,
        seed=settings.seed,
        level=settings.level,
    )
    print(f"[prepare-demo] tiny models -> {out / 'models'}")
    models = build_tiny_models(
        out / "models", families=("qwen3_vl",), seed=settings.seed, overwrite=force
    )
    init_ray(load_config("sft"))

    print(f"[prepare-demo] teacher: supervised training, {settings.teacher_steps} steps")
    teacher_run = out / "runs" / "teacher_sft"
    _train_sft(
        _sft_overrides(
            settings,
            str(models["qwen3_vl-teacher"]),
            teacher_run,
            settings.teacher_steps,
            settings.teacher_lr,
            cosine=True,
        )
    )
    teacher_dir = out / "teacher"
    _copy_model(teacher_run / "best_model", teacher_dir)

    print("[prepare-demo] evaluating the teacher on val and test")
    splits = {split: data / f"{split}.json" for split in ("val", "test")}
    metrics = {"teacher": evaluate_model(str(teacher_dir), splits, data / "videos")}
    print(f"[prepare-demo] teacher: val mIoU {metrics['teacher']['val']['mIoU']:.1f}")
    return {
        "version": ASSETS_VERSION,
        "settings": asdict(settings),
        "data": str(data),
        "teacher": str(teacher_dir),
        "student_init": str(models["qwen3_vl-student"]),
        "metrics": metrics,
        "blind_floor": {s: stats["splits"][s]["blind_floor_miou"] for s in ("val", "test")},
    }


# ---------------------------------------------------------------- the floor student (stage 4)


def floor_threshold(floor: float, teacher: float, fraction: float) -> float:
    """The val mIoU above which the warm-started student has left the blind floor:
    floor + fraction x (teacher - floor) (the floor itself when the teacher is not above it)."""
    return floor + fraction * max(teacher - floor, 0.0)


def _initial_student(assets: dict[str, Any], out: Path) -> str:
    """The untrained student the warm start begins from (assets written by an older version do
    not record it: the tiny-model directory of the same build)."""
    return assets.get("student_init") or str(out / "models" / "qwen3_vl-student")


def _train_records(driver: Any, steps: int) -> Iterator[dict[str, Any]]:
    """Train `driver` up to step `steps`, yielding each step's ledger record; a failed learner
    group is recovered (`Driver.recover`: back to its last checkpoint) and training goes on."""
    from trainer.learner_group import LearnerError

    while driver.step < steps:
        try:
            record = driver.train_step()
        except LearnerError as exc:
            driver.recover(exc)
            continue
        yield record


def build_floor_student(settings: DemoAssetSettings, assets: dict[str, Any]) -> dict[str, Any]:
    """Stage 4: supervised training of the initial student, evaluated every `student_eval_every`
    steps, kept at the last evaluation still at the floor before the first one past it (module
    docstring); copied atomically to `<out>/student` and scored on val and test. Returns the
    assets entries "student", "student_search" and metrics["student"]."""
    from launch.config import load_config
    from launch.driver import Driver, init_ray

    t0 = time.perf_counter()
    out = Path(settings.out_dir)
    data = Path(assets["data"])
    floor = float(assets["blind_floor"]["val"])
    teacher = float(assets["metrics"]["teacher"]["val"]["mIoU"])
    threshold = floor_threshold(floor, teacher, settings.student_leave_fraction)
    steps = settings.student_steps
    every = min(settings.student_eval_every, steps)
    run_dir = out / "runs" / "student_warmstart"
    if run_dir.exists():  # an earlier, unfinished search: start again
        shutil.rmtree(run_dir)
    overrides = [
        *_sft_overrides(
            settings, _initial_student(assets, out), run_dir, steps, settings.student_lr, False
        ),
        "eval.max_samples=null",  # the whole val split, as the floor is defined on it
        f"eval.every_steps={every}",
        "checkpoint.keep_best=false",  # the kept model is written here (run_dir/best_model)
    ]
    init_ray(load_config("sft"))
    print(
        f"[prepare-demo] student: supervised warm start, evaluated every {every} steps, kept at "
        f"the last evaluation with val mIoU <= {threshold:.1f} (floor {floor:.1f} + "
        f"{settings.student_leave_fraction:g} x teacher {teacher:.1f}), at most {steps} steps"
    )
    seen: list[tuple[int, float]] = []
    kept: dict[str, Any] | None = None
    left_at: int | None = None
    driver = Driver(load_config("sft", overrides))
    try:
        for record in _train_records(driver, steps):
            if "val" not in record:
                continue
            value = float(record["val"]["mIoU"])
            seen.append((driver.step, value))
            print(f"[prepare-demo] student step {driver.step}: val mIoU {value:.1f}")
            if value > threshold and not settings.quick:
                left_at = driver.step
                break
            kept = {"step": driver.step, "val": record["val"]}
            driver.save_best_model(record["val"])
    finally:
        driver.shutdown()
    values = ", ".join(f"{step}: {value:.1f}" for step, value in seen) or "none"
    if kept is None:
        raise RuntimeError(
            f"floor student: val mIoU was past {threshold:.1f} (floor {floor:.1f}) at the first "
            f"evaluation (step: val mIoU {values}); evaluate more often (student_eval_every) or "
            "lower student_lr"
        )
    student_dir = out / "student"
    _copy_model(run_dir / "best_model", student_dir)
    splits = {split: data / f"{split}.json" for split in ("val", "test")}
    metrics = evaluate_model(str(student_dir), splits, data / "videos")
    status = (
        "quick"
        if settings.quick
        else "before the jump"
        if left_at is not None
        else f"never left the floor in {steps} steps"
    )
    print(
        f"[prepare-demo] floor student ({status}): step {kept['step']}, val mIoU "
        f"{metrics['val']['mIoU']:.1f}, parse {metrics['val'].get('parse_rate', float('nan')):.0f}%"
    )
    return {
        "student": str(student_dir),
        "student_search": {
            "status": status,
            "step": kept["step"],
            "left_floor_at": left_at,
            "threshold": threshold,
            "evaluations": [{"step": step, "mIoU": value} for step, value in seen],
            "seconds": time.perf_counter() - t0,
        },
        "metrics": {**assets["metrics"], "student": metrics},
    }


# ---------------------------------------------------------------- the competent student (stage 5)


def competent_band(
    floor: float, teacher: float, low: float = 0.40, high: float = 0.50
) -> tuple[float, float]:
    """The val mIoU band floor + [low, high] x (teacher - floor); empty (lower > upper) when the
    teacher is not above the floor."""
    gain = teacher - floor
    if gain <= 0:
        return floor + 1.0, floor  # empty: nothing lies in it
    return floor + low * gain, floor + high * gain


@dataclass
class BandSearch:
    """The competent student's stopping rule, fed one validation mIoU per evaluation.

    `observe` answers "take" (the value lies in the band), "rewind" (the first jump over the band:
    go back to the evaluation before it and evaluate more often), "overshoot" (a jump over the
    band when no rewind is left) or "continue"; it also says whether this value is the closest to
    the band so far (the caller keeps that model). `verdict` turns a search that never took a
    value into a status, or raises a RuntimeError naming every value seen.
    """

    low: float
    high: float
    tolerance: float
    can_rewind: bool = True
    seen: list[tuple[int, float]] = field(default_factory=list)
    rewound: bool = False
    closest: tuple[float, int, float] | None = None  # (distance to the band, step, mIoU)

    def distance(self, value: float) -> float:
        """How far `value` lies outside the band (0 inside; inf for an empty band)."""
        if self.low > self.high:
            return float("inf")
        return max(self.low - value, value - self.high, 0.0)

    def observe(self, step: int, value: float) -> tuple[str, bool]:
        """Record one evaluation; return (action, whether it is the closest so far)."""
        self.seen.append((step, value))
        gap = self.distance(value)
        closest = self.closest is None or gap < self.closest[0]
        if closest:
            self.closest = (gap, step, value)
        if gap == 0.0:
            return "take", closest
        if self.low <= self.high and value > self.high:
            if self.can_rewind and not self.rewound:
                self.rewound = True
                return "rewind", closest
            return "overshoot", closest
        return "continue", closest

    def values_text(self) -> str:
        """Every value seen, in order, as `step: mIoU`."""
        return ", ".join(f"{step}: {value:.1f}" for step, value in self.seen) or "none"

    def verdict(self, overshot: bool, quick: bool) -> str:
        """The status of a search that ended without a value in the band (or a RuntimeError)."""
        band = f"[{self.low:.1f}, {self.high:.1f}]"
        if quick:
            return "quick: not in band"
        if overshot and self.closest is not None and self.closest[0] <= self.tolerance:
            return "closest to band (jumped over it)"
        what = "jumped over" if overshot else "never reached"
        raise RuntimeError(
            f"competent student: val mIoU {what} the band {band} (tolerance "
            f"{self.tolerance:g} points); values seen (continued SFT step: val mIoU): "
            f"{self.values_text()}. Try another competent_lr, a smaller competent_eval_every or "
            "a larger competent_max_steps."
        )


def _evaluate_split(driver: Any, data_file: Path, video_root: Path) -> dict[str, float]:
    """Greedy metrics of the driver's current student on an annotation file (its engines)."""
    from launch.driver import evaluate
    from rollout.batch import PromptSpec
    from tvg.formats import read_samples

    config = driver.config
    prompts = [
        PromptSpec.from_sample(s, config.data.prompt_style, driver.video_settings)
        for s in read_samples(data_file, video_root=video_root)
    ]
    return evaluate(driver.rollout, prompts, config.eval.max_new_tokens).metrics


def _rewind_to(run_dir: Path, step: int) -> bool:
    """Delete the checkpoints after `step`; True when one at or before it remains to resume
    from (else the ledger goes too and the run starts afresh)."""
    from launch.checkpoints import list_checkpoints

    for checkpoint in list_checkpoints(run_dir):
        if int(checkpoint.name.split("_")[1]) > step:
            shutil.rmtree(checkpoint)
    if list_checkpoints(run_dir):
        return True
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    return False


def build_competent_student(settings: DemoAssetSettings, assets: dict[str, Any]) -> dict[str, Any]:
    """Stage 5: supervised training from the floor student until val mIoU lies in the band;
    the model is copied atomically to `<out>/student_competent`. Returns its assets entry."""
    from tqdm import tqdm

    from launch.config import load_config
    from launch.driver import Driver, init_ray

    t0 = time.perf_counter()
    out = Path(settings.out_dir)
    data = Path(assets["data"])
    floor = float(assets["blind_floor"]["val"])
    teacher = float(assets["metrics"]["teacher"]["val"]["mIoU"])
    low, high = competent_band(
        floor, teacher, settings.competent_band_low, settings.competent_band_high
    )
    if low > high and not settings.quick:
        raise RuntimeError(
            f"competent student: the teacher's val mIoU {teacher:.1f} is not above the blind "
            f"floor {floor:.1f}: there is no band to aim at"
        )
    search = BandSearch(low, high, settings.competent_tolerance, can_rewind=not settings.quick)
    steps = settings.competent_max_steps
    run_dir = out / "runs" / COMPETENT
    if run_dir.exists():  # an earlier, unfinished search: start again
        shutil.rmtree(run_dir)
    overrides = [
        *_sft_overrides(
            settings, assets["student"], run_dir, steps, settings.competent_lr, cosine=False
        ),
        "eval.max_samples=null",  # the whole val split: the band is defined on it
        "checkpoint.keep_last=2",  # the evaluation before a jump over the band is rewound to
        "checkpoint.keep_best=false",  # the closest model is kept here (run_dir/best_model)
    ]
    init_ray(load_config("sft"))
    print(
        f"[prepare-demo] competent student: supervised training from the floor student until "
        f"val mIoU lies in [{low:.1f}, {high:.1f}] (floor {floor:.1f} + "
        f"{settings.competent_band_low:g}..{settings.competent_band_high:g} x teacher "
        f"{teacher:.1f}), at most {steps} steps"
    )
    every, resume, action = min(settings.competent_eval_every, steps), False, "continue"
    chosen: dict[str, Any] | None = None  # step, val metrics and pass of the kept model
    passes = 0  # a rewind starts a second pass (a new driver) over the steps after it
    test_metrics: dict[str, float] | None = None
    bar = tqdm(total=steps, desc="competent student (sft)")
    while True:
        config = load_config(
            "sft", [*overrides, f"eval.every_steps={every}", f"checkpoint.every_steps={every}"]
        )
        driver = Driver(config, resume=resume)
        passes += 1
        try:
            bar.reset()
            bar.update(driver.step)
            for record in _train_records(driver, steps):
                bar.n = driver.step  # a recovery may have gone back to a checkpoint
                bar.refresh()
                if "val" not in record:
                    continue
                value = float(record["val"]["mIoU"])
                action, closest = search.observe(driver.step, value)
                if closest:
                    chosen = {"step": driver.step, "val": record["val"], "pass": passes}
                    driver.save_best_model(record["val"])
                bar.set_postfix(
                    val_mIoU=f"{value:.1f}", band=f"{low:.1f}-{high:.1f}", every=str(every)
                )
                if action != "continue":
                    break
            here = (passes, driver.step)  # the engines hold this pass's weights of this step
            current = chosen is not None and (chosen["pass"], chosen["step"]) == here
            if current and action != "rewind":
                # The engines hold the kept weights: score the test split with them.
                test_metrics = _evaluate_split(driver, data / "test.json", data / "videos")
        finally:
            driver.shutdown()
        if action != "rewind":
            break
        previous = search.seen[-2][0] if len(search.seen) > 1 else 0
        bar.write(
            f"[prepare-demo] val mIoU jumped over the band ({search.values_text()}): back to "
            f"step {previous}, evaluating every {settings.competent_fine_eval_every} steps"
        )
        every = min(settings.competent_fine_eval_every, steps)
        resume = _rewind_to(run_dir, previous)
    bar.close()
    if action == "take":
        status = "in band"
    else:
        status = search.verdict(overshot=action == "overshoot", quick=settings.quick)
    assert chosen is not None  # every search evaluates at least once (at its last step)
    target = out / COMPETENT
    _copy_model(run_dir / "best_model", target)
    if test_metrics is None:  # the kept model is not the one the engines last held
        splits = {"test": data / "test.json"}
        test_metrics = evaluate_model(str(target), splits, data / "videos")["test"]
    return {
        "model": str(target),
        "status": status,
        "step": chosen["step"],
        "total_sft_steps": assets.get("student_search", {}).get("step", 0) + chosen["step"],
        "val": chosen["val"],
        "test": test_metrics,
        "band": {
            "fraction": [settings.competent_band_low, settings.competent_band_high],
            "mIoU": [low, high],
            "floor": floor,
            "teacher": teacher,
        },
        "evaluations": [{"step": step, "mIoU": value} for step, value in search.seen],
        "seconds": time.perf_counter() - t0,
        "run": str(run_dir),
        "settings": _split_settings(asdict(settings))[2],
    }
