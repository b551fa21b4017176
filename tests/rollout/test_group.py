"""RolloutGroup on real Ray actors with real vLLM engines: split, ordered gather, weight sync,
and a worker killed mid-batch that is restarted at the current weights version."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from rollout.engine_config import EngineConfig, SamplingConfig
from rollout.group import GroupConfig, RolloutError, RolloutGroup
from runtime.checksums import state_checksum

pytestmark = pytest.mark.e2e

STUDENT = "qwen3_vl-student"


def _kill_when_busy(group: RolloutGroup, worker: int, killed: list[int]) -> threading.Thread:
    """Kill `worker`'s actor as soon as it has a shard in flight."""
    import ray

    def run() -> None:
        deadline = time.monotonic() + 120
        while worker not in group.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        pid = group.worker_info[worker]["pid"]
        ray.kill(group.workers[worker], no_restart=True)
        killed.append(pid)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_group_samples_syncs_weights_and_survives_a_killed_worker(
    ray_session, tiny_models_dir: Path, synth_specs
) -> None:
    from safetensors.torch import load_file

    model_dir = tiny_models_dir / STUDENT
    group = RolloutGroup(
        EngineConfig(model=str(model_dir), threads=1),
        GroupConfig(num_workers=2, cpus_per_worker=0.5, bucket_bytes=200_000, max_restarts=1),
    )
    try:
        assert [info["threads"] for info in group.worker_info] == [1, 1]
        assert len({info["pid"] for info in group.worker_info}) == 2
        specs = synth_specs  # 6 videos of different lengths
        sampling = SamplingConfig(temperature=1.0, max_tokens=8, logprobs_topk=2)
        batch = group.sample(specs, n=2, sampling=sampling)
        assert [(t.prompt_index, t.sample_index) for t in batch.trajectories] == [
            (p, s) for p in range(len(specs)) for s in range(2)
        ]
        assert not batch.skipped
        assert set(group.last_timings) == {"worker0", "worker1"}  # both got a share
        assert sum(v["prompts"] for v in group.last_timings.values()) == len(specs)
        assert batch.timings["worker0_sample_s"] > 0 and batch.timings["worker1_sample_s"] > 0
        # which worker sampled each prompt (the learner keeps its rows on that worker's rank)
        assert sorted(batch.sampled_by) == list(range(len(specs)))
        for worker in (0, 1):
            prompts = [p for p, w in batch.sampled_by.items() if w == worker]
            assert len(prompts) == group.last_timings[f"worker{worker}"]["prompts"]
        assert {t.weights_version for t in batch.trajectories} == {0}

        original = load_file(str(model_dir / "model.safetensors"))
        gen = torch.Generator().manual_seed(2)
        perturbed = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in original.items()}
        results = group.update_weights(perturbed)
        assert [r.version for r in results] == [1, 1]
        assert {r.checksum for r in results} == {state_checksum(perturbed)}
        assert group.versions() == [1, 1]

        killed: list[int] = []
        thread = _kill_when_busy(group, 0, killed)
        long_sampling = SamplingConfig(temperature=1.0, max_tokens=48, ignore_eos=True)
        parts: list = []  # each shard handed over once, the resent one from its completed call
        batch = group.sample(specs, n=4, sampling=long_sampling, on_part=parts.append)
        thread.join(timeout=5)
        assert killed, "the worker was never seen busy"
        assert group.restarts == 1
        assert group.worker_info[0]["pid"] != killed[0]
        keys = [(t.prompt_index, t.sample_index) for t in batch.trajectories]
        assert keys == [(p, s) for p in range(len(specs)) for s in range(4)]  # nothing lost/dup
        assert len(parts) == 2
        handed = [(t.prompt_index, t.sample_index) for part in parts for t in part.trajectories]
        assert sorted(handed) == keys
        assert all(t.num_completion_tokens == 48 for t in batch.trajectories)
        # The restarted worker reloaded the current version (a fresh engine would stamp 0).
        assert {t.weights_version for t in batch.trajectories} == {1}
        assert group.checksums() == [state_checksum(perturbed)] * 2
    finally:
        group.shutdown()


def test_group_names_a_worker_that_cannot_start(ray_session, tmp_path: Path) -> None:
    engine = EngineConfig(model=str(tmp_path / "no_model_here"), threads=1)
    config = GroupConfig(num_workers=1, cpus_per_worker=0.5, start_timeout_s=120)
    with pytest.raises(RolloutError, match=r"rollout worker 0 did not start .*no_model_here"):
        RolloutGroup(engine, config)
    # Not waited for (the driver starts its other pools meanwhile): the error comes at the wait.
    group = RolloutGroup(engine, config, wait=False)
    try:
        assert len(group.workers) == 1 and group.worker_info == []
        with pytest.raises(RolloutError, match=r"rollout worker 0 did not start"):
            group.wait_ready()
    finally:
        group.shutdown()
