"""The training loop end to end on the real stack: 2 ZeRO-3 learner ranks, 1 vLLM rollout worker,
1 vLLM teacher worker, local Ray; every objective; exact resume; a half-written checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from loop_runs import loop_config, run_loop

from launch.ledger import read_ledger

# Every test runs the training loop (a 1-step run: ~90 s on a busy 2-core machine).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


_config = loop_config
_run = run_loop


@pytest.mark.parametrize("preset", ["opd", "opd_full_rkl", "grpo", "tempsamp", "sft"])
def test_each_objective_trains_syncs_and_evaluates(
    preset: str, tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    records = _run(_config(preset, tmp_path / preset, loop_data, tiny_models_dir, steps=2))
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert np.isfinite(record["loss"]) and not record["skipped_update"]
        if preset != "sft" or "val" in record:  # SFT syncs only before evaluating
            assert record["sync_checksum"]  # the driver verified every engine's checksum
        assert record["tokens_trained"] > 0
        # The learner FLOPs count the prompt as the learner ran it (video tokens expanded), also
        # for rows the student did not sample (SFT's targets): far more than the answers.
        assert record["tokens_input"] > 3 * record["tokens_trained"]
        if preset != "sft":
            # float32 on both sides: the sampler's log-probs are the learner's (pre-update).
            assert record["logprob_mismatch_max"] < 1e-3
            assert record["completions"] == 6
        if preset.startswith("opd"):
            assert record["tokens_teacher_scored"] == record["tokens_generated"]
        assert record["updates"] == 1 and record["lr"] > 0  # lr read back from the learners
        if preset in ("grpo", "tempsamp"):
            learner = record["learner"]  # the learner's loss metrics reach the ledger
            assert {"clip_frac", "ratio", "ratio_max", "tokens"} <= set(learner)
            # One pass over an on-policy batch: the ratio is ~1 and the clip never acts.
            assert learner["clip_frac"] == 0.0 and abs(learner["ratio"] - 1.0) < 1e-3
            assert {"advantage_mean", "advantage_std", "zero_variance_share"} <= set(record)
    assert set(records[-1]["val"]) >= {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_rate"}
    assert records[-1]["val"]["n"] == 4
    model_dir = Path(records[-1]["checkpoint"]) / "model"
    assert (model_dir / "config.json").is_file() and list(model_dir.glob("*.safetensors"))
    if preset == "opd":  # the checkpoint is an ordinary HF directory: transformers and vLLM load it
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams

        from runtime.hf_compat import load_hf_model

        assert load_hf_model(model_dir) is not None
        assert AutoProcessor.from_pretrained(model_dir) is not None
        llm = LLM(model=str(model_dir), dtype="float32", max_model_len=512, enforce_eager=True)
        assert llm.generate(["hello"], SamplingParams(max_tokens=2), use_tqdm=False)[0].outputs


@pytest.mark.timeout(1200)  # three runs
def test_resume_matches_an_uninterrupted_run(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    full = _run(_config("opd", tmp_path / "full", loop_data, tiny_models_dir, steps=4))
    cut = tmp_path / "cut"
    _run(_config("opd", cut, loop_data, tiny_models_dir, steps=2))
    # A run killed while writing its next checkpoint leaves only a temporary directory behind.
    staging = cut / "checkpoints" / ".tmp_step_00000004"
    shutil.copytree(cut / "checkpoints" / "step_00000002", staging)
    (staging / "state.json").unlink()
    resumed = _run(_config("opd", cut, loop_data, tiny_models_dir, steps=4), resume=True)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(full, resumed, strict=True):
        assert a["samples_seen"] == b["samples_seen"]
        assert a["tokens_generated"] == b["tokens_generated"]  # same samples drawn
        assert a["sync_checksum"] == b["sync_checksum"]  # bitwise-identical weights
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
        assert a["reward_mean"] == pytest.approx(b["reward_mean"], abs=1e-6)
    state = json.loads((cut / "checkpoints" / "step_00000004" / "state.json").read_text())
    assert state["sampler"]["position"] == full[-1]["samples_seen"] % 8


def test_grpo_kl_to_reference_scores_against_the_initial_student(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    config = _config(
        "grpo",
        tmp_path / "grpo_kl",
        loop_data,
        tiny_models_dir,
        steps=2,
        **{"trainer.objective_kwargs": "{kl_coef: 0.04}", "learner.lr": "1e-2"},
    )
    records = _run(config)
    # Step 1 samples from the initial student, which is the reference: the KL is ~0.
    assert abs(records[0]["ref_kl_sampled"]) < 1e-3
    # After one update at a large lr the policy has moved away from the reference.
    assert abs(records[1]["ref_kl_sampled"]) > 1e-4
    assert records[1]["time"]["reference"] > 0


def test_a_step_left_empty_by_dynamic_filtering_skips_the_update(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # The untrained tiny student never overlaps the ground truth: every reward is 0, every group
    # has zero variance, and dynamic filtering drops all of them.
    config = _config(
        "grpo",
        tmp_path / "grpo_empty",
        loop_data,
        tiny_models_dir,
        steps=2,
        **{"trainer.objective_kwargs": "{filter_zero_variance: true}"},
    )
    records = _run(config)
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        if record["zero_variance_groups"] == record["groups"]:
            assert record["skipped_update"] and record["tokens_trained"] == 0
    assert any(r["zero_variance_groups"] == r["groups"] for r in records)


def test_an_alias_runs_as_its_objective(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # The documented alias used to pass validation, start no teacher and crash at step 1.
    config = _config(
        "opd",
        tmp_path / "alias",
        loop_data,
        tiny_models_dir,
        steps=1,
        **{"trainer.objective": "opd_exact_rkl"},
    )
    assert config.trainer.objective == "opd_full_rkl"
    records = _run(config)
    assert records[0]["objective"] == "opd_full_rkl" and not records[0]["skipped_update"]
    assert records[0]["tokens_teacher_scored"] == records[0]["tokens_generated"]


def test_ppo_epochs_reuse_the_batch_so_the_clip_acts(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # TempSamp-R1: the ground-truth row sets each group apart even when the untrained student's
    # samples all fail alike, so the sampled rows get negative advantages to clip.
    config = _config(
        "tempsamp",
        tmp_path / "ppo",
        loop_data,
        tiny_models_dir,
        steps=2,
        **{
            "trainer.ppo_epochs": "3",
            "trainer.ppo_mini_batches": "2",
            "learner.lr": "3e-2",
            "trainer.objective_kwargs": "{eps_low: 0.05, eps_high: 0.05, kl_coef: 0.1}",
        },
    )
    records = _run(config)
    assert all(r["updates"] == 6 for r in records)
    # Later passes see a policy that moved since sampling: the ratio leaves [0.95, 1.05].
    assert max(r["learner"]["clip_frac"] for r in records) > 0
    assert max(r["learner"]["ratio_max"] for r in records) != 1.0
    assert all(np.isfinite(r["learner"]["kl"]) for r in records)


def test_startup_checks_refuse_a_mismatched_teacher_before_any_learner(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session, monkeypatch
) -> None:
    from launch.driver import Driver
    from rollout.group import RolloutGroup
    from teacher_server.checks import TeacherMismatchError
    from teacher_server.pool import TeacherPool

    config = _config(
        "opd",
        tmp_path / "mismatch",
        loop_data,
        tiny_models_dir,
        steps=1,
        **{"model.teacher": str(tiny_models_dir / "qwen2_5_vl-teacher")},
    )
    stopped: list[str] = []

    def spy(cls, name):
        original = cls.shutdown

        def shutdown(self):
            stopped.append(name)
            return original(self)

        monkeypatch.setattr(cls, "shutdown", shutdown)

    spy(RolloutGroup, "rollout")
    spy(TeacherPool, "teacher")

    def no_learners(self):
        raise AssertionError("a learner started before the start-up checks")

    monkeypatch.setattr(Driver, "_start_learners", no_learners)
    with pytest.raises(TeacherMismatchError, match=r"vision|tokenizer"):
        Driver(config)
    assert not (tmp_path / "mismatch" / "metrics.jsonl").exists()
    assert sorted(stopped) == ["rollout", "teacher"]  # the actors it started are gone


def test_opd_trains_on_an_unlabelled_corpus(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # The teacher is OPD's signal: training records need a video and a query, not a span.
    records = json.loads((loop_data / "train.json").read_text())
    for record in records.values():
        record.pop("spans")
    unlabelled = tmp_path / "unlabelled_train.json"
    unlabelled.write_text(json.dumps(records))
    config = _config(
        "opd",
        tmp_path / "unlabelled",
        loop_data,
        tiny_models_dir,
        steps=1,
        **{"data.train": str(unlabelled)},
    )
    (record,) = _run(config)
    assert not record["skipped_update"] and record["tokens_teacher_scored"] > 0
    assert record["unlabelled_completions"] == record["completions"] == 6
    assert record["iou_mean"] is None  # no IoU without labels (NaN in the ledger)
    assert record["val"]["n"] == 4  # evaluation stays on the labelled split


def test_sequence_level_kd_trains_on_the_teachers_cached_answers(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    config = _config(
        "sft",
        tmp_path / "seqkd",
        loop_data,
        tiny_models_dir,
        steps=2,
        **{
            "trainer.objective": "seqkd",
            "trainer.objective_kwargs": "{teacher_samples: 2, teacher_temperature: 1.0}",
        },
    )
    records = _run(config)
    first, second = records
    # Step 1 asks the teacher engine for 2 answers to each of its 3 prompts; training rows are
    # those answers (the student samples nothing); the generation is charged to the step.
    assert first["teacher_generated_tokens"] > 0 and first["time"]["teacher"] > 0
    assert first["completions"] == 0 and not first["skipped_update"]
    assert first["tokens_trained"] > 0
    # 8 training prompts, 3 per step: step 2 revisits none of step 1's, so it generates too;
    # its checkpoint carries the cache.
    assert second["teacher_generated_tokens"] > 0
    state = json.loads((Path(second["checkpoint"]) / "state.json").read_text())
    assert len(state["teacher_answers"]) == 6
    assert all(len(texts) == 2 for _, texts in state["teacher_answers"].values())


def test_a_colocated_teacher_gives_the_same_step_as_the_teacher_pool(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # The exact reverse KL with the teacher's forward on the learner ranks (nothing per
    # position shipped) against the teacher pool shipping the whole distribution: the same
    # samples (same seed), the same loss and update up to the two engines' float differences.
    runs = {}
    for colocate in ("false", "true"):
        config = _config(
            "opd_full_rkl",
            tmp_path / f"colocate_{colocate}",
            loop_data,
            tiny_models_dir,
            steps=1,
            **{"teacher.colocate": colocate, "trainer.mismatch_every": "0"},
        )
        (runs[colocate],) = _run(config)
    pool, colocated = runs["false"], runs["true"]
    assert pool["tokens_generated"] == colocated["tokens_generated"]  # the same samples
    assert "tokens_teacher_scored" in pool and "tokens_teacher_scored" not in colocated
    assert colocated["time"].get("teacher", 0.0) == 0.0  # no teacher phase: it ran in the learner
    assert colocated["loss"] == pytest.approx(pool["loss"], rel=1e-3)
    assert colocated["learner"]["reverse_kl"] == pytest.approx(
        pool["learner"]["reverse_kl"], rel=1e-3
    )


@pytest.mark.timeout(900)  # two runs
def test_collective_weight_sync_bypasses_the_driver_and_syncs_the_same_weights(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session, monkeypatch
) -> None:
    from launch.driver import Driver
    from rollout.weight_sync import CollectiveTransport, ObjectStoreTransport
    from trainer.learner_group import LearnerGroup

    store = _run(_config("opd", tmp_path / "store", loop_data, tiny_models_dir, steps=1))

    def no_export(*args, **kwargs):
        raise AssertionError("rollout.weight_transport=collective exported weights to the driver")

    monkeypatch.setattr(LearnerGroup, "export_weights", no_export)
    config = _config(
        "opd",
        tmp_path / "collective",
        loop_data,
        tiny_models_dir,
        steps=1,
        **{"rollout.weight_transport": "collective"},
    )
    driver = Driver(config)
    try:
        driver.run()
        transport = driver.rollout.transport
        assert isinstance(transport, CollectiveTransport) and transport.backend == "gloo"
        assert transport.bytes_sent > 0 and transport.groups_opened == 1
        assert not isinstance(transport, ObjectStoreTransport)
    finally:
        driver.shutdown()
    collective = read_ledger(Path(config.out_dir) / "metrics.jsonl")
    assert [r["step"] for r in collective] == [1]
    assert collective[0]["sync_checksum"] == store[0]["sync_checksum"]  # the same weights
    assert collective[0]["loss"] == pytest.approx(store[0]["loss"], rel=1e-4, abs=1e-5)


def test_streamed_teacher_scoring_gives_the_same_step(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # teacher.stream: each of the 2 rollout workers' shards is scored as soon as it is sampled
    # (one teacher call per shard, over 2 teacher workers) instead of the whole batch after the
    # rollout: the same samples, the same teacher values, the same loss and the same weights.
    from safetensors.torch import load_file

    runs, weights = {}, {}
    for stream in ("false", "true"):
        config = _config(
            "opd",
            tmp_path / f"stream_{stream}",
            loop_data,
            tiny_models_dir,
            steps=1,
            **{
                "teacher.stream": stream,
                "rollout.num_workers": "2",
                "teacher.num_workers": "2",
                "trainer.mismatch_every": "0",
            },
        )
        (runs[stream],) = _run(config)
        model_dir = Path(runs[stream]["checkpoint"]) / "model"
        weights[stream] = {}
        for path in sorted(model_dir.glob("*.safetensors")):
            weights[stream].update(load_file(path))
    off, on = runs["false"], runs["true"]
    assert off["teacher_calls"] == 1 and on["teacher_calls"] == 2  # one call per shard
    assert off["teacher_overlap_s"] == 0.0 and off["teacher_busy_s"] > 0
    assert 0.0 <= on["teacher_overlap_s"] <= on["teacher_busy_s"]
    for key in ("sample_ids", "tokens_generated", "tokens_teacher_scored", "teacher_rkl_sampled"):
        assert on[key] == off[key], key
    assert on["loss"] == off["loss"] and on["grad_norm"] == off["grad_norm"]
    assert weights["true"].keys() == weights["false"].keys()
    for name, tensor in weights["false"].items():
        assert weights["true"][name].equal(tensor), name


def test_a_run_scoped_shared_frame_cache_is_filled_and_removed(
    tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    # data.frame_cache_dir under out_dir: the run's processes (rollout engine, transformers
    # teacher worker, learner ranks) share one directory of decoded frames, which holds one
    # complete entry per video decoded while the run lasts and is gone when it ends.
    from launch.driver import Driver

    config = _config(
        "opd_full_rkl",
        tmp_path / "run",
        loop_data,
        tiny_models_dir,
        steps=1,
        **{"teacher.backend": "hf", "data.frame_cache_dir": "frames"},
    )
    shared = tmp_path / "run" / "frames"
    driver = Driver(config)
    try:
        driver.run()
        entries = sorted(shared.glob("*.npz"))
        assert entries and not list(shared.glob("*.tmp"))
        videos = {Path(s.video).resolve() for s in driver.train_prompts + driver.val_prompts}
        assert len(entries) <= len(videos)
        for entry in entries:
            with np.load(entry, allow_pickle=False) as data:
                assert (
                    data["frames"].ndim == 4
                    and Path(json.loads(str(data["info"]))["video_path"]).resolve() in videos
                )
    finally:
        driver.shutdown()
    assert not shared.exists()
    assert (tmp_path / "run" / "metrics.jsonl").is_file()  # the run's outputs stay
