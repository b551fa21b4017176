"""A standalone broadcast group for weight sync: one sender (learner rank 0) and R receivers.

The group never touches torch.distributed's default group (the learner ranks already have
DeepSpeed's, the rollout workers must not get one): rank 0 serves a `TCPStore` on a free port
of its node and every member builds its own `ProcessGroupGloo` (CPU) or `ProcessGroupNCCL`
(CUDA) over that store. Same code for both backends; gloo runs in the tests, NCCL ran on one
GPU with one member (`benchmarks/gpu_paths.py`: NCCL refuses two ranks on one GPU).

One update on the wire (all broadcasts from rank 0):

    1. the plan's length (one int64), then the plan (a uint8 tensor of JSON: version and, per
       bucket, the (name, dtype, shape) of every tensor, in order);
    2. one flat uint8 buffer per bucket; tensor i of a bucket starts at an offset aligned to
       `ALIGN` bytes, so every receiver unpacks zero-copy views of the right dtype and shape.

An update that carries nothing is a plan with one empty bucket (it only bumps the version).
Every wait has a timeout (the store's and the process group's, and `Work.wait`), so a dead or
stuck peer is an error after `timeout_s`, never a hang.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from runtime.checksums import checksum_of_digests, tensor_digest

ALIGN = 64  # bytes; a multiple of every dtype's element size
BACKENDS = ("gloo", "nccl")


def default_backend(use_cuda: bool) -> str:
    """The process-group backend for the device: "nccl" with CUDA, "gloo" on CPU."""
    return "nccl" if use_cuda else "gloo"


def _dtype(name: str) -> torch.dtype:
    """The torch dtype called `name` ("float32", "bfloat16", ...)."""
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown tensor dtype {name!r} in a weight plan")
    return dtype


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype (torch's name without "torch.") and shape of one tensor of a bucket."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @classmethod
    def of(cls, name: str, tensor: torch.Tensor, shape: Sequence[int] | None = None) -> TensorSpec:
        """The spec of `tensor` (or of its full `shape`, e.g. a ZeRO-3 partitioned parameter)."""
        dims = tuple(int(d) for d in (tensor.shape if shape is None else shape))
        return cls(name, str(tensor.dtype).removeprefix("torch."), dims)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The spec's dtype as a torch dtype."""
        return _dtype(self.dtype)

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data."""
        return self.numel * torch.empty((), dtype=self.torch_dtype).element_size()


@dataclass(frozen=True)
class UpdatePlan:
    """What one update carries: its version and, per bucket, the specs of its tensors."""

    version: int
    buckets: tuple[tuple[TensorSpec, ...], ...]

    @classmethod
    def build(cls, version: int, buckets: Iterable[Iterable[TensorSpec]]) -> UpdatePlan:
        """A plan from bucket specs; no bucket at all becomes one empty bucket."""
        groups = tuple(tuple(b) for b in buckets)
        return cls(version, groups or ((),))

    @property
    def total(self) -> int:
        """Number of buckets (at least one)."""
        return len(self.buckets)

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data in the whole update."""
        return sum(s.nbytes for bucket in self.buckets for s in bucket)

    def to_bytes(self) -> bytes:
        """The plan as JSON bytes (what travels ahead of the buffers)."""
        rows = [[[s.name, s.dtype, list(s.shape)] for s in bucket] for bucket in self.buckets]
        return json.dumps({"version": self.version, "buckets": rows}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> UpdatePlan:
        """Parse `to_bytes` output."""
        raw = json.loads(data.decode())
        buckets = tuple(
            tuple(TensorSpec(str(n), str(d), tuple(int(x) for x in s)) for n, d, s in bucket)
            for bucket in raw["buckets"]
        )
        return cls(int(raw["version"]), buckets)


def bucket_layout(specs: Sequence[TensorSpec]) -> tuple[list[int], int]:
    """Byte offset of every tensor in a bucket's flat buffer, and the buffer's size."""
    offsets: list[int] = []
    size = 0
    for spec in specs:
        size = -(-size // ALIGN) * ALIGN
        offsets.append(size)
        size += spec.nbytes
    return offsets, size


def pack_bucket(
    specs: Sequence[TensorSpec], tensors: Sequence[torch.Tensor], device: str = "cpu"
) -> torch.Tensor:
    """One flat uint8 buffer (on `device`) holding the tensors' bytes at `bucket_layout` offsets.

    Each tensor must match its spec (dtype and shape); a mismatch is a ValueError naming it.
    """
    if len(specs) != len(tensors):
        raise ValueError(f"bucket has {len(tensors)} tensors for {len(specs)} specs")
    offsets, size = bucket_layout(specs)
    buffer = torch.zeros(size, dtype=torch.uint8, device=device)
    for spec, offset, tensor in zip(specs, offsets, tensors, strict=True):
        if tensor.dtype != spec.torch_dtype or tuple(tensor.shape) != spec.shape:
            raise ValueError(
                f"tensor {spec.name!r} is {tensor.dtype} {tuple(tensor.shape)} but the plan "
                f"says {spec.dtype} {spec.shape}"
            )
        raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
        buffer[offset : offset + spec.nbytes].copy_(raw)
    return buffer


def unpack_bucket(buffer: torch.Tensor, specs: Sequence[TensorSpec]) -> list[torch.Tensor]:
    """Views of `buffer` (from `pack_bucket`) with each spec's dtype and shape (no copy)."""
    offsets, size = bucket_layout(specs)
    if buffer.dtype != torch.uint8 or buffer.numel() != size:
        raise ValueError(
            f"bucket buffer is {buffer.dtype} x {buffer.numel()}, expected uint8 x {size}"
        )
    return [
        buffer[offset : offset + spec.nbytes].view(spec.torch_dtype).reshape(spec.shape)
        for spec, offset in zip(specs, offsets, strict=True)
    ]


def open_store(host: str, world_size: int, timeout_s: float) -> Any:
    """(rank 0) Serve a new TCPStore for a group of `world_size` on a free port of this node;
    its `.port` is the port the other members connect to."""
    return torch.distributed.TCPStore(
        host,
        0,
        world_size,
        is_master=True,
        timeout=timedelta(seconds=timeout_s),
        wait_for_workers=False,
    )


class WeightGroup:
    """One member of a standalone weight-broadcast group (rank 0 sends, ranks 1..R receive).

    Building it is a rendezvous: it returns once every member built its own (or raises after
    `timeout_s`). `name` labels the member in errors (e.g. "rollout worker 1").
    """

    def __init__(
        self,
        host: str,
        port: int,
        rank: int,
        world_size: int,
        backend: str,
        timeout_s: float,
        name: str = "",
        store: Any = None,
    ) -> None:
        """Join the group at host:port as `rank` (rank 0 passes the store it opened)."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown weight-group backend {backend!r}; choose gloo or nccl")
        if backend == "nccl" and not torch.cuda.is_available():
            raise RuntimeError(f"{name or 'weight group'}: backend nccl needs a CUDA device")
        self.host, self.port, self.rank, self.world_size = host, port, rank, world_size
        self.backend, self.timeout_s, self.name = backend, timeout_s, name or f"rank {rank}"
        self.device = "cuda" if backend == "nccl" else "cpu"
        timeout = timedelta(seconds=timeout_s)
        if store is None:
            store = torch.distributed.TCPStore(
                host, port, world_size, is_master=False, timeout=timeout
            )
        self.store = store
        dist = torch.distributed
        try:
            if backend == "gloo":
                self.pg = dist.ProcessGroupGloo(store, rank, world_size, timeout)
            else:
                options = dist.ProcessGroupNCCL.Options()
                options._timeout = timeout
                self.pg = dist.ProcessGroupNCCL(store, rank, world_size, options)
        except Exception as exc:
            raise RuntimeError(
                f"{self.name}: could not join the weight group at {host}:{port} "
                f"(rank {rank} of {world_size}, {backend}) within {timeout_s:.0f} s: {exc}"
            ) from exc

    def broadcast(self, tensor: torch.Tensor, what: str) -> None:
        """Broadcast `tensor` from rank 0 in place; a failure or the timeout names this member."""
        opts = torch.distributed.BroadcastOptions()
        opts.rootRank = 0
        opts.rootTensor = 0
        opts.timeout = timedelta(seconds=self.timeout_s)
        try:
            work = self.pg.broadcast([tensor], opts)
            if not work.wait(timedelta(seconds=self.timeout_s)):
                raise TimeoutError(f"no completion within {self.timeout_s:.0f} s")
        except Exception as exc:
            raise RuntimeError(
                f"{self.name}: weight broadcast of {what} failed (group {self.host}:{self.port}, "
                f"rank {self.rank} of {self.world_size}): {type(exc).__name__}: {exc}"
            ) from exc

    def send_update(
        self,
        plan: UpdatePlan,
        buckets: Iterable[Sequence[torch.Tensor]],
        checksum: bool = True,
    ) -> dict[str, Any]:
        """(rank 0) Broadcast the plan, then each bucket's tensors (in plan order).

        Returns {"checksum": `state_checksum` of what was sent ("" unless `checksum`),
        "bytes", "buckets", "seconds"}.
        """
        started = time.perf_counter()
        data = torch.frombuffer(bytearray(plan.to_bytes()), dtype=torch.uint8)
        self.broadcast(
            torch.tensor([data.numel()], dtype=torch.int64, device=self.device), "plan size"
        )
        self.broadcast(data.to(self.device), "plan")
        digests: dict[str, str] = {}
        sent = 0
        count = 0
        for index, (specs, tensors) in enumerate(zip(plan.buckets, buckets, strict=True)):
            buffer = pack_bucket(specs, tensors, self.device)
            self.broadcast(buffer, f"bucket {index}/{plan.total} of version {plan.version}")
            if checksum:
                for spec, tensor in zip(specs, tensors, strict=True):
                    digests[spec.name] = tensor_digest(tensor)
            sent += buffer.numel()
            count += 1
        if count != plan.total:
            raise RuntimeError(f"{self.name}: sent {count} buckets, the plan has {plan.total}")
        return {
            "checksum": checksum_of_digests(digests) if checksum else "",
            "bytes": sent,
            "buckets": count,
            "seconds": time.perf_counter() - started,
        }

    def receive_update(
        self, load: Callable[[UpdatePlan, int, list[str], list[torch.Tensor]], Any]
    ) -> tuple[UpdatePlan, Any]:
        """(ranks 1..R) Receive one update; call `load(plan, index, names, tensors)` per bucket
        (tensors are views of the received buffer); return the plan and the last call's result."""
        size = torch.zeros(1, dtype=torch.int64, device=self.device)
        self.broadcast(size, "plan size")
        data = torch.zeros(int(size.item()), dtype=torch.uint8, device=self.device)
        self.broadcast(data, "plan")
        plan = UpdatePlan.from_bytes(data.cpu().numpy().tobytes())
        result = None
        for index, specs in enumerate(plan.buckets):
            _, nbytes = bucket_layout(specs)
            buffer = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
            self.broadcast(buffer, f"bucket {index}/{plan.total} of version {plan.version}")
            result = load(plan, index, [s.name for s in specs], unpack_bucket(buffer, specs))
        return plan, result

    def close(self) -> None:
        """Leave the group (drop the process group and the store connection)."""
        self.pg = None
        self.store = None
