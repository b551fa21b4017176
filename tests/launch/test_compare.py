"""`vopd compare`: budgets, arms, the report's arithmetic, and a tiny real comparison whose plotted
numbers equal its ledgers."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from launch.compare import Budget, arm_spec, parse_budget
from launch.compare_report import compute_to_target, run_curve, targets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wallclock=300", Budget("wallclock", 300.0)),
        ("wallclock=5m", Budget("wallclock", 300.0)),
        ("wallclock=1h", Budget("wallclock", 3600.0)),
        ("samples=4000", Budget("samples", 4000.0)),
    ],
)
def test_parse_budget(text: str, expected: Budget) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["300", "time=3", "samples=abc", "wallclock=-1", "samples=0"])
def test_parse_budget_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budget(text)


def test_budget_overrides() -> None:
    assert Budget("samples", 100).overrides(16) == ["trainer.steps=7", "trainer.budget_s=null"]
    assert "trainer.budget_s=60.0" in Budget("wallclock", 60.0).overrides(16)


def test_arm_specs() -> None:
    tvdf = arm_spec("opd+tvdf")
    assert "curriculum.kind=tvdf" in tvdf.overrides
    assert "trainer.objective=opd" in tvdf.overrides
    grpo = arm_spec("grpo")
    assert any("kl_coef" in o for o in grpo.overrides)  # the remedies are on
    assert any("filter_zero_variance: true" in o for o in grpo.overrides)
    with pytest.raises(ValueError, match="unknown arm"):
        arm_spec("ppo")


def _args(**kwargs) -> argparse.Namespace:
    defaults = dict(
        config="demo_opd",
        objectives="opd,grpo",
        budget="wallclock=60",
        seeds="0,1",
        out="x",
        sweep_budget="none",
        lrs=[],
        set=[],
        assets="none",
        reference=None,
        overrides=[],
    )
    return argparse.Namespace(**{**defaults, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objectives": "opd,ppo"}, "unknown arm"),
        ({"seeds": "0,a"}, "--seeds"),
        ({"lrs": ["grpo"]}, "--lrs"),
        ({"lrs": ["sft=1e-3"]}, "not in --objectives"),
        ({"set": ["grpo-rollout.n=2"]}, "--set"),
        ({"reference": "1"}, "--reference"),
        ({"budget": "steps=3"}, "budget"),
    ],
)
def test_cli_arguments_rejected_with_the_flag_named(kwargs: dict, message: str) -> None:
    from launch.commands.compare import settings_from_args

    with pytest.raises(ValueError, match=message):
        settings_from_args(_args(**kwargs))


def test_cli_first_positional_override_is_not_a_config() -> None:
    from launch.commands.compare import settings_from_args

    settings = settings_from_args(_args(config="eval.every_steps=5", overrides=["a.b=1"]))
    assert settings.config == "demo_opd"
    assert settings.overrides == ("eval.every_steps=5", "a.b=1")


def _record(step: int, seconds: float, val: float | None = None) -> dict:
    record = {
        "step": step,
        "samples_seen": step * 4,
        "learner_flops": 10.0,
        "time": {"step": seconds + 1.0, "eval": 1.0 if val is not None else 0.0},
    }
    if val is None:
        record["time"]["step"] = seconds
    else:
        record["val"] = {"mIoU": val, "parse_rate": 100.0}
    return record


def test_curve_and_compute_to_target() -> None:
    records = [_record(1, 2.0), _record(2, 2.0, 30.0), _record(3, 2.0), _record(4, 2.0, 70.0)]
    curve = run_curve(records)
    assert curve["train_seconds"] == [4.0, 8.0]  # evaluation time excluded
    assert curve["learner_flops"] == [20.0, 40.0]
    assert curve["samples_seen"] == [8.0, 16.0]
    goals = targets({"floor": 20.0, "teacher": 80.0})
    assert goals == {"50%": 50.0, "80%": 68.0, "90%": 74.0}
    assert compute_to_target(curve, goals["50%"]) == {
        "train_seconds": 8.0,
        "learner_flops": 40.0,
        "samples_seen": 16.0,
    }
    assert compute_to_target(curve, goals["90%"]) is None


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(1800)  # six training runs (two lr-sweep runs, two arms x two seeds)
def test_tiny_comparison_report_matches_its_ledgers(
    tmp_path: Path, tiny_models_dir: Path, ray_session
) -> None:
    from launch.compare import CompareSettings, run_compare
    from tvg.synth import write_dataset

    data = tmp_path / "data"
    write_dataset(data, n_train=8, n_val=3, n_test=0, seed=7)
    out = tmp_path / "compare"
    settings = CompareSettings(
        config="demo_opd",
        objectives=("opd_full_rkl", "grpo"),
        budget=Budget("samples", 4),
        seeds=(0, 1),
        out_dir=str(out),
        sweep_budget=Budget("samples", 2),
        lrs={"grpo": (1e-4, 1e-3), "opd_full_rkl": (1e-3,)},
        assets_dir=None,
        references={"floor": 10.0, "teacher": 60.0},
        overrides=(
            f"model.student={tiny_models_dir / 'qwen3_vl-student'}",
            f"model.teacher={tiny_models_dir / 'qwen3_vl-teacher'}",
            f"data.train={data / 'train.json'}",
            f"data.val={data / 'val.json'}",
            f"data.video_root={data / 'videos'}",
            "trainer.prompts_per_step=2",
            "rollout.n=2",
            "rollout.max_new_tokens=10",
            "eval.every_steps=1",
            "eval.max_new_tokens=10",
            "learner.micro_batch_size=2",
            "trainer.mismatch_every=0",
        ),
    )
    summary = run_compare(settings)
    for name in (
        "REPORT.md",
        "plot_data.json",
        "results.json",
        "compare.json",
        "time_per_phase.png",
    ):
        assert (out / name).is_file(), name
    for axis in ("train_seconds", "learner_flops", "samples_seen"):
        assert (out / f"val_miou_vs_{axis}.png").stat().st_size > 1000
    state = json.loads((out / "compare.json").read_text())
    # The sweep ran both grpo learning rates; opd_full_rkl had a single candidate: no sweep.
    assert state["arms"]["opd_full_rkl"]["lr_sweep"] == {}
    assert set(state["arms"]["grpo"]["lr_sweep"]) == {repr(1e-4), repr(1e-3)}
    assert state["arms"]["grpo"]["lr"] in (1e-4, 1e-3)

    plotted = json.loads((out / "plot_data.json").read_text())
    for arm in ("opd_full_rkl", "grpo"):
        for seed in ("0", "1"):
            ledger = [
                json.loads(line)
                for line in (out / "ledgers" / f"{arm}_seed{seed}.jsonl").read_text().splitlines()
            ]
            assert [r["step"] for r in ledger] == [1, 2]  # samples=4 at 2 prompts per step
            evals = [r for r in ledger if "val" in r]
            curve = plotted["curves"][arm][seed]
            assert curve["mIoU"] == [r["val"]["mIoU"] for r in evals]
            assert curve["samples_seen"] == [r["samples_seen"] for r in evals]
            # The driver's own running total of training seconds, written in each record.
            assert curve["train_seconds"] == pytest.approx([r["train_seconds"] for r in evals])
            flops, cumulative = 0.0, {}
            for r in ledger:
                flops += r["learner_flops"]
                cumulative[r["step"]] = flops
            assert curve["learner_flops"] == pytest.approx([cumulative[r["step"]] for r in evals])
        phases = summary["arms"][arm]["phases"]
        assert phases["learner"]["mean"] > 0 and phases["rollout"]["mean"] > 0
        final = summary["arms"][arm]["final_mIoU"]
        assert final["n"] == 2 and not math.isnan(final["mean"])
    report = (out / "REPORT.md").read_text()
    assert "| grpo | 50% (35.0)" in report and "k3 KL 0.04" in report

    # A second call reuses every finished run: the ledgers are not rewritten.
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed*/metrics.jsonl")}
    run_compare(settings)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed*/metrics.jsonl")} == before
