"""The colocated layout (rollout.colocate) end to end: each learner rank owns its vLLM engine.

Against the separate layout on the same seed it must draw the same samples, apply the same
updates and hand its engines bitwise the same weights (the sync checksum); it survives a killed
rank (the learner group restarts, engines included), and resumes exactly from a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loop_runs import loop_config, run_loop

from launch.config import ConfigError, load_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _config(out: Path, data: Path, models: Path, steps: int, colocate: bool, **extra: str):
    """The loop's test config with two engines (colocated with the ranks, or separate)."""
    layout = {
        "trainer.mismatch_every": "0",
        "rollout.num_workers": "2",
        "rollout.colocate": str(colocate).lower(),
    }
    return loop_config("opd", out, data, models, steps, **{**layout, **extra})


_run = run_loop


@pytest.mark.timeout(1500)  # three runs
def test_colocated_layout_equals_the_separate_one_survives_a_kill_and_resumes(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    separate = _run(_config(tmp_path / "separate", loop_data, tiny_models_dir, 3, False))
    cut = tmp_path / "colocated"
    # Rank 0 (which owns rollout engine 0) is killed before step 2's rollout: the learner group
    # restarts with its engines from the start (no checkpoint yet) and the run goes on.
    killed = _config(cut, loop_data, tiny_models_dir, 2, True, **{"fault.kill": "rollout@2"})
    _run(killed)
    events = (cut / "faults.jsonl").read_text()
    assert '"recovery"' in events
    resumed = _run(_config(cut, loop_data, tiny_models_dir, 3, True), resume=True)
    assert [r["step"] for r in resumed] == [1, 2, 3]
    for a, b in zip(separate, resumed, strict=True):
        assert a["tokens_generated"] == b["tokens_generated"]  # the same samples
        assert a["sync_checksum"] == b["sync_checksum"]  # bitwise the same weights in the engines
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
    assert resumed[-1]["time"].get("sync", 0.0) > 0.0
    # Where the learner and rollout phases went (the slowest rank's / worker's parts).
    for last in (separate[-1], resumed[-1]):
        parts = last["learner_parts"]
        assert {"inputs", "student_forward", "loss", "backward", "optimizer"} <= set(parts)
        assert 0 < sum(parts.values()) <= last["learner_rank_s"] <= last["time"]["learner"]
        rollout = last["rollout_parts"]
        assert 0 < rollout["generate"] <= rollout["engine"] <= rollout["round_trip"]
        assert rollout["round_trip"] <= last["time"]["rollout"]
    # What the run asks of the machine, per pool [processes, threads each]: no rollout pool of
    # its own in the colocated layout.
    assert separate[-1]["threads"]["rollout"] == [2, 1]
    assert resumed[-1]["threads"]["learner"] == [2, 1] and "rollout" not in resumed[-1]["threads"]
    placement = json.loads((cut / "placement.json").read_text())
    assert placement["rollout"] == "colocated" and len(placement["pools"]["rollout"]) == 2


@pytest.mark.timeout(1200)
def test_colocated_transformers_engines_sample_with_the_ranks_own_module(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    """rollout.engine=hf colocated under ZeRO-2: each rank's engine samples with the module its
    learner trains (no copy), and the run — through a killed rank and a resume — is step for
    step the separate layout's, whose engines hold copies synced every step."""
    hf = {"rollout.engine": "hf", "trainer.mismatch_every": "1", "learner.zero_stage": "2"}
    separate = _run(_config(tmp_path / "separate", loop_data, tiny_models_dir, 3, False, **hf))
    # Rank 0 (whose module engine 0 samples with) is killed before step 2's rollout: the group
    # restarts, engines included; then the run resumes from its checkpoint to step 3.
    cut = tmp_path / "shared"
    _run(_config(cut, loop_data, tiny_models_dir, 2, True, **hf, **{"fault.kill": "rollout@2"}))
    assert '"recovery"' in (cut / "faults.jsonl").read_text()
    shared = _run(_config(cut, loop_data, tiny_models_dir, 3, True, **hf), resume=True)
    assert [r["step"] for r in shared] == [1, 2, 3]
    for a, b in zip(separate, shared, strict=True):
        assert a["tokens_generated"] == b["tokens_generated"]
        assert a["sync_checksum"] == b["sync_checksum"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
        # The behaviour log-probs (recorded while sampling) are the learner's own.
        assert b["logprob_mismatch_max"] < 1e-4
    engines = {
        name: json.loads((tmp_path / name / "placement.json").read_text())["rollout_engines"]
        for name in ("separate", "shared")
    }
    assert engines["separate"] == [{"engine": "hf", "shares_weights": False}] * 2
    assert engines["shared"] == [{"engine": "hf", "shares_weights": True}] * 2


def test_colocated_layout_refuses_settings_it_would_ignore(tmp_path: Path) -> None:
    base = [f"out_dir={tmp_path}", "rollout.colocate=true", "learner.num_ranks=2"]
    with pytest.raises(ConfigError, match=r"rollout.num_workers \(1\) must equal"):
        load_config("opd", [*base, "rollout.num_workers=1"])
    with pytest.raises(ConfigError, match=r"rollout\.weight_transport='collective'"):
        load_config("opd", [*base, "rollout.num_workers=2", "rollout.weight_transport=collective"])
    with pytest.raises(ConfigError, match=r"resources\.rollout_cpus"):
        load_config("opd", [*base, "rollout.num_workers=2", "resources.rollout_cpus=1"])
    config = load_config("opd", [*base, "rollout.num_workers=2", "learner.threads=2"])
    assert config.rollout.colocate and config.learner.threads == 2
