"""`vopd compare`: budgets, arms, the report's arithmetic, and a tiny real comparison whose plotted
numbers equal its ledgers."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import pytest

from launch.compare import Budget, arm_config, arm_spec, parse_budget
from launch.compare_report import AXES, compute_to_target, run_curve, targets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wallclock=300", Budget("wallclock", 300.0)),
        ("wallclock=5m", Budget("wallclock", 300.0)),
        ("wallclock=1h", Budget("wallclock", 3600.0)),
        ("samples=4000", Budget("samples", 4000.0)),
        ("completions=4800", Budget("completions", 4800.0)),
        ("flops=3.3e12", Budget("flops", 3.3e12)),
        ("flops=3.3T", Budget("flops", 3.3e12)),
        ("flops=500G", Budget("flops", 5e11)),
    ],
)
def test_parse_budget(text: str, expected: Budget) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize(
    "text", ["300", "time=3", "samples=abc", "wallclock=-1", "samples=0", "flops=0", "flops=3X"]
)
def test_parse_budget_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budget(text)


def test_budget_overrides() -> None:
    assert Budget("samples", 100).overrides(16) == [
        "trainer.steps=7",
        "trainer.budget_s=null",
        "trainer.budget_flops=null",
    ]
    assert "trainer.budget_s=60.0" in Budget("wallclock", 60.0).overrides(16)
    flops = Budget("flops", 3.3e12).overrides(16)
    assert "trainer.budget_flops=3300000000000.0" in flops and "trainer.budget_s=null" in flops
    assert str(Budget("flops", 3.3e12)) == "flops=3.3e+12"
    assert parse_budget(str(Budget("flops", 3.3e12))) == Budget("flops", 3.3e12)


def test_noisy_label_arms() -> None:
    noisy = arm_spec("sft@noise25")
    assert noisy.label_noise == 0.25 and noisy.overrides == arm_spec("sft").overrides
    assert "25% of the training spans corrupted" in noisy.notes
    assert arm_spec("grpo@noise50").label_noise == 0.5
    assert arm_spec("opd+tvdf@noise50").label_noise == 0.5  # TVDF selects by the labels
    for label_free in ("opd@noise25", "opd_full_rkl@noise25", "seqkd@noise50"):
        with pytest.raises(ValueError, match="would change nothing"):
            arm_spec(label_free)
    for bad in ("sft@noise0", "sft@noise101", "sft@nois25", "sft@25"):
        with pytest.raises(ValueError, match="@noiseNN"):
            arm_spec(bad)


def test_a_noisy_arm_trains_on_a_corrupted_copy_and_evaluates_clean(tmp_path: Path) -> None:
    from launch.compare import CompareSettings
    from tvg.formats import read_samples

    data = tmp_path / "data"
    data.mkdir()
    records = {
        f"v{i:02d}": {"duration": 30.0, "spans": [[2.0 + i % 5, 12.0 + i % 7]], "queries": ["q?"]}
        for i in range(20)
    }
    for split in ("train", "val"):
        (data / f"{split}.json").write_text(json.dumps(records))
    settings = CompareSettings(
        objectives=("sft@noise50",),
        out_dir=str(tmp_path / "cmp"),
        assets_dir=None,
        overrides=(f"data.train={data / 'train.json'}", f"data.val={data / 'val.json'}"),
    )
    config = arm_config(
        settings, arm_spec("sft@noise50"), 1e-3, 0, Budget("samples", 4), tmp_path / "run"
    )
    noisy = Path(config.data.train)
    assert noisy == tmp_path / "cmp" / "data" / "train_noise50.json"
    assert config.data.val == str(data / "val.json")  # evaluation stays on the clean labels
    assert config.data.video_root == str(data)  # video paths stay relative to the clean file
    clean = read_samples(data / "train.json")
    changed = [a.id for a, b in zip(clean, read_samples(noisy), strict=True) if a.spans != b.spans]
    assert len(changed) == 10  # exactly half the records
    sidecar = json.loads((noisy.parent / "train_noise50.noise.json").read_text())
    assert sidecar["share_requested"] == 0.5 and sidecar["n_corrupted"] == 10
    assert sidecar["seed"] == 0
    # The same file on the next call (the noise is a property of the data, not of the run seed).
    before = noisy.stat().st_mtime_ns
    arm_config(settings, arm_spec("sft@noise50"), 1e-3, 1, Budget("samples", 4), tmp_path / "r1")
    assert noisy.stat().st_mtime_ns == before


def test_the_sweep_run_at_the_main_budget_is_the_first_seeds_run(tmp_path: Path) -> None:
    from launch.compare import CompareSettings, sweep_run_for

    settings = CompareSettings(budget=Budget("flops", 3e12), seeds=(0, 1))
    (tmp_path / "sweep" / "sft" / "lr1e-03").mkdir(parents=True)
    entry = {
        "lr": 1e-3,
        "sweep_stages": [{"budget": "flops=3e+12", "runs": {repr(1e-3): "sweep/sft/lr1e-03"}}],
    }
    assert sweep_run_for(settings, entry, 0, tmp_path) is None  # not finished
    (tmp_path / "sweep" / "sft" / "lr1e-03" / "summary.json").write_text("{}")
    assert sweep_run_for(settings, entry, 0, tmp_path) == "sweep/sft/lr1e-03"
    assert sweep_run_for(settings, entry, 1, tmp_path) is None  # only the sweep's seed
    entry["sweep_stages"][0]["budget"] = "flops=1e+12"  # a shorter sweep budget
    assert sweep_run_for(settings, entry, 0, tmp_path) is None


def test_arm_specs() -> None:
    tvdf = arm_spec("opd+tvdf")
    assert "curriculum.kind=tvdf" in tvdf.overrides
    assert "trainer.objective=opd" in tvdf.overrides
    grpo = arm_spec("grpo")
    assert not any("kl_coef" in o for o in grpo.overrides)  # TimeLens: no KL to a reference
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
        start="floor",
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


def _write_assets(root: Path, competent: bool) -> Path:
    assets = {
        "version": 1,
        "data": str(root / "data"),
        "student": str(root / "student"),
        "teacher": str(root / "teacher"),
    }
    if competent:
        assets["student_competent"] = {
            "model": str(root / "student_competent"),
            "status": "in band",
        }
    (root / "assets.json").write_text(json.dumps(assets))
    return root


def test_start_point_sets_the_student_and_the_kl_reference(tmp_path: Path) -> None:
    from launch.commands.compare import settings_from_args
    from launch.compare import asset_overrides

    root = _write_assets(tmp_path, competent=True)
    for start, student in (("floor", "student"), ("competent", "student_competent")):
        overrides = asset_overrides(str(root), start)
        assert f"model.student={root / student}" in overrides
        assert f"model.reference={root / student}" in overrides
        assert f"model.teacher={root / 'teacher'}" in overrides
    assert settings_from_args(_args()).start == "floor"
    settings = settings_from_args(_args(assets=str(root), start="competent"))
    assert settings.start == "competent"
    grpo = arm_config(settings, arm_spec("grpo"), 3e-4, 0, Budget("samples", 4), tmp_path / "r")
    assert grpo.model.student == grpo.model.reference == str(root / "student_competent")


def test_competent_start_needs_the_competent_student(tmp_path: Path) -> None:
    from launch.compare import asset_overrides

    root = _write_assets(tmp_path, competent=False)
    assert asset_overrides(str(root))[0] == f"model.student={root / 'student'}"
    with pytest.raises(ValueError, match="no competent student"):
        asset_overrides(str(root), "competent")
    with pytest.raises(ValueError, match="needs prepared demo assets"):
        asset_overrides(None, "competent")
    assert asset_overrides(None, "floor") == []


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
    hit = compute_to_target(curve, goals["50%"])
    assert hit is not None
    assert {k: hit[k] for k in ("train_seconds", "learner_flops", "samples_seen")} == {
        "train_seconds": 8.0,
        "learner_flops": 40.0,
        "samples_seen": 16.0,
    }
    # These records predate sample_ids and name no rollout.n: those units are unknown (n/a).
    assert math.isnan(hit["distinct_prompts"]) and math.isnan(hit["completions"])
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
            # One process per run (a learner rank sampling with its own module, the teacher in
            # it): what is tested is the comparison's bookkeeping, not the layout.
            "rollout.colocate=true",
            "rollout.weight_transport=object_store",
            "rollout.engine=hf",
            "rollout.num_workers=1",
            "learner.num_ranks=1",
        ),
        arm_overrides={"opd_full_rkl": ("teacher.colocate=true",)},
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
    for axis in AXES:
        assert (out / f"val_miou_vs_{axis}.png").stat().st_size > 1000
    assert (out / "lr_sweep.png").stat().st_size > 1000
    state = json.loads((out / "compare.json").read_text())
    # The sweep ran both grpo learning rates; opd_full_rkl had a single candidate: no sweep.
    assert state["arms"]["opd_full_rkl"]["lr_sweep"] == {}
    assert state["arms"]["opd_full_rkl"]["sweep_stages"] == []
    assert set(state["arms"]["grpo"]["lr_sweep"]) == {repr(1e-4), repr(1e-3)}
    assert state["arms"]["grpo"]["lr"] in (1e-4, 1e-3)
    (stage,) = state["arms"]["grpo"]["sweep_stages"]  # no --sweep-extend: one stage
    assert stage["budget"] == "samples=2" and stage["runs"][repr(1e-4)] == "sweep/grpo/lr1e-04"
    assert (out / "ledgers" / "sweep_grpo_lr1e-04.jsonl").is_file()
    assert (out / "ledgers" / "grpo_seed0.config.yaml").is_file()

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
            flops, rows, ids, cumulative = 0.0, 0.0, set(), {}
            for r in ledger:
                flops += r["learner_flops"]
                rows += (len(r["sample_ids"]) - r["skipped_prompts"]) * 2  # rollout.n=2
                ids.update(r["sample_ids"])
                cumulative[r["step"]] = (flops, rows, len(ids))
            steps = [r["step"] for r in evals]
            assert curve["learner_flops"] == pytest.approx([cumulative[s][0] for s in steps])
            assert curve["completions"] == pytest.approx([cumulative[s][1] for s in steps])
            assert curve["distinct_prompts"] == [cumulative[s][2] for s in steps]
        phases = summary["arms"][arm]["phases"]
        assert phases["learner"]["mean"] > 0 and phases["rollout"]["mean"] > 0
        final = summary["arms"][arm]["final_mIoU"]
        assert final["n"] == 2 and not math.isnan(final["mean"])
    report = (out / "REPORT.md").read_text()
    assert "50% (35.0)" in report and "no KL to a reference" in report
    # The protocol table, read from the runs' config.yaml: 2 prompts x 2 samples, PPO 1 x 1.
    assert "| grpo | grpo | 2 | 2 | 4 | 1 x 1 | 0 |" in report
    assert summary["arms"]["grpo"]["protocol"]["source"] == "config.yaml"

    # A second call reuses every finished run: the ledgers are not rewritten.
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed*/metrics.jsonl")}
    run_compare(settings)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed*/metrics.jsonl")} == before


# --- the budget views, the protocol table and the lr sweeps, on small synthetic ledgers ---


def _step(
    step: int,
    ids: list[str],
    *,
    objective: str = "grpo",
    val: float | None = None,
    seconds: float = 1.0,
    **extra,
) -> dict:
    """One new-format ledger record that took `seconds` of training."""
    record = {
        "step": step,
        "objective": objective,
        "sample_ids": ids,
        "samples_seen": 0,  # filled by _ledger
        "learner_flops": 1e9,
        "skipped_prompts": 0.0,
        "time": {"step": seconds + (0.5 if val is not None else 0.0)},
        **extra,
    }
    if val is not None:
        record["time"]["eval"] = 0.5
        record["val"] = {"mIoU": val, "parse_rate": 100.0}
    return record


def _ledger(records: list[dict]) -> list[dict]:
    seen = 0
    for record in records:
        seen += len(record["sample_ids"])
        record["samples_seen"] = seen
    return records


def test_distinct_prompts_are_counted_once_and_prompts_seen_with_repeats() -> None:
    records = _ledger(
        [
            _step(1, ["a#0", "b#0"], val=20.0),
            _step(2, ["b#0", "c#0"], val=21.0),
            _step(3, ["a#0", "a#1"]),  # a#1: another query on the same video, another prompt
            _step(4, ["c#0", "b#0"], val=22.0),
        ]
    )
    curve = run_curve(records, rows_per_prompt=8)
    assert curve["distinct_prompts"] == [2.0, 3.0, 4.0]
    assert curve["samples_seen"] == [2.0, 4.0, 8.0]
    assert curve["step"] == [1.0, 2.0, 4.0]
    assert curve["train_seconds"] == [1.0, 2.0, 4.0]  # evaluation excluded


def test_completions_count_generated_rows_and_sft_training_rows() -> None:
    # GRPO, 2 prompts x 8: the ledger's `completions` counts only the rows kept after dynamic
    # filtering (8 when a group is dropped); generated rows are (prompts - skipped) x n.
    grpo = _ledger(
        [
            _step(1, ["a", "b"], completions=8.0, dropped_groups=1.0, val=20.0),
            _step(2, ["c", "d"], completions=8.0, skipped_prompts=1.0, val=21.0),
        ]
    )
    assert run_curve(grpo, rows_per_prompt=8)["completions"] == [16.0, 24.0]
    # TempSamp-R1, 7 sampled + 1 ground-truth row: the injected row is not generated.
    tempsamp = _ledger([_step(1, ["a", "b"], objective="tempsamp", val=20.0)])
    assert run_curve(tempsamp, rows_per_prompt=7)["completions"] == [14.0]
    # SFT samples nothing: its column counts the ground-truth training rows, one per prompt.
    sft = _ledger([_step(s, [f"p{s}_{i}" for i in range(16)], objective="sft") for s in (1, 2)])
    sft[-1]["val"] = {"mIoU": 30.0, "parse_rate": 100.0}
    assert run_curve(sft)["completions"] == [32.0]
    # Sequence-level KD with 2 teacher answers per prompt: 2 training rows per prompt.
    seqkd = _ledger([_step(1, ["a", "b", "c"], objective="seqkd", val=25.0)])
    assert run_curve(seqkd, rows_per_prompt=2)["completions"] == [6.0]
    # Unknown rollout.n for a sampling objective: n/a, never a guess.
    assert math.isnan(run_curve(grpo)["completions"][0])


def _write_run(run_dir: Path, records: list[dict], overrides: list[str] | None) -> None:
    from launch.config import config_to_yaml, load_config

    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if overrides is not None:
        config = load_config("demo_opd", [*overrides, f"out_dir={run_dir}"])
        (run_dir / "config.yaml").write_text(config_to_yaml(config))


def _state(arms: dict, **settings) -> dict:
    return {
        "settings": {
            "config": "demo_opd",
            "budget": "samples=64",
            "seeds": [0, 1],
            "sweep_budget": "samples=16",
            "overrides": [],
            **settings,
        },
        "references": {"floor": 20.0, "teacher": 80.0},  # targets 50, 68, 74
        "arms": arms,
    }


def _arm(name: str, lr: float, seeds: tuple[int, ...] = (0, 1), **extra) -> dict:
    from launch.compare import arm_spec

    return {
        "overrides": list(arm_spec(name).overrides),
        "extra_overrides": [],
        "notes": arm_spec(name).notes,
        "lr_sweep": {},
        "lr": lr,
        "runs": {str(s): f"runs/{name}/seed{s}" for s in seeds},
        **extra,
    }


def _grpo_run(seed: int, reach_at: int | None) -> list[dict]:
    """4 steps of 2 prompts x 8 samples, 2 s each; val mIoU 70 from step `reach_at` on."""
    return _ledger(
        [
            _step(
                s,
                [f"g{seed}_{s}_{i}" for i in range(2)],
                val=70.0 if reach_at is not None and s >= reach_at else 30.0,
                seconds=2.0,
                updates=1,
            )
            for s in range(1, 5)
        ]
    )


def _opd_run(reach_at: int) -> list[dict]:
    """4 steps of 16 prompts x 1 sample (the same 32 prompts twice), 1 s each."""
    return _ledger(
        [
            _step(
                s,
                [f"p{(16 * s + i) % 32}" for i in range(16)],
                objective="opd",
                val=70.0 if s >= reach_at else 30.0,
                updates=1,
            )
            for s in range(1, 5)
        ]
    )


def test_time_to_target_in_every_unit_with_ratios_to_grpo(tmp_path: Path) -> None:
    from launch.compare_report import write_report

    out = tmp_path / "cmp"
    grpo_cfg = list(arm_spec("grpo").overrides)
    opd_cfg = list(arm_spec("opd").overrides)
    _write_run(out / "runs/grpo/seed0", _grpo_run(0, reach_at=2), grpo_cfg)
    _write_run(out / "runs/grpo/seed1", _grpo_run(1, reach_at=4), grpo_cfg)
    _write_run(out / "runs/opd/seed0", _opd_run(reach_at=1), opd_cfg)
    _write_run(out / "runs/opd/seed1", _opd_run(reach_at=3), opd_cfg)
    (out / "compare.json").write_text(
        json.dumps(_state({"grpo": _arm("grpo", 3e-4), "opd": _arm("opd", 1e-3)}))
    )
    summary = write_report(out)
    grpo, opd = summary["arms"]["grpo"], summary["arms"]["opd"]
    # GRPO reaches 50% at step 2 (seed 0) and 4 (seed 1).
    reach = grpo["targets"]["50%"]
    assert reach["reached"] == 2
    assert reach["train_seconds"]["mean"] == pytest.approx(6.0)  # 4 s and 8 s
    assert reach["learner_flops"]["mean"] == pytest.approx(3e9)
    assert reach["completions"]["mean"] == pytest.approx(48.0)  # 32 and 64 rows
    assert reach["distinct_prompts"]["mean"] == pytest.approx(6.0)  # 4 and 8 prompts
    assert reach["samples_seen"]["mean"] == pytest.approx(6.0)
    # OPD at step 1 and 3: 16 and 48 prompts seen, but only 16 and 32 distinct ones.
    mine = opd["targets"]["50%"]
    assert mine["train_seconds"]["mean"] == pytest.approx(2.0)
    assert mine["completions"]["mean"] == pytest.approx(32.0)
    assert mine["distinct_prompts"]["mean"] == pytest.approx(24.0)
    assert mine["samples_seen"]["mean"] == pytest.approx(32.0)
    ratios = summary["ratios"]["opd"]["50%"]
    assert ratios["train_seconds"]["ratio"] == pytest.approx(2.0 / 6.0)
    assert ratios["train_seconds"]["kind"] == "ratio"
    expected_spread = (2.0 / 6.0) * math.hypot(1.0 / 2.0, 2.0 / 6.0)
    assert ratios["train_seconds"]["spread"] == pytest.approx(expected_spread)
    assert ratios["completions"]["ratio"] == pytest.approx(32.0 / 48.0)
    assert ratios["distinct_prompts"]["ratio"] == pytest.approx(24.0 / 6.0)
    assert ratios["samples_seen"]["ratio"] == pytest.approx(32.0 / 6.0)
    # What each arm spent of its budget, in every unit.
    assert grpo["totals"]["completions"]["mean"] == pytest.approx(64.0)
    assert opd["totals"]["distinct_prompts"]["mean"] == pytest.approx(32.0)
    assert opd["totals"]["samples_seen"]["mean"] == pytest.approx(64.0)
    # The JSON files hold what the plots show: the per-seed curves and the mean lines.
    plotted = json.loads((out / "plot_data.json").read_text())
    assert plotted["curves"]["opd"]["1"]["distinct_prompts"] == [16.0, 32.0, 32.0, 32.0]
    assert plotted["means"]["grpo"]["completions"]["x"] == [16.0, 32.0, 48.0, 64.0]
    results = json.loads((out / "results.json").read_text())
    assert results["ratios"]["opd"]["50%"]["samples_seen"]["ratio"] == pytest.approx(32 / 6)
    for axis in AXES:
        assert (out / f"val_miou_vs_{axis}.png").stat().st_size > 1000
    report = (out / "REPORT.md").read_text()
    assert "| opd | 70.0 ± 0.0 | 50% (50.0) | 2/2 | 2 ± 1 (0.33 ± 0.20 x GRPO) |" in report


def test_ratio_bounds_when_one_side_never_reaches_the_target() -> None:
    from launch.compare_report import ratio_to_baseline

    def stats(mean: float, n: int = 2) -> dict:
        return {"mean": mean, "std": 0.0, "n": n}

    nothing = {"mean": math.nan, "std": math.nan, "n": 0}
    # GRPO never reached it within its 600 s: the arm's 150 s / 600 s is an upper bound.
    upper = ratio_to_baseline(
        {"reached": 2, "stats": stats(150.0)},
        {"reached": 0, "stats": nothing},
        stats(300.0),
        stats(600.0),
    )
    assert upper["kind"].startswith("upper") and upper["ratio"] == pytest.approx(0.25)
    # The arm never reached it in its 300 s, GRPO did at 100 s: more than 3 x GRPO.
    lower = ratio_to_baseline(
        {"reached": 0, "stats": nothing},
        {"reached": 2, "stats": stats(100.0)},
        stats(300.0),
        stats(600.0),
    )
    assert lower["kind"] == "lower bound" and lower["ratio"] == pytest.approx(3.0)
    neither = ratio_to_baseline(
        {"reached": 0, "stats": nothing},
        {"reached": 0, "stats": nothing},
        stats(300.0),
        stats(600.0),
    )
    assert neither["kind"] == "not reached" and neither["ratio"] is None
    # Reached, but the unit is missing from the ledgers (an old ledger): n/a.
    missing = ratio_to_baseline(
        {"reached": 2, "stats": nothing},
        {"reached": 2, "stats": stats(1.0)},
        nothing,
        stats(1.0),
    )
    assert missing["kind"] == "n/a" and missing["ratio"] is None


def test_protocol_table_reads_each_arms_config_yaml(tmp_path: Path) -> None:
    from launch.compare_report import write_report

    out = tmp_path / "cmp"
    # GRPO at 16 prompts x 8 (`--set grpo:trainer.prompts_per_step=16`), 2 PPO epochs x 4, and
    # TRL's KL penalty put back (the arm's default has none).
    extra = [
        "trainer.prompts_per_step=16",
        "trainer.ppo_epochs=2",
        "trainer.ppo_mini_batches=4",
        "trainer.objective_kwargs={kl_coef: 0.04, kl_estimator: k3, filter_zero_variance: true}",
    ]
    grpo_records = _grpo_run(0, reach_at=None)
    for record in grpo_records:
        record.update(updates=8, zero_variance_share=0.25, lr=3e-4)
    _write_run(out / "runs/grpo/seed0", grpo_records, [*arm_spec("grpo").overrides, *extra])
    tempsamp = _ledger([_step(1, ["a", "b"], objective="tempsamp", val=30.0, updates=1)])
    _write_run(out / "runs/tempsamp/seed0", tempsamp, list(arm_spec("tempsamp").overrides))
    sft = _ledger([_step(1, [f"p{i}" for i in range(16)], objective="sft", val=30.0)])
    _write_run(out / "runs/sft/seed0", sft, list(arm_spec("sft").overrides))
    arms = {
        "grpo": _arm("grpo", 3e-4, (0,), extra_overrides=extra),
        "tempsamp": _arm("tempsamp", 1e-3, (0,)),
        "sft": _arm("sft", 1e-3, (0,)),
    }
    (out / "compare.json").write_text(json.dumps(_state(arms, seeds=[0])))
    summary = write_report(out)
    protocol = summary["arms"]["grpo"]["protocol"]
    assert protocol["source"] == "config.yaml"
    assert protocol["prompts_per_step"] == 16 and protocol["samples_per_prompt"] == 8
    assert protocol["rows_per_step"] == 128
    assert (protocol["ppo_epochs"], protocol["ppo_mini_batches"]) == (2, 4)
    assert protocol["kl_coef"] == 0.04 and protocol["kl_estimator"] == "k3"
    assert protocol["objective_kwargs"]["filter_zero_variance"] is True
    assert protocol["schedule"] == "cosine"  # demo_opd's
    assert protocol["measured"]["updates_per_step"]["mean"] == 8.0
    report = (out / "REPORT.md").read_text()
    assert "| grpo | grpo | 16 | 8 | 128 | 2 x 4 | 0.04 (k3) |" in report
    assert "| 8.00 | 25.0 | 0.0003 | config.yaml |" in report
    assert "| tempsamp | tempsamp | 2 | 7 + 1 ground-truth row | 16 | 1 x 1 |" in report
    assert "| sft | sft | 16 | 0 + 1 ground-truth row | 16 | 1 x 1 | — |" in report
    # The configs travel with the ledgers, so the table survives the run directories.
    assert (out / "ledgers" / "grpo_seed0.config.yaml").is_file()


@pytest.mark.parametrize(
    ("finals", "min_gap", "separated", "chosen", "why"),
    [
        ({"0.0003": 29.5, "0.001": 29.2}, 2.0, False, 3e-4, "differ by 0.3 < 2"),
        ({"0.0003": 29.5, "0.001": 29.2}, 0.2, True, 3e-4, "leads"),
        ({"0.001": 24.5, "0.002": 13.9}, 2.0, False, 1e-3, "within 2 mIoU of the blind floor"),
        ({"0.0001": 31.0, "0.0003": 45.0, "0.001": 40.0}, 2.0, True, 3e-4, "leads"),
        ({"0.0003": 45.0, "0.0001": 45.0}, 2.0, False, 1e-4, "differ by 0.0"),  # tie: smaller
        ({"0.0001": float("nan"), "0.001": 40.0}, 2.0, False, 1e-3, "n/a"),
        ({"0.0001": float("nan"), "0.001": float("nan")}, 2.0, False, 1e-4, "no candidate"),
    ],
)
def test_sweep_separation_rule(
    finals: dict, min_gap: float, separated: bool, chosen: float, why: str
) -> None:
    from launch.compare_report import sweep_verdict

    verdict = sweep_verdict(finals, floor=26.6, min_gap=min_gap)
    assert verdict["separated"] is separated
    assert verdict["chosen"] == chosen
    assert why in verdict["reason"]


def test_unseparated_sweep_is_extended_once_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import launch.compare as compare

    finals = {  # by run directory: the short sweep sits at the floor, the long one separates
        "sweep/grpo/lr1e-04": 27.0,
        "sweep/grpo/lr1e-03": 27.5,
        "sweep/grpo/samples64/lr1e-04": 45.0,
        "sweep/grpo/samples64/lr1e-03": 31.0,
    }
    ran: list[str] = []
    out = tmp_path / "cmp"

    def fake_run_one(config) -> dict:
        ran.append(str(Path(config.out_dir).relative_to(out)))
        return {}

    monkeypatch.setattr(compare, "run_one", fake_run_one)
    monkeypatch.setattr(
        compare, "final_val_miou", lambda run_dir: finals[str(run_dir.relative_to(out))]
    )
    settings = compare.CompareSettings(
        objectives=("grpo",),
        sweep_budget=Budget("samples", 16),
        sweep_extend=Budget("samples", 64),
        assets_dir=None,
        out_dir=str(out),
    )
    entry: dict = {"sweep_stages": []}
    out.mkdir()
    args = (settings, arm_spec("grpo"), (1e-4, 1e-3), 26.6, out, entry, {"arms": {}})
    compare.sweep_arm(*args)
    assert ran == list(finals)
    first, second = entry["sweep_stages"]
    assert not first["separated"] and "blind floor" in first["reason"]
    assert second["budget"] == "samples=64" and second["separated"]
    assert entry["lr"] == 1e-4 and entry["lr_sweep"] == {repr(1e-4): 45.0, repr(1e-3): 31.0}
    assert "extended sweep at samples=64" in entry["chosen_by"]
    assert "WARNING: grpo's lr sweep at samples=16 is not separated" in capsys.readouterr().out
    # Without an extension: one stage, the best candidate, flagged.
    ran.clear()
    entry = {"sweep_stages": []}
    settings.sweep_extend = None
    compare.sweep_arm(settings, arm_spec("grpo"), (1e-4, 1e-3), 26.6, out, entry, {"arms": {}})
    assert len(entry["sweep_stages"]) == 1 and entry["lr"] == 1e-3
    assert "NOT separated" in entry["chosen_by"]
    assert "--sweep-extend BUDGET" in capsys.readouterr().out


def test_report_shows_the_whole_sweep_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from launch.compare_report import write_report

    out = tmp_path / "cmp"
    _write_run(out / "runs/grpo/seed0", _grpo_run(0, reach_at=None), None)
    curves = {"lr1e-04": [25.0, 29.2], "lr3e-04": [26.0, 29.5]}
    for tag, values in curves.items():
        records = _ledger([_step(s + 1, [f"x{s}"], val=v) for s, v in enumerate(values)])
        _write_run(out / "sweep/grpo" / tag, records, None)
    stage = {
        "budget": "wallclock=90s",
        "final": {repr(1e-4): 29.2, repr(3e-4): 29.5},
        "runs": {repr(1e-4): "sweep/grpo/lr1e-04", repr(3e-4): "sweep/grpo/lr3e-04"},
    }
    arm = _arm("grpo", 3e-4, (0,), lr_sweep=stage["final"], sweep_stages=[stage])
    (out / "compare.json").write_text(json.dumps(_state({"grpo": arm}, seeds=[0])))
    summary = write_report(out)
    assert "not separated" in capsys.readouterr().out
    (verdict,) = [s["verdict"] for s in summary["arms"]["grpo"]["sweep"]]
    assert not verdict["separated"] and verdict["gap"] == pytest.approx(0.3)
    report = (out / "REPORT.md").read_text()
    assert "| grpo | wallclock=90s | 0.0001: 29.2, 0.0003: 29.5 **(best)** | 0.3 | 9.5 |" in report
    assert "**not separated**" in report and "**Warnings:**" in report
    plotted = json.loads((out / "plot_data.json").read_text())
    (sweep,) = plotted["sweeps"]["grpo"]
    assert sweep["curves"][repr(1e-4)]["mIoU"] == [25.0, 29.2]
    assert sweep["x_axis"] == "train_seconds" and sweep["separated"] is False
    assert (out / "lr_sweep.png").stat().st_size > 1000
    assert (out / "ledgers" / "sweep_grpo_lr3e-04.jsonl").is_file()


def test_report_only_on_old_format_ledgers(tmp_path: Path) -> None:
    """Ledgers from before `updates`, `learner` and the advantage stats, kept only as gzipped
    copies under ledgers/ (no run directories, no config.yaml), with the old
    `reward.dynamic_filtering` override: the report still builds, with n/a where a field is
    missing."""
    import gzip

    from launch.cli import main

    out = tmp_path / "old"
    (out / "ledgers").mkdir(parents=True)
    old_grpo = [
        "trainer.objective=grpo",
        "trainer.prompts_per_step=2",
        "rollout.n=8",
        "reward.dynamic_filtering=true",
        "trainer.objective_kwargs={kl_coef: 0.04, kl_estimator: k3}",
    ]
    for name, n in (("grpo", 8), ("opd_full_rkl", 1)):
        for seed in (0, 1):
            records = _grpo_run(seed, reach_at=3) if name == "grpo" else _opd_run(reach_at=2)
            for record in records:
                record.pop("updates")
                record["objective"] = name
                record["completions"] = 2.0 * n
                if name == "grpo":
                    record.update(groups=2.0, zero_variance_groups=1.0)
            if seed == 1:
                for record in records:
                    record.pop("sample_ids")  # even older: no sample ids at all
            text = "".join(json.dumps(r) + "\n" for r in records)
            with gzip.open(out / "ledgers" / f"{name}_seed{seed}.jsonl.gz", "wt") as handle:
                handle.write(text)
    arms = {
        "opd_full_rkl": {**_arm("opd_full_rkl", 1e-3), "lr_sweep": {"0.001": 21.0, "0.002": 13.9}},
        "grpo": {**_arm("grpo", 3e-4), "overrides": old_grpo},
    }
    (out / "compare.json").write_text(json.dumps(_state(arms, sweep_budget="wallclock=60s")))
    assert main(["compare", "--report-only", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    grpo = results["arms"]["grpo"]
    protocol = grpo["protocol"]
    assert protocol["source"].startswith("compare.json overrides")
    assert protocol["ppo_epochs"] is None and protocol["measured"]["updates_per_step"]["n"] == 0
    assert protocol["objective_kwargs"]["filter_zero_variance"] is True  # the legacy key
    assert protocol["measured"]["zero_variance_share"]["mean"] == pytest.approx(0.5)
    # Seed 1 has no sample_ids: distinct prompts come from seed 0 alone; completions from both.
    assert grpo["targets"]["50%"]["distinct_prompts"]["n"] == 1
    assert grpo["targets"]["50%"]["completions"]["n"] == 2
    assert results["arms"]["opd_full_rkl"]["sweep"][0]["verdict"]["separated"] is False
    report = (out / "REPORT.md").read_text()
    assert "| grpo | grpo | 2 | 8 | 16 | n/a x n/a | 0.04 (k3) |" in report
    assert "| n/a | 50.0 | n/a | compare.json overrides" in report
    assert "within 2 mIoU of the blind floor" in report
    assert (out / "lr_sweep.png").is_file()  # finals only: their ledgers are gone


def test_report_only_on_a_stored_old_comparison(tmp_path: Path) -> None:
    """benchmarks/results/compare_round2 (gzipped ledgers of the format before commit 59d7600):
    the GRPO sweep it ran (29.5 vs 29.2 at 60 s) is reported as not separated."""
    from launch.compare_report import write_report

    source = Path(__file__).resolve().parents[2] / "benchmarks/results/compare_round2"
    if not source.is_dir():
        pytest.skip("no stored comparison")
    out = tmp_path / "round2"
    shutil.copytree(source, out)
    summary = write_report(out)
    (stage,) = summary["arms"]["grpo"]["sweep"]
    assert not stage["verdict"]["separated"] and stage["verdict"]["chosen"] == 3e-4
    assert summary["arms"]["sft"]["completions_unit"].startswith("training rows")
    assert summary["arms"]["grpo"]["totals"]["completions"]["n"] == 2
    assert "| grpo | wallclock=60s |" in (out / "REPORT.md").read_text()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sweep_min_gap": -1.0}, "--sweep-min-gap"),
        ({"sweep_budget": "samples=64", "sweep_extend": "samples=32"}, "must be longer"),
        ({"sweep_budget": "none", "sweep_extend": "wallclock=300"}, "needs a sweep"),
        ({"sweep_budget": "samples=64", "sweep_extend": "forever"}, "budget"),
    ],
)
def test_cli_sweep_options_rejected(kwargs: dict, message: str) -> None:
    from launch.commands.compare import settings_from_args

    with pytest.raises(ValueError, match=message):
        settings_from_args(_args(**kwargs))


def test_cli_sweep_options_and_an_arms_own_batch_shape(tmp_path: Path) -> None:
    from launch.commands.compare import settings_from_args

    settings = settings_from_args(
        _args(
            sweep_budget="wallclock=300",
            sweep_extend="wallclock=600",
            sweep_min_gap=3.0,
            set=["grpo:trainer.prompts_per_step=16"],
        )
    )
    assert settings.sweep_budget == Budget("wallclock", 300.0)
    assert settings.sweep_extend == Budget("wallclock", 600.0)
    assert settings.sweep_min_gap == 3.0
    # GRPO at 16 prompts x 8: a samples budget is counted in its own prompts per step.
    grpo = arm_config(settings, arm_spec("grpo"), 3e-4, 0, Budget("samples", 64), tmp_path / "g")
    assert (grpo.trainer.prompts_per_step, grpo.rollout.n, grpo.trainer.steps) == (16, 8, 4)
    opd = arm_config(settings, arm_spec("opd"), 1e-3, 0, Budget("samples", 64), tmp_path / "o")
    assert opd.trainer.prompts_per_step == 16 and opd.rollout.n == 1


def test_a_completions_budget_gives_every_arm_the_same_completions(tmp_path: Path) -> None:
    from launch.commands.compare import settings_from_args

    settings = settings_from_args(_args())
    budget = parse_budget("completions=4800")
    steps = {}
    for name in ("opd", "grpo", "tempsamp", "sft", "seqkd_sampled"):
        config = arm_config(settings, arm_spec(name), 1e-3, 0, budget, tmp_path / name)
        steps[name] = config.trainer.steps
    # 16 prompts x 1 and 2 x 8 sampled rows; TempSamp-R1 samples 2 x 7 (its ground-truth rows
    # are not generated); SFT trains on 16 ground-truth rows; sequence-level KD on 16 x 4
    # teacher answers.
    assert steps == {"opd": 300, "grpo": 300, "tempsamp": 343, "sft": 300, "seqkd_sampled": 75}
    assert str(budget) == "completions=4800"
    with pytest.raises(ValueError, match="completions per step"):
        budget.overrides(16, 0)


def test_every_arm_is_a_valid_config() -> None:
    # An arm whose overrides the config refuses would fail only when its turn comes.
    from launch.compare import ARMS
    from launch.config import load_config

    for name in [*ARMS, *(f"{a}+tvdf" for a in ("opd", "opd_full_rkl"))]:
        config = load_config("demo_opd", list(arm_spec(name).overrides))
        assert config.trainer.objective in name or config.trainer.objective == "seqkd"
