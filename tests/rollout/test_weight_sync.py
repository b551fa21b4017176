"""Weight buckets, checksums, the bucket protocol, transports, and the token-balanced split."""

from __future__ import annotations

import pytest
import torch

from rollout.batch import PromptSpec
from rollout.group import expected_tokens
from rollout.weight_sync import (
    WeightBucket,
    WeightTracker,
    bucket_state_dict,
    make_transport,
)
from runtime.checksums import state_checksum
from runtime.partition import balanced_split
from tvg.video import VideoSettings


def _state(n: int = 10, numel: int = 1000) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    state = {f"model.layers.{i}.w": torch.randn(numel, generator=gen) for i in range(n)}
    state["model.visual.blocks.0.w"] = torch.randn(numel, generator=gen)
    state["lm_head.weight"] = torch.randn(3 * numel, generator=gen)  # 12 kB: above the limit
    return state


def test_buckets_respect_the_size_limit_keep_order_and_skip_prefixes() -> None:
    state = _state()
    buckets = bucket_state_dict(
        state, version=7, bucket_bytes=10_000, skip_prefixes=("model.visual.",)
    )
    names = [n for b in buckets for n in b.names]
    assert names == [n for n in state if not n.startswith("model.visual.")]
    assert len(buckets) == 6  # 5 buckets of two 4 kB layers, then the 12 kB head alone
    for i, bucket in enumerate(buckets):
        assert (bucket.version, bucket.index, bucket.total) == (7, i, len(buckets))
        assert bucket.nbytes <= 10_000 or len(bucket.names) == 1
    assert buckets[-1].names == ["lm_head.weight"] and buckets[-1].is_last
    assert sum(b.nbytes for b in buckets) == sum(
        t.numel() * 4 for n, t in state.items() if not n.startswith("model.visual.")
    )


def test_default_bucket_holds_a_small_model_in_one_message() -> None:
    buckets = bucket_state_dict(_state(), version=1)
    assert len(buckets) == 1 and buckets[0].is_first and buckets[0].is_last


def test_everything_skipped_still_bumps_the_version() -> None:
    buckets = bucket_state_dict(_state(), version=3, skip_prefixes=("model.", "lm_head"))
    assert len(buckets) == 1 and buckets[0].names == [] and buckets[0].total == 1


def test_checksum_is_order_independent_and_sensitive_to_one_element() -> None:
    state = _state()
    reordered = dict(reversed(list(state.items())))
    assert state_checksum(state) == state_checksum(reordered)
    changed = {k: v.clone() for k, v in state.items()}
    changed["model.layers.3.w"][17] += 1e-6
    assert state_checksum(changed) != state_checksum(state)
    renamed = {("x." + k if k == "lm_head.weight" else k): v for k, v in state.items()}
    assert state_checksum(renamed) != state_checksum(state)
    as_bf16 = {k: v.to(torch.bfloat16) for k, v in state.items()}
    assert state_checksum(as_bf16) != state_checksum(state)


def test_tracker_enforces_bucket_order_and_version(tmp_path) -> None:
    from safetensors.torch import save_file

    state = _state()
    save_file(state, str(tmp_path / "model.safetensors"))
    tracker = WeightTracker(tmp_path)
    assert tracker.checksum() == state_checksum(state)
    buckets = bucket_state_dict({"model.layers.0.w": torch.zeros(1000)}, 1, bucket_bytes=100)
    with pytest.raises(RuntimeError, match="out of order"):
        tracker.accept(WeightBucket(version=1, index=1, total=2))
    tracker.accept(WeightBucket(version=1, index=0, total=2))
    with pytest.raises(RuntimeError, match="carries version 2"):
        tracker.accept(WeightBucket(version=2, index=1, total=2))
    tracker.accept(buckets[0])  # a new update restarts at bucket 0
    tracker.finish()
    assert tracker.version == 1
    assert tracker.checksum() == state_checksum({**state, "model.layers.0.w": torch.zeros(1000)})


def test_make_transport_builds_each_accepted_name_and_refuses_others() -> None:
    from rollout.weight_sync import CollectiveTransport, ObjectStoreTransport

    assert isinstance(make_transport("object_store"), ObjectStoreTransport)
    collective = make_transport("collective", "nccl")  # built anywhere; the group needs CUDA
    assert isinstance(collective, CollectiveTransport) and collective.backend == "nccl"
    assert make_transport("collective").backend == "gloo"
    with pytest.raises(ValueError, match="unknown weight transport 'nccl'"):
        make_transport("nccl")
    with pytest.raises(ValueError, match="unknown weight transport"):
        make_transport("carrier-pigeon")
    with pytest.raises(ValueError, match="unknown collective backend"):
        make_transport("collective", "mpi")


def test_balanced_split_covers_every_item_once_and_balances_tokens() -> None:
    costs = [100.0, 90, 80, 70, 60, 50, 40, 30, 20, 10, 5, 5]
    shards = balanced_split(costs, 3)
    flat = sorted(i for s in shards for i in s)
    assert flat == list(range(len(costs)))
    assert all(s == sorted(s) for s in shards)
    loads = [sum(costs[i] for i in s) for s in shards]
    assert max(loads) - min(loads) <= max(costs)
    assert max(loads) <= sum(costs) / 3 + 10  # near-perfect here
    assert balanced_split([1.0], 3) == [[0], [], []]


def test_expected_tokens_grow_with_video_length_and_samples() -> None:
    settings = VideoSettings(fps=1.0, max_frames=64, max_pixels=1024)
    short = PromptSpec("a", "a.mp4", "q", duration=8.0, video_settings=settings)
    long = PromptSpec("b", "b.mp4", "q", duration=32.0, video_settings=settings)
    assert expected_tokens(long, 1, 16) > expected_tokens(short, 1, 16)
    assert expected_tokens(short, 8, 16) - expected_tokens(short, 1, 16) == 7 * 16


def test_reload_noise_filter_drops_only_the_expected_warning_during_a_finalisation() -> None:
    import logging

    from rollout.engine_vllm import _RELOAD_FILTER, _RELOAD_LOGGERS, _install_reload_filter

    _install_reload_filter()
    _install_reload_filter()  # idempotent: one filter per logger
    log = logging.getLogger(_RELOAD_LOGGERS[0])
    assert log.filters.count(_RELOAD_FILTER) == 1

    def record(msg: str) -> logging.LogRecord:
        return log.makeRecord(log.name, logging.WARNING, __file__, 1, msg, ("Layer",), None)

    expected, other = record("%s: Failed to load weights"), record("%s: something else")
    assert log.filter(expected) and log.filter(other)  # outside a finalisation: kept
    _RELOAD_FILTER.active = True
    try:
        assert not log.filter(expected) and log.filter(other)
    finally:
        _RELOAD_FILTER.active = False
