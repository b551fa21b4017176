"""The collective weight transport: plan packing and unpacking, a gloo group in one process,
and real Ray rollout workers (vLLM) receiving weights broadcast by a sender actor."""

from __future__ import annotations

import dataclasses
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from runtime.checksums import state_checksum
from runtime.collective import (
    ALIGN,
    TensorSpec,
    UpdatePlan,
    WeightGroup,
    bucket_layout,
    open_store,
    pack_bucket,
    unpack_bucket,
)

STUDENT = "qwen3_vl-student"


def _tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "a.bf16": torch.randn(3, 5, generator=gen).to(torch.bfloat16),  # 30 bytes: unaligned end
        "b.fp32": torch.randn(7, generator=gen),
        "c.scalar": torch.tensor(2.5),
        "d.int64": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "e.empty": torch.zeros(0, 4),
        "f.bf16": torch.randn(2, 2, 2, generator=gen).to(torch.bfloat16),
    }


def test_pack_and_unpack_keep_names_dtypes_shapes_and_bytes() -> None:
    state = _tensors()
    specs = [TensorSpec.of(name, t) for name, t in state.items()]
    offsets, size = bucket_layout(specs)
    assert all(o % ALIGN == 0 for o in offsets) and size == offsets[-1] + 16
    buffer = pack_bucket(specs, list(state.values()))
    assert buffer.dtype == torch.uint8 and buffer.numel() == size
    out = unpack_bucket(buffer, specs)
    for (name, tensor), got in zip(state.items(), out, strict=True):
        assert got.dtype == tensor.dtype and got.shape == tensor.shape, name
        assert torch.equal(got, tensor), name
    assert state_checksum(dict(zip(state, out, strict=True))) == state_checksum(state)
    # Views share the received buffer: nothing is copied on the receiving side.
    assert out[1].untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr()


def test_plan_round_trips_and_an_empty_update_has_one_empty_bucket() -> None:
    state = _tensors()
    specs = [TensorSpec.of(name, t) for name, t in state.items()]
    plan = UpdatePlan.build(4, [specs[:2], specs[2:]])
    back = UpdatePlan.from_bytes(plan.to_bytes())
    assert back == plan and back.total == 2
    assert back.nbytes == sum(t.numel() * t.element_size() for t in state.values())
    empty = UpdatePlan.build(9, [])
    assert empty.total == 1 and empty.buckets == ((),) and empty.nbytes == 0
    assert UpdatePlan.from_bytes(empty.to_bytes()) == empty
    assert pack_bucket([], []).numel() == 0 and unpack_bucket(pack_bucket([], []), []) == []


def test_pack_refuses_a_tensor_that_differs_from_its_spec() -> None:
    spec = TensorSpec("w", "bfloat16", (2, 2))
    with pytest.raises(ValueError, match=r"'w' is torch\.float32"):
        pack_bucket([spec], [torch.zeros(2, 2)])
    with pytest.raises(ValueError, match="unknown tensor dtype"):
        _ = TensorSpec("w", "float99", (1,)).torch_dtype


def _run_receivers(port: int, world: int, timeout_s: float, out: dict[int, Any]) -> list:
    def receive(rank: int) -> None:
        try:
            group = WeightGroup("127.0.0.1", port, rank, world, "gloo", timeout_s, f"recv {rank}")
            got: list[tuple[int, list[str], list[torch.Tensor]]] = []

            def load(plan: UpdatePlan, index: int, names: list[str], ts: list[torch.Tensor]):
                got.append((index, names, [t.clone() for t in ts]))
                return index

            plan, last = group.receive_update(load)
            out[rank] = (plan, last, got)
        except Exception as exc:  # reported to the test thread
            out[rank] = exc

    threads = [threading.Thread(target=receive, args=(r,), daemon=True) for r in range(1, world)]
    for thread in threads:
        thread.start()
    return threads


def test_a_gloo_group_broadcasts_an_update_to_every_receiver() -> None:
    state = _tensors()
    specs = [TensorSpec.of(name, t) for name, t in state.items()]
    plan = UpdatePlan.build(3, [specs[:3], specs[3:], []])  # an empty bucket in the middle too
    store = open_store("127.0.0.1", 3, 30)
    out: dict[int, Any] = {}
    threads = _run_receivers(store.port, 3, 30, out)
    sender = WeightGroup("127.0.0.1", store.port, 0, 3, "gloo", 30, "sender", store=store)
    values = list(state.values())
    report = sender.send_update(plan, [values[:3], values[3:], []])
    for thread in threads:
        thread.join(30)
    assert report["checksum"] == state_checksum(state) and report["buckets"] == 3
    for rank in (1, 2):
        got_plan, last, got = out[rank]
        assert got_plan == plan and last == 2
        assert [index for index, _, _ in got] == [0, 1, 2]
        received = {n: t for _, names, ts in got for n, t in zip(names, ts, strict=True)}
        assert state_checksum(received) == state_checksum(state)


def test_a_missing_sender_is_a_timeout_naming_the_member() -> None:
    store = open_store("127.0.0.1", 2, 2)
    with pytest.raises(RuntimeError, match=r"recv 1: could not join the weight group"):
        WeightGroup("127.0.0.1", store.port, 1, 2, "gloo", 2, "recv 1")


# ---------------------------------------------------------------------- real rollout workers
class _StateSender:
    """A Ray actor standing in for learner rank 0: it holds a state dict and sends it with the
    same code as `Learner.broadcast_weights` (runtime.collective)."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        self.state = state
        self.group: WeightGroup | None = None
        self.address: dict[str, Any] = {}
        self.store: Any = None

    def set_state(self, state: dict[str, torch.Tensor]) -> None:
        self.state = state

    def open_weight_group(self, world_size: int, backend: str, timeout_s: float) -> dict:
        self.group = None
        self.store = open_store("127.0.0.1", world_size, timeout_s)
        self.address = {
            "host": "127.0.0.1",
            "port": int(self.store.port),
            "world_size": world_size,
            "backend": backend,
            "timeout_s": timeout_s,
            "group_id": uuid.uuid4().hex,
        }
        return dict(self.address)

    def broadcast_weights(
        self, version: int, bucket_bytes: int, skip_prefixes: Sequence[str], checksum: bool
    ) -> dict[str, Any]:
        from rollout.weight_sync import bucket_state_dict

        buckets = bucket_state_dict(self.state, version, bucket_bytes, skip_prefixes)
        plan = UpdatePlan.build(
            version, [[TensorSpec.of(n, t) for n, t in b.items()] for b in buckets]
        )
        if self.group is None:
            a = self.address
            self.group = WeightGroup(
                a["host"], a["port"], 0, a["world_size"], a["backend"], a["timeout_s"],
                "test sender", store=self.store,
            )  # fmt: skip
        return self.group.send_update(plan, [b.tensors for b in buckets], checksum)


class _SenderHandle:
    """The driver-side `WeightSender` around a `_StateSender` actor (like LearnerGroup)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.exported = 0

    def export_weights(self, bucket_bytes: int, skip_prefixes: Sequence[str]) -> list:
        self.exported += 1
        raise AssertionError("the collective path must not export weights to the driver")

    def open_weight_group(self, world_size: int, backend: str, timeout_s: float) -> dict:
        import ray

        return ray.get(self.actor.open_weight_group.remote(world_size, backend, timeout_s))

    def broadcast_weights(self, version, bucket_bytes, skip_prefixes, checksum) -> dict:
        import ray

        ref = self.actor.broadcast_weights.remote(version, bucket_bytes, skip_prefixes, checksum)
        return ray.get(ref, timeout=120)


def _greedy(group, specs) -> list[list[int]]:
    from rollout.engine_config import SamplingConfig

    sampling = SamplingConfig(temperature=0.0, max_tokens=8)
    batch = group.sample(specs, n=1, sampling=sampling)
    assert not batch.skipped
    return [t.completion_ids.tolist() for t in batch.trajectories]


@pytest.mark.e2e
@pytest.mark.slow
def test_collective_sync_reaches_two_workers_like_the_object_store_and_survives_restarts(
    ray_session, tiny_models_dir: Path, synth_specs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from safetensors.torch import load_file

    from rollout.engine_config import EngineConfig
    from rollout.group import GroupConfig, RolloutGroup
    from rollout.weight_sync import ObjectStoreTransport, WeightBucket, bucket_state_dict

    specs = synth_specs[:2]
    model_dir = tiny_models_dir / STUDENT
    original = load_file(str(model_dir / "model.safetensors"))
    gen = torch.Generator().manual_seed(3)
    perturbed = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in original.items()}
    group = RolloutGroup(
        EngineConfig(model=str(model_dir), threads=1),
        GroupConfig(
            num_workers=2,
            cpus_per_worker=0.5,
            bucket_bytes=200_000,
            transport="collective",
            update_timeout_s=60,
        ),
    )
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship _StateSender
    actor = ray.remote(num_cpus=0)(_StateSender).remote(perturbed)
    sender = _SenderHandle(actor)
    puts: list[str] = []
    real_put = ray.put

    def counting_put(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, WeightBucket | torch.Tensor | dict | list):
            puts.append(type(value).__name__)
        return real_put(value, *args, **kwargs)

    try:
        assert group.transport.name == "collective" and group.transport.backend == "gloo"
        before = _greedy(group, specs)
        monkeypatch.setattr(ray, "put", counting_put)
        expected, results = group.sync_from(sender, checksum=True)
        monkeypatch.setattr(ray, "put", real_put)
        assert expected == state_checksum(perturbed)
        assert [r.version for r in results] == [1, 1]
        assert {r.checksum for r in results} == {expected}
        assert group.checksums() == [expected] * 2 and group.versions() == [1, 1]
        assert puts == [] and sender.exported == 0  # nothing went through this process
        assert group.transport.bytes_sent >= sum(t.numel() * 4 for t in perturbed.values())
        by_collective = _greedy(group, specs)
        assert by_collective != before

        # The same weights through the object store give the same greedy outputs.
        store = ObjectStoreTransport()
        for version, state in ((2, original), (3, perturbed)):
            refs = store.put(bucket_state_dict(state, version, 200_000))
            assert all(r.version == version for r in store.push(group.workers, refs, 120))
            assert _greedy(group, specs) == (before if state is original else by_collective)

        # Back to the sender's weights over the open group, then a killed worker: its
        # replacement cannot join that group and gets the current version over a new one.
        group.sync_from(sender, version=4)
        opened = group.transport.groups_opened
        ray.kill(group.workers[1], no_restart=True)
        group.restart_worker(1, "killed by the test")
        assert group.transport.groups_opened == opened + 1
        assert group.versions() == [4, 4] and group.checksums() == [expected] * 2
        ray.get(actor.set_state.remote(original))
        expected, results = group.sync_from(sender)  # a new group with both workers
        assert group.transport.groups_opened == opened + 2
        assert expected == state_checksum(original) and {r.version for r in results} == {5}
        assert group.checksums() == [expected] * 2 and _greedy(group, specs) == before

        # A worker that dies between updates fails the next one (over the open group the sender
        # loses its connection): it is restarted and the broadcast repeated over a new group.
        group.config = dataclasses.replace(group.config, update_timeout_s=8)
        ray.kill(group.workers[0], no_restart=True)
        ray.get(actor.set_state.remote(perturbed))
        restarts, opened = group.restarts, group.transport.groups_opened
        expected, results = group.sync_from(sender)
        assert group.restarts == restarts + 1 and group.transport.groups_opened == opened + 1
        assert expected == state_checksum(perturbed) and {r.version for r in results} == {6}
        assert group.checksums() == [expected] * 2 and group.versions() == [6, 6]
    finally:
        group.shutdown()
        ray.kill(actor, no_restart=True)
