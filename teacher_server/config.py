"""`TeacherConfig`: how the teacher is run (backend, model, scoring settings, pool resources)."""

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
