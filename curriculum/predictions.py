"""Offline span predictions of a model on the training prompts, batched, with a progress bar.

A predictor is anything with `sample(prompts, n, sampling) -> RolloutBatch` (a
`rollout.group.RolloutGroup` over vLLM workers, in practice). Each prompt gets k predictions:
greedy when k = 1, else k samples at the configured temperature from one seeded call per batch
(the engine draws the k samples one after another, so they differ). A prediction's IoU is
`tvg.rewards.max_iou` of its parsed span (0 when unparseable); a prompt the engine had to skip
(missing video, over-long prompt) scores 0 k times and is counted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from rollout.batch import PromptSpec, RolloutBatch
from rollout.engine_config import SamplingConfig
from tvg.parsing import parse_span
from tvg.rewards import max_iou


class Predictor(Protocol):
    """What offline predictions need from a rollout group."""

    def sample(
        self, prompts: Sequence[PromptSpec], n: int = 1, sampling: SamplingConfig | None = None
    ) -> RolloutBatch:
        """Sample n completions per prompt, in input order."""
        ...


@dataclass(frozen=True)
class PredictionSettings:
    """How offline predictions are drawn: k per prompt (k = 1: greedy; else sampled at
    `temperature`), the answer length cap, the seed and the prompts per engine call."""

    k: int = 1
    temperature: float = 1.0
    max_tokens: int = 32
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        """Reject settings that cannot give k distinct predictions."""
        if self.k < 1 or self.max_tokens < 1 or self.batch_size < 1:
            raise ValueError("k, max_tokens and batch_size must be >= 1")
        if self.k > 1 and self.temperature <= 0:
            raise ValueError(f"k = {self.k} predictions need temperature > 0")

    def sampling(self, batch_index: int) -> SamplingConfig:
        """The sampling settings of one batch (its own seed, so batches are reproducible)."""
        return SamplingConfig(
            temperature=0.0 if self.k == 1 else self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed * 100_003 + batch_index,
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (hashed into the cache key)."""
        out = asdict(self)
        if self.k == 1:
            out["temperature"] = 0.0  # greedy: the configured temperature is not used
        return out


def predict(
    predictor: Predictor,
    prompts: Sequence[PromptSpec],
    settings: PredictionSettings,
    desc: str = "predictions",
) -> list[dict[str, Any]]:
    """k predictions per prompt; one row per prompt: id, ious (k), spans (k), answers (k) and,
    for a prompt the engine skipped, the reason."""
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    skipped = 0
    bar = tqdm(total=len(prompts), desc=desc, unit="prompt", file=sys.stderr)
    for batch_index, start in enumerate(range(0, len(prompts), settings.batch_size)):
        chunk = list(prompts[start : start + settings.batch_size])
        batch = predictor.sample(chunk, n=settings.k, sampling=settings.sampling(batch_index))
        groups = batch.groups()
        reasons = {s.prompt_index: s.reason for s in batch.skipped}
        for i, spec in enumerate(chunk):
            texts = [t.text for t in groups.get(i, [])][: settings.k]
            spans = [parse_span(text) for text in texts]
            ious = [max_iou(span, spec.spans) for span in spans]
            row: dict[str, Any] = {
                "id": spec.sample_id,
                "ious": ious + [0.0] * (settings.k - len(ious)),
                "spans": [list(s) if s is not None else None for s in spans],
                "answers": texts,
            }
            if i in reasons or not texts:
                row["skipped"] = reasons.get(i, "no completion")
                skipped += 1
            rows.append(row)
        bar.update(len(chunk))
    bar.close()
    if skipped:
        print(f"[curriculum] {desc}: {skipped} prompts could not be run (IoU 0)", file=sys.stderr)
    return rows


def iou_matrix(rows: Sequence[dict[str, Any]], k: int) -> np.ndarray:
    """The (n, k) IoU array of prediction rows."""
    out = np.zeros((len(rows), k), dtype=np.float64)
    for i, row in enumerate(rows):
        values = list(row["ious"])[:k]
        out[i, : len(values)] = values
    return out


def cached_ious(
    cache: Any,
    role: str,
    weights: str,
    dataset: str,
    prompts: Sequence[PromptSpec],
    settings: PredictionSettings,
    make_predictor: Callable[[], Any],
) -> np.ndarray:
    """The (n, k) IoUs of `role`'s predictions: from the cache (a `PredictionCache`, or None for
    no caching) when an entry for (weights, dataset, settings) exists, else computed with the
    predictor that `make_predictor()` returns (called only on a miss) and stored."""
    from curriculum.cache import cache_key

    ids = [p.sample_id for p in prompts]
    key = cache_key(weights, dataset, settings.to_dict())
    if cache is not None and weights:
        rows = cache.load(role, key, ids)
        if rows is not None:
            print(f"[curriculum] {role} predictions: cache hit {cache.path(role, key)}")
            return iou_matrix(rows, settings.k)
    rows = predict(make_predictor(), prompts, settings, desc=f"{role} predictions")
    if cache is not None and weights:
        meta = {"weights": weights, "dataset": dataset, "settings": settings.to_dict()}
        path = cache.store(role, key, meta, rows)
        print(f"[curriculum] {role} predictions: cached in {path}")
    return iou_matrix(rows, settings.k)
