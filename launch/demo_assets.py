"""`vopd prepare-demo`: the demo's assets, built once and cached.

1. the synthetic level-1 dataset (real mp4 files; train / val / test, blind floor per split);
2. the tiny Qwen3-VL models from configs (shared tokenizer);
3. a **teacher** trained to competence by supervised training through the same distributed loop
   (objective `sft`, cosine decay, the best validation checkpoint kept: the constant-lr recipe
   collapses late, see BENCHMARKS.md "Synthetic task learnability");
4. a **student** warm-started briefly on the answers: it learns the answer format, not the task
   (validation mIoU near the blind floor).
The result (paths and the val/test metrics of both) is recorded in `<out>/assets.json`; a second
call reuses everything unless `force` is set.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ASSETS_FILE = "assets.json"
ASSETS_VERSION = 1


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
    student_steps: int = 400
    student_lr: float = 2e-3
    prompts_per_step: int = 8
    eval_every: int = 100


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


def prepare_demo(settings: DemoAssetSettings, force: bool = False) -> dict[str, Any]:
    """Build (or reuse) the dataset, the trained teacher and the warm-started student."""
    from launch.config import load_config
    from launch.driver import init_ray
    from launch.tiny_models import build_tiny_models
    from tvg.synth import write_dataset

    out = Path(settings.out_dir)
    cached = load_assets(out)
    if cached is not None and not force and cached["settings"] == asdict(settings):
        print(f"[prepare-demo] reusing assets in {out} (use --force to rebuild)")
        return cached
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

    print(f"[prepare-demo] student: {settings.student_steps}-step warm start (format only)")
    student_run = out / "runs" / "student_warmstart"
    _train_sft(
        _sft_overrides(
            settings,
            str(models["qwen3_vl-student"]),
            student_run,
            settings.student_steps,
            settings.student_lr,
            cosine=False,
        )
    )
    student_dir = out / "student"
    final = sorted((student_run / "checkpoints").glob("step_*"))[-1]
    _copy_model(final / "model", student_dir)

    print("[prepare-demo] evaluating teacher and student on val and test")
    splits = {split: data / f"{split}.json" for split in ("val", "test")}
    metrics = {
        role: evaluate_model(str(path), splits, data / "videos")
        for role, path in (("teacher", teacher_dir), ("student", student_dir))
    }
    assets = {
        "version": ASSETS_VERSION,
        "settings": asdict(settings),
        "data": str(data),
        "teacher": str(teacher_dir),
        "student": str(student_dir),
        "metrics": metrics,
        "blind_floor": {s: stats["splits"][s]["blind_floor_miou"] for s in ("val", "test")},
    }
    tmp = out / (ASSETS_FILE + ".tmp")
    tmp.write_text(json.dumps(assets, indent=2))
    os.replace(tmp, out / ASSETS_FILE)
    for role in ("teacher", "student"):
        m = metrics[role]["val"]
        print(f"[prepare-demo] {role}: val mIoU {m['mIoU']:.1f}, parse {m['parse_rate']:.0f}%")
    return assets
