"""Weight sync from the learner into rollout engines: buckets, checksums, transports.

After every learner step each rollout engine must hold exactly the learner's weights. Sending one
message per parameter is the most reported bottleneck of public trainers, so weights travel in
buckets of about `DEFAULT_BUCKET_BYTES` (configurable), one engine call per bucket:

    buckets = bucket_state_dict(state_dict, version=3, bucket_bytes=256 << 20,
                                skip_prefixes=("model.visual.",))   # frozen vision tower
    for bucket in buckets:
        engine.update_weights(bucket)        # the last bucket finishes the update: version 3

Bucket i of n carries (version, index, total). The engine opens an in-place update on bucket 0,
loads every bucket into its live weights, and on bucket n-1 finalises the update, resets its
prefix and encoder caches and stamps `version` on every later sample. Buckets may split anywhere
(even inside a fused layer): the engine defers each layer's processing until all its tensors
arrived. Frozen modules are skipped by name prefix (they keep the weights the engine was built
with, which must then be the learner's too).

Checksums (`runtime.checksums`): `state_checksum` is a sha256 over the sorted (name, per-tensor
digest) pairs of a state dict. An engine with `track_checksum` keeps the digest of every tensor
it was built with or was handed, so the learner's `state_checksum(state_dict)` equals the
engine's `checksum()` exactly when the engine received the same tensors. (It cannot re-read its
weights: vLLM's CPU backend repacks linear weights into kernel layouts; the greedy-equality tests
prove the load itself.)

Transports (`rollout.weight_transport`, chosen by `RolloutGroup.sync_from`):

- `ObjectStoreTransport` ("object_store", the default): the learner's weights are exported to the
  driver (`WeightSender.export_weights`), bucketed there, `ray.put` once per bucket and pulled by
  every worker (`RolloutWorker.update_weights`). The group keeps the references to replay the
  current version into a restarted worker.
- `CollectiveTransport` ("collective"): learner rank 0 streams the weights straight into the
  engines over a standalone process group (`runtime.collective`: rank 0 = the learner, ranks
  1..R = the rollout workers; its own TCPStore, never the default group). Per update the driver
  only starts both sides with the version: every worker's `receive_weights(version, address)`
  and every learner rank's `broadcast_weights` (all ranks take part in the ZeRO-3 gathers, rank
  0 sends). Rank 0 broadcasts the plan (names, dtypes, shapes per bucket) and then one flat
  buffer per bucket; each worker unpacks views into a `WeightBucket` and loads it through the
  same `update_weights` path, so the in-place load, the bucket protocol and the checksums are
  the object-store path's. Rank 0 returns the checksum of what it sent. The driver holds no
  tensor and the object store carries no weight. Backend: gloo when the rollout workers have no
  GPU (what the tests run), NCCL when they have (run on one GPU with the sender alone:
  `benchmarks/gpu_paths.py`; never between two GPUs).
  Faults: every wait has the update timeout; a restarted worker (a new actor) cannot join the
  old group: it gets the current version alone over a new two-member group with the same
  sender, and the next update opens a new group with every worker; a failed update restarts the
  workers that died or hung and repeats the broadcast over a new group.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from runtime.checksums import checksum_of_digests, safetensors_digests, tensor_digest

DEFAULT_BUCKET_BYTES = 256 * 1024 * 1024
# Margin for a collective receiver to report its own failure after its group timeout (a busy
# machine can delay the process that far).
REPORT_GRACE_S = 60.0


@dataclass
class WeightBucket:
    """One message of a weight sync: some named tensors, and where it sits in the update.

    version: the weights version the whole update installs.
    index / total: position of this bucket in the update (0-based) and the number of buckets.
    names / tensors: parallel lists (CPU tensors, contiguous); may be empty (a version bump only).
    """

    version: int
    index: int
    total: int
    names: list[str] = field(default_factory=list)
    tensors: list[torch.Tensor] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data in the bucket."""
        return sum(t.numel() * t.element_size() for t in self.tensors)

    @property
    def is_first(self) -> bool:
        """Whether this bucket opens its update."""
        return self.index == 0

    @property
    def is_last(self) -> bool:
        """Whether this bucket closes its update."""
        return self.index == self.total - 1

    def items(self) -> list[tuple[str, torch.Tensor]]:
        """The (name, tensor) pairs of the bucket."""
        return list(zip(self.names, self.tensors, strict=True))


@dataclass(frozen=True)
class WeightUpdateResult:
    """What an engine reports when an update is complete.

    version: the version now stamped on samples; checksum: `state_checksum` of the weights the
    engine holds ("" when not tracked); seconds: wall time from the first bucket to the last;
    num_tensors / num_bytes: what the update carried.
    """

    version: int
    checksum: str
    seconds: float
    num_tensors: int
    num_bytes: int


def is_skipped(name: str, skip_prefixes: Sequence[str]) -> bool:
    """Whether a parameter name belongs to a skipped (frozen) module."""
    return any(name.startswith(prefix) for prefix in skip_prefixes)


def bucket_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    version: int,
    bucket_bytes: int = DEFAULT_BUCKET_BYTES,
    skip_prefixes: Sequence[str] = (),
) -> list[WeightBucket]:
    """Split a state dict into ordered buckets of at most `bucket_bytes` each.

    Tensors keep the state dict's order (so a layer's tensors are usually adjacent); a tensor
    larger than `bucket_bytes` gets a bucket of its own. Names starting with one of
    `skip_prefixes` are left out. An update that carries nothing still yields one empty bucket
    (it bumps the version). Tensors are detached, moved to CPU and made contiguous.
    """
    if bucket_bytes < 1:
        raise ValueError(f"bucket_bytes must be positive, got {bucket_bytes}")
    groups: list[tuple[list[str], list[torch.Tensor]]] = []
    names: list[str] = []
    tensors: list[torch.Tensor] = []
    size = 0
    for name, tensor in state_dict.items():
        if is_skipped(name, skip_prefixes):
            continue
        tensor = tensor.detach().to("cpu").contiguous()
        nbytes = tensor.numel() * tensor.element_size()
        if tensors and size + nbytes > bucket_bytes:
            groups.append((names, tensors))
            names, tensors, size = [], [], 0
        names.append(name)
        tensors.append(tensor)
        size += nbytes
    if tensors or not groups:
        groups.append((names, tensors))
    return [
        WeightBucket(version=version, index=i, total=len(groups), names=n, tensors=t)
        for i, (n, t) in enumerate(groups)
    ]


class WeightTracker:
    """The engine-side record of an update in progress, the version and (optionally) digests.

    Enforces the bucket protocol: buckets of one update arrive in order 0..total-1 with one
    version; anything else raises a `RuntimeError` that says what arrived and what was expected.
    """

    def __init__(self, model_dir: str | Path, track_checksum: bool = True) -> None:
        """Start at version 0 with the weights of `model_dir`."""
        self.model_dir = Path(model_dir)
        self.track_checksum = track_checksum
        self.version = 0
        self._base: dict[str, str] | None = None
        self._loaded: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        self._expected_index = 0
        self._open_version: int | None = None
        self.update_tensors = 0
        self.update_bytes = 0

    @property
    def in_update(self) -> bool:
        """Whether an update has started and not finished."""
        return self._open_version is not None

    def accept(self, bucket: WeightBucket) -> None:
        """Check that `bucket` is the next one expected; record its digests."""
        if bucket.is_first:
            self._open_version = bucket.version
            self._expected_index = 0
            self._pending = {}
            self.update_tensors = 0
            self.update_bytes = 0
        if self._open_version is None or bucket.index != self._expected_index:
            raise RuntimeError(
                f"weight bucket {bucket.index}/{bucket.total} of version {bucket.version} arrived "
                f"out of order (expected bucket {self._expected_index} of an open update; "
                "an update starts with bucket 0)"
            )
        if bucket.version != self._open_version:
            raise RuntimeError(
                f"weight bucket {bucket.index} carries version {bucket.version} but the open "
                f"update installs version {self._open_version}"
            )
        if self.track_checksum:
            for name, tensor in bucket.items():
                self._pending[name] = tensor_digest(tensor)
        self.update_tensors += len(bucket.names)
        self.update_bytes += bucket.nbytes
        self._expected_index += 1

    def finish(self) -> None:
        """Close the open update: its digests become current and its version is stamped."""
        assert self._open_version is not None
        self._loaded.update(self._pending)
        self._pending = {}
        self.version = self._open_version
        self._open_version = None

    def abort(self) -> None:
        """Forget an update that cannot complete."""
        self._pending = {}
        self._open_version = None

    def checksum(self) -> str:
        """Checksum of the weights the engine holds ("" when not tracked)."""
        if not self.track_checksum:
            return ""
        if self._base is None:
            self._base = safetensors_digests(self.model_dir)
        return checksum_of_digests({**self._base, **self._loaded})


class WeightSender(Protocol):
    """The learner side of a weight sync (implemented by `trainer.learner_group.LearnerGroup`).

    `export_weights` hands the full weights to the caller (the object-store path);
    `open_weight_group` + `broadcast_weights` stream them to the engines without the caller
    ever holding them (the collective path, `runtime.collective`).
    """

    def export_weights(
        self, bucket_bytes: int, skip_prefixes: Sequence[str]
    ) -> list[list[tuple[str, torch.Tensor]]]:
        """The full weights as buckets of (name, tensor) pairs."""
        ...

    def open_weight_group(self, world_size: int, backend: str, timeout_s: float) -> dict[str, Any]:
        """Open a new broadcast group (sender = member 0); return its address."""
        ...

    def broadcast_weights(
        self, version: int, bucket_bytes: int, skip_prefixes: Sequence[str], checksum: bool
    ) -> dict[str, Any]:
        """Send the full weights as update `version` to the open group; report what was sent."""
        ...


class ObjectStoreTransport:
    """Push buckets through Ray's object store: each bucket is `ray.put` once and every worker
    gets the same reference (zero-copy reads on a node), one remote call per bucket per worker.

    Works on CPU and GPU clusters. `put(buckets)` returns the references so that a caller (the
    rollout group) can keep them and replay the current version into a restarted worker.
    `bytes_put` counts the tensor bytes stored so far.
    """

    name = "object_store"

    def __init__(self) -> None:
        """No bytes stored yet."""
        self.bytes_put = 0

    def put(self, buckets: Iterable[WeightBucket]) -> list[Any]:
        """Store the buckets in the object store; return their references in order."""
        import ray

        refs = []
        for bucket in buckets:
            refs.append(ray.put(bucket))
            self.bytes_put += bucket.nbytes
        return refs

    def push(self, actors: Sequence[Any], refs: Sequence[Any], timeout_s: float) -> list[Any]:
        """Send every bucket reference to every actor, in order.

        Returns, per actor, its `WeightUpdateResult` or the exception its calls raised (a dead
        actor, an engine error, or `GetTimeoutError` past the shared `timeout_s` deadline), so
        that the caller can restart exactly the actors that failed.
        """
        import ray

        deadline = time.monotonic() + timeout_s
        pending = [[actor.update_weights.remote(ref) for ref in refs] for actor in actors]
        results: list[Any] = []
        for calls in pending:
            try:
                out = ray.get(calls, timeout=max(0.1, deadline - time.monotonic()))
                results.append(out[-1])
            except Exception as exc:
                results.append(exc)
        return results


class CollectiveTransport:
    """Stream weights from learner rank 0 straight into the engines over a standalone process
    group (`runtime.collective.WeightGroup`: gloo on CPU, NCCL on CUDA); the caller only
    orchestrates and never holds a tensor, and nothing goes through the object store.

    Members: the sender (rank 0) and the given actors (ranks 1..R, in order). The group is
    opened on the first `sync` and kept while the members stay the same; any other member list
    (a restarted worker is a new actor: it cannot join the old group; a new sender, e.g. learners
    restarted after a failure) or a failed sync opens a new group with all the given members.
    `bytes_sent` counts the bytes broadcast so far, `groups_opened` the groups formed.
    """

    name = "collective"

    def __init__(self, backend: str = "gloo") -> None:
        """Use process-group backend `backend` ("gloo" or "nccl")."""
        if backend not in ("gloo", "nccl"):
            raise ValueError(f"unknown collective backend {backend!r}; choose 'gloo' or 'nccl'")
        self.backend = backend
        self.address: dict[str, Any] | None = None
        self.members: tuple[Any, ...] = ()
        self.sender: WeightSender | None = None
        self.groups_opened = 0
        self.bytes_sent = 0

    def sync(
        self,
        sender: WeightSender,
        actors: Sequence[Any],
        version: int,
        bucket_bytes: int,
        skip_prefixes: Sequence[str],
        checksum: bool,
        timeout_s: float,
    ) -> tuple[Any, list[Any]]:
        """One update: every actor's `receive_weights` and the sender's `broadcast_weights`,
        concurrently (every wait of the group is bounded by `timeout_s`, and the receivers get
        `timeout_s` + `REPORT_GRACE_S` to answer once the sender returned).

        Returns the sender's report (or the exception it raised) and, per actor, its
        `WeightUpdateResult` or the exception its call raised; after any failure the group is
        dropped (the next sync opens a new one).
        """
        import ray

        members = tuple(actor._actor_id for actor in actors)
        if self.address is None or members != self.members or sender is not self.sender:
            self.address = sender.open_weight_group(len(actors) + 1, self.backend, timeout_s)
            self.members, self.sender = members, sender
            self.groups_opened += 1
        refs = [
            actor.receive_weights.remote(version, {**self.address, "rank": rank})
            for rank, actor in enumerate(actors, start=1)
        ]
        sent: Any
        try:
            sent = sender.broadcast_weights(version, bucket_bytes, tuple(skip_prefixes), checksum)
            self.bytes_sent += int(sent.get("bytes", 0))
        except Exception as exc:
            sent = exc
        # Once the sender is done (or gave up), a live receiver finishes (or fails on its own
        # group timeout) within `timeout_s`; one that has not answered `REPORT_GRACE_S` later
        # is stuck.
        deadline = time.monotonic() + timeout_s + REPORT_GRACE_S
        results: list[Any] = []
        for ref in refs:
            try:
                results.append(ray.get(ref, timeout=max(0.1, deadline - time.monotonic())))
            except Exception as exc:
                results.append(exc)
        if isinstance(sent, Exception) or any(
            not isinstance(r, WeightUpdateResult) for r in results
        ):
            self.address = None
        return sent, results


def make_transport(name: str, backend: str = "gloo") -> ObjectStoreTransport | CollectiveTransport:
    """Build a weight transport by name: "object_store" or "collective" (over `backend`)."""
    if name == "object_store":
        return ObjectStoreTransport()
    if name == "collective":
        return CollectiveTransport(backend)
    raise ValueError(f"unknown weight transport {name!r}; choose 'object_store' or 'collective'")
