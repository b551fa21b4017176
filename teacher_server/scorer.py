"""The scorer interface shared by the local backends (vLLM, transformers) and the remote client.

A scorer turns `ScoreItem`s into `TokenScores` and describes itself with `info()` (model, backend,
tokenizer hash, vision settings, temperature, top-k, context length) so that the pool and the HTTP
service can check teacher against student before the first step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from runtime.prompting import prompt_token_ids, vision_placeholder_ids
from teacher_server.checks import tokenizer_hash, vision_hash, vision_settings
from teacher_server.config import TeacherConfig
from teacher_server.items import ScoreItem, TeacherInputError, TokenScores
from tvg.frame_cache import FrameCache


class Scorer(Protocol):
    """What the pool, the worker and the HTTP service need from a teacher backend."""

    def score(self, items: Sequence[ScoreItem]) -> list[TokenScores]:
        """Per completion token: sampled-token log-prob and top-k, for every item, in order."""
        ...

    def info(self) -> dict[str, Any]:
        """Model, backend, tokenizer hash, vision settings and scoring settings."""
        ...


class LocalScorer:
    """Shared parts of the local backends: processor, prompt ids, checks, frame cache, info."""

    backend = "local"

    def __init__(self, config: TeacherConfig, frame_cache: FrameCache | None = None) -> None:
        """Load the teacher's processor and config (no weights)."""
        from transformers import AutoConfig, AutoProcessor

        self.config = config
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.tokenizer = self.processor.tokenizer
        self.model_config = AutoConfig.from_pretrained(config.model)
        self.banned_ids = vision_placeholder_ids(self.tokenizer)
        self.frame_cache = (
            frame_cache if frame_cache is not None else FrameCache(disk_dir=config.frame_cache_dir)
        )
        self._prompt_cache: dict[tuple[str, str], list[int]] = {}
        self.created = time.time()

    def prompt_ids(self, item: ScoreItem) -> list[int]:
        """The teacher's prompt ids for `item`, checked against the student's when given."""
        key = (item.prompt.query, item.prompt.prompt_style)
        ids = self._prompt_cache.get(key)
        if ids is None:
            ids = prompt_token_ids(self.tokenizer, *key)
            self._prompt_cache[key] = ids
        if item.prompt_ids is not None and not np.array_equal(item.prompt_ids, ids):
            student = item.prompt_ids.tolist()
            first = next(
                (i for i, (a, b) in enumerate(zip(ids, student, strict=False)) if a != b),
                min(len(ids), len(student)),
            )
            raise TeacherInputError(
                f"sample {item.prompt.sample_id!r}: the teacher tokenises the prompt differently "
                f"from the student ({len(ids)} vs {len(student)} ids, first difference at "
                f"position {first}); teacher and student must share one tokenizer and template"
            )
        return ids

    def check_lengths(self, item: ScoreItem, prompt_len: int) -> None:
        """Raise `TeacherInputError` when the item cannot fit the teacher's context."""
        total = max(prompt_len, item.num_prompt_tokens) + int(item.completion_ids.shape[0]) + 1
        if total > self.config.max_model_len:
            raise TeacherInputError(
                f"sample {item.prompt.sample_id!r}: prompt + completion = {total} tokens exceed "
                f"the teacher's context length {self.config.max_model_len}"
            )
        if item.completion_ids.size == 0:
            raise TeacherInputError(f"sample {item.prompt.sample_id!r}: empty completion")
        vocab = len(self.tokenizer)
        bad = [int(t) for t in item.completion_ids if t < 0 or t >= vocab]
        if bad:
            raise TeacherInputError(
                f"sample {item.prompt.sample_id!r}: completion ids {bad[:5]} outside the "
                f"vocabulary (size {vocab})"
            )
        banned = sorted(set(item.completion_ids.tolist()) & set(self.banned_ids))
        if banned:
            raise TeacherInputError(
                f"sample {item.prompt.sample_id!r}: completion holds vision placeholder ids "
                f"{banned}, which are never sampled"
            )

    def info(self) -> dict[str, Any]:
        """Model, backend, tokenizer hash, vision settings and scoring settings."""
        vision = vision_settings(self.processor, self.model_config)
        return {
            "backend": self.backend,
            "model": self.config.model,
            "tokenizer_hash": tokenizer_hash(self.tokenizer),
            "vocab_size": len(self.tokenizer),
            "vision_settings": vision,
            "vision_hash": vision_hash(vision),
            "temperature": self.config.temperature,
            "top_k": self.config.top_k,
            "max_model_len": self.config.max_model_len,
            "dtype": self.config.dtype,
            "banned_ids": list(self.banned_ids),
        }
