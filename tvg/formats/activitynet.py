"""ActivityNet Captions annotations: one JSON object mapping video ids to timestamped sentences.

    { "<video_id>": { "duration": 82.7, "timestamps": [[s, e], ...], "sentences": ["...", ...] } }

One `Sample` per sentence, id "<video_id>#<i>", video <video_root>/<video_id>.<ext>.
"""

from __future__ import annotations

from collections.abc import Iterator

from tvg.formats.base import LoadContext, Scope
from tvg.formats.timelens_bench import load_video_keyed
from tvg.sample import Sample

NAME = "activitynet"


def load(ctx: LoadContext) -> Iterator[tuple[Scope, Sample]]:
    """Yield (scope, sample) for every valid sentence of an ActivityNet Captions file."""
    yield from load_video_keyed(ctx, spans_field="timestamps", queries_field="sentences")
