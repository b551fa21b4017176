"""Choose the teacher's scoring backend (kept apart from `teacher_server.scorer`, which the
backends import, so that no import runs in a circle)."""

from __future__ import annotations

from teacher_server.config import TeacherConfig
from teacher_server.scorer import Scorer
from tvg.frame_cache import FrameCache


def build_scorer(config: TeacherConfig, frame_cache: FrameCache | None = None) -> Scorer:
    """The scorer of `config.backend` (imports vLLM / transformers / HTTP only when needed)."""
    if config.backend == "vllm":
        from teacher_server.backend_vllm import VLLMScorer

        return VLLMScorer(config, frame_cache)
    if config.backend == "hf":
        from teacher_server.backend_hf import HFScorer

        return HFScorer(config, frame_cache)
    from teacher_server.client import RemoteScorer

    return RemoteScorer(config.url, token=config.token(), timeout_s=config.request_timeout_s)
