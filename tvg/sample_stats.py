"""Summary statistics of a list of samples (what `vopd data check` prints)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from tvg.sample import Sample


def describe_values(values: Sequence[float]) -> dict[str, float] | None:
    """Return min / mean / median / max of the values (None when there are none)."""
    if not values:
        return None
    return {
        "min": min(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def sample_stats(samples: Iterable[Sample]) -> dict[str, Any]:
    """Return counts and distributions of a sample list.

    Keys: samples, videos, sources (name -> count), unlabelled, without_duration,
    duration_s (per video), span_s (span lengths), span_fraction (span length / duration),
    spans_per_query_max.
    """
    samples = list(samples)
    durations: dict[str, float] = {}
    lengths: list[float] = []
    fractions: list[float] = []
    without_duration = 0
    for sample in samples:
        if sample.duration is None:
            without_duration += 1
        else:
            durations.setdefault(sample.video_id, sample.duration)
        for start, end in sample.spans:
            lengths.append(end - start)
            if sample.duration:
                fractions.append((end - start) / sample.duration)
    return {
        "samples": len(samples),
        "videos": len({s.video_id for s in samples}),
        "sources": dict(Counter(s.source for s in samples)),
        "unlabelled": sum(not s.spans for s in samples),
        "without_duration": without_duration,
        "duration_s": describe_values(list(durations.values())),
        "span_s": describe_values(lengths),
        "span_fraction": describe_values(fractions),
        "spans_per_query_max": max((len(s.spans) for s in samples), default=0),
    }
