"""`vopd prepare-demo`'s floor student (the last evaluation before the jump) and competent
student: the band, the stopping rule, the search loop (on a scripted stand-in for the driver:
rewind, overshoot, failure) and which stages a cached build reuses. No Ray, no models: the real
path runs in tests/launch/test_demo.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from launch import demo_assets
from launch.demo_assets import (
    COMPETENT,
    BandSearch,
    DemoAssetSettings,
    build_competent_student,
    build_floor_student,
    competent_band,
    prepare_demo,
)


def test_competent_band_is_a_fraction_of_the_teachers_gain() -> None:
    low, high = competent_band(floor=20.0, teacher=80.0)
    assert (low, high) == pytest.approx((44.0, 50.0))
    low, high = competent_band(floor=30.0, teacher=25.0)  # teacher at the floor: empty
    assert low > high


def test_band_search_takes_the_first_value_in_the_band() -> None:
    search = BandSearch(44.0, 50.0, tolerance=3.0)
    assert search.observe(25, 20.0) == ("continue", True)
    assert search.observe(50, 18.0) == ("continue", False)
    assert search.observe(75, 46.0) == ("take", True)
    assert search.closest == (0.0, 75, 46.0)


def test_band_search_rewinds_once_then_reports_the_overshoot() -> None:
    search = BandSearch(44.0, 50.0, tolerance=3.0)
    assert search.observe(25, 30.0)[0] == "continue"
    assert search.observe(50, 60.0)[0] == "rewind"  # jumped over: back to step 25, finer
    assert search.observe(30, 40.0) == ("continue", True)
    assert search.observe(35, 52.0) == ("overshoot", True)  # again, no rewind left
    assert search.verdict(overshot=True, quick=False) == "closest to band (jumped over it)"


def test_band_search_never_hands_back_a_floor_model() -> None:
    search = BandSearch(44.0, 50.0, tolerance=3.0)
    for step, value in ((25, 22.0), (50, 27.5), (75, 31.0)):
        assert search.observe(step, value)[0] == "continue"
    with pytest.raises(RuntimeError, match=r"never reached.*25: 22.0, 50: 27.5, 75: 31.0"):
        search.verdict(overshot=False, quick=False)
    far = BandSearch(44.0, 50.0, tolerance=3.0, can_rewind=False)
    far.observe(25, 30.0)
    assert far.observe(50, 70.0)[0] == "overshoot"
    with pytest.raises(RuntimeError, match="jumped over"):  # closest is 6 points below: too far
        far.verdict(overshot=True, quick=False)
    assert far.verdict(overshot=True, quick=True) == "quick: not in band"


def test_an_empty_band_takes_nothing() -> None:
    search = BandSearch(31.0, 30.0, tolerance=3.0)
    assert search.observe(2, 30.5) == ("continue", True)
    assert search.verdict(overshot=False, quick=True) == "quick: not in band"


class _ScriptedDriver:
    """Stands in for launch.driver.Driver: val mIoU follows `curve(step)`; checkpoints and the
    best model are real directories, so rewinding and resuming act on files as in a real run."""

    curve: Callable[[int], float] = staticmethod(lambda step: 0.0)
    starts: ClassVar[list[tuple[int, int]]] = []  # (starting step, eval interval) per driver

    def __init__(self, config: Any, resume: bool = False) -> None:
        from launch.checkpoints import latest_checkpoint, read_state
        from launch.driver import refuse_earlier_run

        self.config = config
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if not resume:
            refuse_earlier_run(self.out)
        latest = latest_checkpoint(self.out) if resume else None
        self.step = int(read_state(latest)["step"]) if latest else 0
        self.weights = f"pass{len(self.starts)}"
        type(self).starts.append((self.step, config.eval.every_steps))

    def train_step(self) -> dict[str, Any]:
        from launch.checkpoints import commit_checkpoint, staging_dir

        cfg = self.config
        self.step += 1
        record: dict[str, Any] = {"step": self.step}
        final = self.step == cfg.trainer.steps
        if self.step % cfg.eval.every_steps == 0 or final:
            record["val"] = {"mIoU": float(self.curve(self.step)), "n": 4}
        if self.step % cfg.checkpoint.every_steps == 0 or final:
            staging = staging_dir(self.out, self.step)
            (staging / "model").mkdir()
            commit_checkpoint(
                self.out, staging, self.step, {"step": self.step}, cfg.checkpoint.keep_last
            )
        with (self.out / "metrics.jsonl").open("a") as ledger:
            ledger.write(json.dumps(record) + "\n")
        return record

    def save_best_model(self, val: dict[str, float]) -> Path:
        target = self.out / "best_model"
        target.mkdir(exist_ok=True)
        (target / "val_metrics.json").write_text(json.dumps({"step": self.step, **val}))
        (target / "weights").write_text(self.weights)
        return target

    def recover(self, error: Exception) -> None:
        raise AssertionError(f"unexpected learner failure: {error}")

    def shutdown(self) -> None:
        pass


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    """Run build_competent_student against _ScriptedDriver with a given val curve."""
    import launch.driver

    monkeypatch.setattr(launch.driver, "Driver", _ScriptedDriver)
    monkeypatch.setattr(launch.driver, "init_ray", lambda config: None)
    evaluated: list[str] = []

    def on_engines(driver: Any, data_file: Path, video_root: Path) -> dict[str, float]:
        evaluated.append(f"engines:{driver.weights}@{driver.step}")
        return {"mIoU": -1.0}

    def from_directory(model: str, files: dict, video_root: Path) -> dict[str, dict]:
        evaluated.append(f"directory:{Path(model, 'weights').read_text()}")
        return {name: {"mIoU": -2.0} for name in files}

    monkeypatch.setattr(demo_assets, "_evaluate_split", on_engines)
    monkeypatch.setattr(demo_assets, "evaluate_model", from_directory)

    def run(tmp_path: Path, curve: Callable[[int], float], **settings: Any) -> dict[str, Any]:
        _ScriptedDriver.curve = staticmethod(curve)
        _ScriptedDriver.starts = []
        options = {"competent_max_steps": 200, "competent_tolerance": 3.0, **settings}
        config = DemoAssetSettings(out_dir=str(tmp_path), **options)
        assets = {
            "data": str(tmp_path / "data"),
            "student": str(tmp_path / "student"),
            "student_search": {"step": 450},
            "blind_floor": {"val": 20.0},
            "metrics": {"teacher": {"val": {"mIoU": 80.0}}},  # band [44, 50]
        }
        entry = build_competent_student(config, assets)
        entry["_evaluated"] = evaluated
        entry["_starts"] = list(_ScriptedDriver.starts)
        return entry

    return run


def test_search_keeps_the_first_checkpoint_in_the_band(scripted, tmp_path: Path) -> None:
    entry = scripted(tmp_path, lambda step: 20.0 + 0.25 * step)  # 45.0 at step 100
    assert entry["status"] == "in band"
    assert entry["step"] == 100 and entry["val"]["mIoU"] == 45.0
    assert entry["total_sft_steps"] == 450 + 100  # the floor student's steps, then these
    assert [e["step"] for e in entry["evaluations"]] == [25, 50, 75, 100]
    assert entry["band"]["mIoU"] == pytest.approx([44.0, 50.0])
    assert entry["_evaluated"] == ["engines:pass0@100"]  # test split scored on the live engines
    assert entry["test"] == {"mIoU": -1.0}
    assert Path(entry["model"], "weights").read_text() == "pass0"
    assert Path(entry["model"]) == tmp_path / COMPETENT
    assert not (tmp_path / f"{COMPETENT}.tmp").exists()


def test_a_jump_over_the_band_is_rewound_and_evaluated_more_often(scripted, tmp_path: Path) -> None:
    curve = {50: 30.0, 55: 38.0, 60: 42.0, 65: 47.0, 70: 58.0, 75: 65.0}
    entry = scripted(tmp_path, lambda step: curve.get(step, 25.0 if step < 50 else 70.0))
    # Coarse pass: 25 -> 25.0, 50 -> 30.0, 75 -> 65.0 (over the band): back to step 50, every 5.
    assert entry["_starts"] == [(0, 25), (50, 5)]
    assert [e["step"] for e in entry["evaluations"]] == [25, 50, 75, 55, 60, 65]
    assert entry["status"] == "in band" and entry["step"] == 65
    assert entry["_evaluated"] == ["engines:pass1@65"]


def test_a_second_jump_keeps_the_closest_checkpoint_and_says_so(scripted, tmp_path: Path) -> None:
    curve = {25: 30.0, 30: 40.0, 35: 41.0, 40: 52.0}  # 52 is 2 points over the band
    entry = scripted(tmp_path, lambda step: curve.get(step, 70.0))
    assert entry["status"] == "closest to band (jumped over it)"
    assert entry["step"] == 40 and entry["val"]["mIoU"] == 52.0
    assert entry["_evaluated"] == ["engines:pass1@40"]


def test_the_closest_checkpoint_of_an_earlier_pass_is_scored_from_its_directory(
    scripted, tmp_path: Path
) -> None:
    # Coarse pass: 52.5 at step 50 (2.5 over: the closest); the finer pass overshoots further.
    curve = {25: 30.0, 50: 52.5}
    entry = scripted(tmp_path, lambda step: curve.get(step, 30.0 if step < 30 else 60.0))
    assert entry["status"] == "closest to band (jumped over it)"
    assert entry["step"] == 50 and entry["val"]["mIoU"] == 52.5
    assert entry["_evaluated"] == ["directory:pass0"]
    assert Path(entry["model"], "weights").read_text() == "pass0"


def test_no_value_in_the_band_within_the_cap_fails_naming_them(scripted, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"never reached the band \[44.0, 50.0\].*100: 27.0"):
        scripted(tmp_path, lambda step: 27.0, competent_max_steps=100)
    assert not (tmp_path / COMPETENT).exists()


def test_quick_mode_records_without_failing(scripted, tmp_path: Path) -> None:
    entry = scripted(
        tmp_path, lambda step: 27.0, competent_max_steps=2, competent_eval_every=2, quick=True
    )
    assert entry["status"] == "quick: not in band"
    assert entry["step"] == 2 and Path(entry["model"]).is_dir()


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """prepare_demo with both stages replaced by recorders of what ran."""
    calls: list[str] = []

    def base(settings: DemoAssetSettings, force: bool) -> dict[str, Any]:
        calls.append("base")
        return {
            "version": demo_assets.ASSETS_VERSION,
            "settings": asdict(settings),
            "teacher": "t",
        }

    def floor(settings: DemoAssetSettings, assets: dict[str, Any]) -> dict[str, Any]:
        calls.append("student")
        assert (Path(settings.out_dir) / "assets.json").is_file()  # stages 1-3 recorded first
        return {"student": "s", "student_search": {"status": "before the jump", "step": 400}}

    def competent(settings: DemoAssetSettings, assets: dict[str, Any]) -> dict[str, Any]:
        calls.append("competent")
        assert (Path(settings.out_dir) / "assets.json").is_file()  # stages 1-4 recorded first
        return {
            "model": "c",
            "status": "in band",
            "step": 10,
            "val": {"mIoU": 50.0},
            "band": {"mIoU": [44.0, 50.0]},
            "settings": demo_assets._split_settings(asdict(settings))[2],
        }

    monkeypatch.setattr(demo_assets, "_build_base", base)
    monkeypatch.setattr(demo_assets, "build_floor_student", floor)
    monkeypatch.setattr(demo_assets, "build_competent_student", competent)
    return calls


def test_cached_stages_are_reused(staged: list[str], tmp_path: Path) -> None:
    settings = DemoAssetSettings(out_dir=str(tmp_path))
    assets = prepare_demo(settings)
    assert staged == ["base", "student", "competent"]
    assert demo_assets.load_assets(tmp_path)[COMPETENT]["model"] == "c"
    assert prepare_demo(settings) == assets and staged == ["base", "student", "competent"]
    # Another competent setting: only that stage again.
    prepare_demo(replace(settings, competent_lr=1e-3))
    assert staged[3:] == ["competent"]
    # Another floor-student setting: that stage and the competent one; the teacher is kept.
    prepare_demo(replace(settings, student_leave_fraction=0.2))
    assert staged[4:] == ["student", "competent"]
    # Assets written before the competent student existed (no entry, older settings): the
    # teacher and floor student are kept.
    prepare_demo(settings)
    old = json.loads((tmp_path / "assets.json").read_text())
    del old[COMPETENT]
    old["settings"] = {k: v for k, v in old["settings"].items() if not k.startswith("competent")}
    del old["settings"]["quick"]
    (tmp_path / "assets.json").write_text(json.dumps(old))
    del staged[:]
    prepare_demo(settings)
    assert staged == ["competent"]
    # Assets written before the floor student's search (a fixed warm start): the teacher is kept.
    old = json.loads((tmp_path / "assets.json").read_text())
    del old["student_search"]
    for key in ("student_eval_every", "student_leave_fraction"):
        del old["settings"][key]
    (tmp_path / "assets.json").write_text(json.dumps(old))
    prepare_demo(settings)
    assert staged == ["competent", "student", "competent"]
    # --force and a changed base setting rebuild everything.
    prepare_demo(settings, force=True)
    prepare_demo(replace(settings, teacher_steps=7))
    assert staged[-6:] == ["base", "student", "competent"] * 2


@pytest.fixture
def floor_scripted(scripted, tmp_path: Path):
    """Run build_floor_student against _ScriptedDriver (the patches of `scripted`) with a val
    curve; blind floor 20, teacher 80: the student has left the floor above 26 (fraction 0.1)."""

    def run(curve: Callable[[int], float], **settings: Any) -> dict[str, Any]:
        _ScriptedDriver.curve = staticmethod(curve)
        _ScriptedDriver.starts = []
        options = {"student_steps": 400, "student_eval_every": 50, **settings}
        config = DemoAssetSettings(out_dir=str(tmp_path), **options)
        assets = {
            "data": str(tmp_path / "data"),
            "student_init": str(tmp_path / "init"),
            "blind_floor": {"val": 20.0},
            "metrics": {"teacher": {"val": {"mIoU": 80.0}}},
        }
        return build_floor_student(config, assets)

    return run


def test_floor_student_is_the_last_evaluation_before_the_jump(floor_scripted, tmp_path) -> None:
    entry = floor_scripted(lambda step: 22.0 if step <= 150 else 30.0)
    search = entry["student_search"]
    assert search["status"] == "before the jump"
    assert search["step"] == 150 and search["left_floor_at"] == 200
    assert search["threshold"] == pytest.approx(26.0)
    assert [e["step"] for e in search["evaluations"]] == [50, 100, 150, 200]  # stopped there
    kept = json.loads((tmp_path / "student" / "val_metrics.json").read_text())
    assert kept["step"] == 150 and kept["mIoU"] == 22.0
    assert entry["student"] == str(tmp_path / "student")
    assert entry["metrics"]["student"]["val"] == {"mIoU": -2.0}  # scored from its directory
    assert entry["metrics"]["teacher"]["val"]["mIoU"] == 80.0


def test_floor_student_that_never_leaves_is_taken_at_the_cap(floor_scripted) -> None:
    entry = floor_scripted(lambda step: 21.0, student_steps=200)
    assert entry["student_search"]["status"] == "never left the floor in 200 steps"
    assert entry["student_search"]["step"] == 200
    assert entry["student_search"]["left_floor_at"] is None


def test_a_student_past_the_floor_at_once_is_a_clear_error(floor_scripted) -> None:
    with pytest.raises(RuntimeError, match=r"past 26.0 \(floor 20.0\) at the first evaluation"):
        floor_scripted(lambda step: 40.0)
    # Quick mode never fails: its one evaluation is kept.
    entry = floor_scripted(lambda step: 40.0, student_steps=4, quick=True)
    assert entry["student_search"]["status"] == "quick" and entry["student_search"]["step"] == 4
