"""The soak benchmark's pure analysis (benchmarks/soak.py): growth, slope, pass/fail, labels.

Synthetic series only: nothing is started or timed.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

SOAK_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def _load_soak():
    spec = importlib.util.spec_from_file_location("benchmarks_soak", SOAK_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


soak = _load_soak()


def test_growth_pct() -> None:
    assert soak.growth_pct(100.0, 110.0) == pytest.approx(10.0)
    assert soak.growth_pct(200.0, 150.0) == pytest.approx(-25.0)
    assert soak.growth_pct(0.0, 0.0) == 0.0
    assert math.isinf(soak.growth_pct(0.0, 5.0))


def test_slope_per_100_steps_is_least_squares() -> None:
    steps = list(range(20, 201))
    values = [500.0 + 0.3 * s for s in steps]  # 0.3 MB per step = 30 MB per 100 steps
    assert soak.slope_per_100_steps(steps, values) == pytest.approx(30.0)
    # Symmetric noise around a flat line leaves the slope at zero.
    noisy = [500.0 + (1.0 if s % 2 else -1.0) for s in range(0, 100)]
    assert abs(soak.slope_per_100_steps(range(0, 100), noisy)) < 0.1
    assert soak.slope_per_100_steps([5], [1.0]) == 0.0
    assert soak.slope_per_100_steps([5, 5], [1.0, 2.0]) == 0.0


def test_flat_series_after_a_warm_up_ramp_passes() -> None:
    # Fast growth during warm-up (steps 0-20) does not count; afterwards +2% with noise.
    steps = list(range(0, 201))
    values = [100.0 + 5.0 * s if s <= 20 else 200.0 + 4.0 * (s - 20) / 180 for s in steps]
    r = soak.analyse_series(steps, values, warmup=20, last_step=200)
    assert r["warmup_mb"] == 200.0 and r["final_mb"] == 204.0
    assert r["growth_pct"] == pytest.approx(2.0)
    assert r["max_mb"] == 204.0
    assert r["judged"] and r["passed"]


def test_linear_leak_fails_and_has_the_right_slope() -> None:
    steps = list(range(0, 201))
    values = [1000.0 + 0.75 * s for s in steps]  # 1015 MB at step 20 -> 1150 at 200: +13.3%
    r = soak.analyse_series(steps, values, warmup=20, last_step=200)
    assert r["growth_pct"] == pytest.approx(135 / 1015 * 100, abs=0.01)
    assert r["slope_mb_per_100_steps"] == pytest.approx(75.0)
    assert r["judged"] and r["passed"] is False
    # A looser limit lets it pass.
    assert soak.analyse_series(steps, values, 20, 200, limit_pct=20.0)["passed"]


def test_a_peak_that_falls_back_passes_but_is_reported() -> None:
    steps = [20, 50, 100, 150, 200]
    values = [100.0, 140.0, 101.0, 102.0, 103.0]
    r = soak.analyse_series(steps, values, warmup=20, last_step=200)
    assert r["passed"] and r["max_mb"] == 140.0
    assert r["max_growth_pct"] == pytest.approx(40.0)


def test_short_lived_processes_are_not_judged() -> None:
    # Starts after warm-up (first sample at 30): baseline is its first sample, not judged.
    late = soak.analyse_series([30, 40, 200], [10.0, 30.0, 50.0], warmup=20, last_step=200)
    assert late["warmup_mb"] == 10.0 and not late["judged"] and late["passed"] is None
    # Gone before the end.
    gone = soak.analyse_series([0, 20, 50], [10.0, 10.0, 10.0], warmup=20, last_step=200)
    assert not gone["judged"] and gone["passed"] is None
    # Only warm-up samples.
    early = soak.analyse_series([0, 10], [10.0, 11.0], warmup=20, last_step=200)
    assert early == {
        "first_step": 0,
        "last_step": 10,
        "samples": 2,
        "judged": False,
        "passed": None,
    }


def test_value_at_or_after() -> None:
    assert soak.value_at_or_after([0, 10, 20], [1.0, 2.0, 3.0], 10) == 2.0
    assert soak.value_at_or_after([0, 10, 20], [1.0, 2.0, 3.0], 11) == 3.0
    assert soak.value_at_or_after([0, 10], [1.0, 2.0], 11) is None


def test_verdict_over_judged_processes() -> None:
    table = {
        "driver": {"judged": True, "passed": True},
        "Learner#0": {"judged": True, "passed": False},
        "ray_idle#0": {"judged": False, "passed": None},
    }
    v = soak.verdict(table)
    assert v == {"passed": False, "judged": ["Learner#0", "driver"], "failed": ["Learner#0"]}
    table["Learner#0"]["passed"] = True
    assert soak.verdict(table)["passed"]
    assert not soak.verdict({"x": {"judged": False, "passed": None}})["passed"]


def test_analyse_over_samples_orders_and_labels() -> None:
    samples = []
    for step in range(0, 11):
        samples.append(
            {
                "step": step,
                "procs": {
                    "raylet#0": {"kind": "raylet", "rss_mb": 30.0, "uss_mb": 10.0},
                    "driver": {"kind": "driver", "rss_mb": 500.0 + step, "uss_mb": 400.0},
                    "Learner#0": {"kind": "Learner", "rss_mb": 600.0, "uss_mb": 500.0},
                },
            }
        )
    table = soak.analyse(samples, warmup=2, last_step=10, limit_pct=10.0)
    assert list(table) == ["driver", "Learner#0", "raylet#0"]
    assert table["driver"]["growth_pct"] == pytest.approx(8 / 502 * 100, abs=0.01)
    assert table["driver"]["uss_growth_pct"] == 0.0
    assert all(r["passed"] for r in table.values())
    assert "| driver | 502.0 | 510.0 |" in soak.markdown_table(table, 2)


@pytest.mark.parametrize(
    ("cmdline", "name", "kind"),
    [
        (["ray::RolloutWorker"], "ray::RolloutWor", "RolloutWorker"),
        (["ray::Learner.train_step"], "ray::Learner.tr", "Learner"),
        (["ray::TeacherWorker.score", ""], "python", "TeacherWorker"),
        (["ray::IDLE"], "ray::IDLE", "ray_idle"),
        (["/x/ray/core/src/ray/raylet/raylet", "--flag"], "raylet", "raylet"),
        (["/x/gcs_server", "--flag"], "gcs_server", "gcs_server"),
        (["/x/python", "-u", "/x/ray/_private/log_monitor.py"], "python", "ray_log_monitor"),
        ([], "weird", "weird"),
    ],
)
def test_classify(cmdline: list[str], name: str, kind: str) -> None:
    assert soak.classify(cmdline, name) == kind
