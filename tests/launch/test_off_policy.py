"""trainer.off_policy_steps=1 on the real stack: the next batch samples while the current one
trains, from weights one update older (the ledger says so), and a resumed run samples exactly what
the uninterrupted one did (no batch is drawn past a checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from loop_runs import loop_config, run_loop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(900)  # two runs
def test_one_step_off_policy_samples_ahead_records_staleness_and_resumes_exactly(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # A large lr moves the student visibly in one update, so a batch sampled one version back
    # disagrees with the learner's recomputed log-probs and an on-policy one does not.
    extra = {"trainer.off_policy_steps": "1", "learner.lr": "1e-2", "eval.every_steps": "4"}
    full_dir = tmp_path / "full"
    full = run_loop(loop_config("opd", full_dir, loop_data, tiny_models_dir, steps=4, **extra))
    assert [r["step"] for r in full] == [1, 2, 3, 4]
    # Checkpoints every 2 steps: step 1 and 3 sample ahead; 2 and 4 (checkpoint) do not.
    assert [r["staleness"] for r in full] == [0, 1, 0, 1]
    for record in full:
        assert record["sync_checksum"] and record["rollout_sample_s"] > 0
        if record["staleness"]:
            assert record["logprob_mismatch_max"] > 1e-3  # sampled by the previous weights
        else:
            assert record["logprob_mismatch_max"] < 1e-3  # float32: the learner's own weights
    # Resume from the step-2 checkpoint of the same run: steps 3-4 again, bitwise the same.
    cut = tmp_path / "cut"
    shutil.copytree(full_dir, cut)
    shutil.rmtree(cut / "checkpoints" / "step_00000004")
    config = loop_config("opd", cut, loop_data, tiny_models_dir, steps=4, **extra)
    resumed = run_loop(config, resume=True)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(full[2:], resumed[2:], strict=True):
        assert a["sample_ids"] == b["sample_ids"] and a["staleness"] == b["staleness"]
        assert a["tokens_generated"] == b["tokens_generated"]
        assert a["sync_checksum"] == b["sync_checksum"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
