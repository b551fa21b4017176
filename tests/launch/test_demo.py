"""`vopd demo --quick`: the whole main-job path (assets, OPD run, before/after), tiny budgets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from launch.commands.demo import QUICK, QUICK_OVERRIDES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(1200)  # 2.5 min on an idle 2-core machine, 6 min on a busy one
def test_quick_demo_writes_a_consistent_report(tmp_path: Path, ray_session) -> None:
    from launch.demo import run_demo
    from launch.demo_assets import DemoAssetSettings, load_assets

    settings = replace(DemoAssetSettings(out_dir=str(tmp_path)), **QUICK)
    report = run_demo(settings, QUICK_OVERRIDES)
    assert json.loads(Path(report["path"]).read_text())["steps"] == 3
    rows = report["test"]
    assert set(rows) == {
        "blind floor (duration only)",
        "student before",
        "student after",
        "teacher",
    }
    for name in ("student before", "student after", "teacher"):
        assert rows[name]["n"] == QUICK["n_test"]
    ledger = [json.loads(line) for line in Path(report["ledger"]).read_text().splitlines()]
    assert [r["step"] for r in ledger] == [1, 2, 3]
    # The demo runs in the colocated layout (learner ranks owning their engines and the teacher),
    # each rank's transformers engine sampling with the rank's own module.
    placement = json.loads((Path(report["ledger"]).parent / "placement.json").read_text())
    assert placement["rollout"] == "colocated"
    assert placement["rollout_engines"] == [{"engine": "hf", "shares_weights": True}] * 2
    assert set(ledger[-1]["threads"]) == {"learner", "total", "cores"}  # one pool: the ranks
    assert "teacher" not in ledger[-1]["time"]  # the teacher's forward ran in the learner phase
    # The assets are cached: a second preparation reuses them.
    assets = load_assets(tmp_path)
    assert assets is not None and Path(assets["teacher"], "config.json").is_file()
    # The competent student is built with tiny budgets and recorded, not required to be in band.
    competent = assets["student_competent"]
    assert Path(competent["model"], "config.json").is_file()
    assert competent["status"] in ("quick: not in band", "in band")
    assert competent["step"] == QUICK["competent_max_steps"]
    assert competent["val"]["n"] == QUICK["n_val"] and competent["test"]["n"] == QUICK["n_test"]
    low, high = competent["band"]["mIoU"]
    floor, teacher = competent["band"]["floor"], competent["band"]["teacher"]
    assert floor == assets["blind_floor"]["val"]
    assert teacher == assets["metrics"]["teacher"]["val"]["mIoU"]
    if teacher > floor:
        assert (low, high) == pytest.approx(
            (floor + 0.4 * (teacher - floor), floor + 0.5 * (teacher - floor))
        )
