"""`TeacherWorker`: one teacher scorer inside a Ray actor.

The pool creates it with `ray.remote(TeacherWorker).options(...)` on the teacher's own resources.
The actor allows 2 concurrent calls so that `status()` answers while a `score` call runs (the
scorer itself is guarded by a lock: one scoring call at a time).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from teacher_server.config import TeacherConfig
from teacher_server.items import ScoreItem, TokenScores


class TeacherWorker:
    """A Ray actor holding one scorer (vLLM, transformers or the remote client)."""

    def __init__(self, config: TeacherConfig, token: str | None = None) -> None:
        """Build the scorer of `config.backend` (token: the remote server's bearer token)."""
        import torch

        from runtime.vllm_env import apply_vllm_cpu_defaults

        torch.set_num_threads(max(1, config.torch_threads))
        if config.backend == "vllm":
            apply_vllm_cpu_defaults()
        if config.backend == "remote":
            from teacher_server.client import RemoteScorer
            from tvg.frame_cache import FrameCache

            self.scorer: Any = RemoteScorer(
                config.url,
                token=token,
                timeout_s=config.request_timeout_s,
                frame_cache=FrameCache(disk_dir=config.frame_cache_dir),
            )
        else:
            from teacher_server.backends import build_scorer

            self.scorer = build_scorer(config)
        self.config = config
        self._lock = threading.Lock()
        self._in_flight = 0
        self.calls = 0

    def score(self, items: Sequence[ScoreItem]) -> tuple[list[TokenScores], dict[str, float]]:
        """Score `items`; return the results and this call's stats (seconds, when it started and
        finished on this machine's clock, token counts)."""
        self._in_flight += 1
        try:
            with self._lock:
                started = time.time()
                start = time.perf_counter()
                results = self.scorer.score(items)
                seconds = time.perf_counter() - start
                finished = started + seconds
            self.calls += 1
        finally:
            self._in_flight -= 1
        stats = {
            "seconds": seconds,
            "started": started,
            "finished": finished,
            "sequences": float(len(items)),
            "completion_tokens": float(sum(int(i.completion_ids.shape[0]) for i in items)),
            "prompt_tokens": float(sum(int(r.num_prompt_tokens) for r in results)),
        }
        return results, stats

    def info(self) -> dict[str, Any]:
        """The scorer's model / tokenizer / settings description."""
        return self.scorer.info()

    def status(self) -> dict[str, Any]:
        """Process id, scoring calls in progress and completed (answers while scoring)."""
        return {"pid": os.getpid(), "in_flight": self._in_flight, "calls": self.calls}
