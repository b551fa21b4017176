"""`TeacherConfig`: how a scoring pool is run (backend, model, scoring settings, resources), and
`TeacherSettings`: the run configuration's `teacher:` section that the run's pools are made from."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

BACKENDS: tuple[str, ...] = ("vllm", "hf", "remote")
DEFAULT_TOKEN_ENV = "VOPD_TEACHER_TOKEN"


@dataclass(frozen=True)
class TeacherConfig:
    """Settings of the teacher scorers and of the pool that runs them.

    backend: "vllm" (prompt-logprob requests), "hf" (transformers forward) or "remote" (HTTP).
    model: teacher model directory (local backends).
    top_k: teacher top-k returned per completion token (0 = sampled token only).
    temperature: logits are divided by it before the log_softmax, as for the student.
    dtype: "float32" or "bfloat16" (local backends).
    max_model_len: the teacher's context length (vLLM engine size; checked for every item).
    batch_size: sequences per engine call (the vLLM backend batches them in one `generate`).
    url / token_env: the remote server and the environment variable holding its bearer token.
    request_timeout_s: per-HTTP-request timeout (remote backend).
    num_workers: T, teacher actors in the pool.
    num_cpus / num_gpus: CPUs and GPUs each actor reserves; resources: extra custom Ray
        resources each actor reserves (e.g. {"teacher": 1} to keep teachers on their own nodes).
    timeout_s: pool-level limit for one `score` call and for start-up / status calls (None = no
        limit: a stuck worker then blocks the caller; not recommended).
    max_restarts: how many times a dead worker is restarted within one call before failing.
    torch_threads: torch intra-op threads inside each actor.
    seed: engine seed.
    frame_cache_dir: the directory of decoded frames that the run's processes share (the frame
        cache's disk tier, `data.frame_cache_dir`); None: each scorer's memory cache only.
    """

    backend: str = "vllm"
    model: str = ""
    top_k: int = 0
    temperature: float = 1.0
    dtype: str = "float32"
    max_model_len: int = 4096
    batch_size: int = 64
    url: str = ""
    token_env: str = DEFAULT_TOKEN_ENV
    request_timeout_s: float = 600.0
    num_workers: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)
    timeout_s: float | None = 600.0
    max_restarts: int = 2
    torch_threads: int = 1
    seed: int = 0
    frame_cache_dir: str | None = None

    def __post_init__(self) -> None:
        """Reject settings that cannot work, with the field named."""
        if self.backend not in BACKENDS:
            raise ValueError(f"teacher.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend in ("vllm", "hf") and not self.model:
            raise ValueError(f"teacher.model is required for backend {self.backend!r}")
        if self.backend == "remote" and not self.url:
            raise ValueError("teacher.url is required for backend 'remote'")
        if self.top_k < 0:
            raise ValueError(f"teacher.top_k must be >= 0, got {self.top_k}")
        if not self.temperature > 0:
            raise ValueError(f"teacher.temperature must be > 0, got {self.temperature}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(
                f"teacher.dtype must be float32, bfloat16 or float16, got {self.dtype}"
            )
        if self.num_workers < 1:
            raise ValueError(f"teacher.num_workers must be >= 1, got {self.num_workers}")
        if self.batch_size < 1:
            raise ValueError(f"teacher.batch_size must be >= 1, got {self.batch_size}")
        if self.max_restarts < 0:
            raise ValueError(f"teacher.max_restarts must be >= 0, got {self.max_restarts}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"teacher.timeout_s must be > 0, got {self.timeout_s}")

    def token(self) -> str | None:
        """The bearer token for the remote backend, read from `token_env` (None when unset)."""
        value = os.environ.get(self.token_env, "")
        return value or None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings (for logs and /info)."""
        return asdict(self)


@dataclass
class TeacherSettings:
    """The run configuration's `teacher:` section: how the run's teacher scores student tokens
    (local workers or a remote service). A scoring pool's `TeacherConfig` is made from it by
    `pool_config`, with what the pool takes from the rest of the run."""

    backend: str = "vllm"
    num_workers: int = 1
    top_k: int = 0
    url: str | None = None
    token_env: str | None = None
    timeout_s: float = 300.0
    # Run the teacher's forward on every learner rank instead of in a teacher pool: nothing per
    # position is shipped (the exact reverse KL without V values per position on the wire), at
    # the cost of the teacher's weights and forward on each rank (TRL's GKD layout).
    colocate: bool = False
    # Streaming scoring: each rollout worker's shard goes to the teacher pool as soon as it is
    # sampled, so the teacher scores while the other shards still sample (same batch, same
    # values; needs rollout.num_workers >= 2 to overlap anything). The ledger's teacher_busy_s /
    # teacher_overlap_s say how much was hidden. Off by default: on a 2-core machine the teacher
    # and the rollout share the cores (BENCHMARKS.md, "Streaming teacher scoring").
    stream: bool = False

    def pool_config(
        self,
        model: str,
        top_k: int,
        temperature: float,
        max_model_len: int,
        dtype: str,
        seed: int,
        num_cpus: float,
        num_gpus: float,
        backend: str | None = None,
        frame_cache_dir: str | None = None,
    ) -> TeacherConfig:
        """A scoring pool of this section's size, timeout and service (url, token variable) on
        `model`, returning `top_k` (the objective's resolved top-k), with the run's sampling
        temperature, context length, dtype, seed and per-actor resources; `backend` overrides
        this section's (the KL reference never scores remotely)."""
        own = backend is None  # this section's teacher (its service), not the reference
        backend = self.backend if backend is None else backend
        return TeacherConfig(
            backend=backend,
            model="" if backend == "remote" else model,
            top_k=top_k,
            temperature=temperature,
            max_model_len=max_model_len,
            dtype=dtype,
            seed=seed,
            num_workers=self.num_workers,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            timeout_s=self.timeout_s,
            url=(self.url or "") if own else "",
            token_env=(self.token_env or DEFAULT_TOKEN_ENV) if own else DEFAULT_TOKEN_ENV,
            frame_cache_dir=frame_cache_dir,
        )
