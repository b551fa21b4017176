"""Charades-STA annotations, text lines: "<video_id> <start> <end>##<sentence>".

The format carries no durations: pass `durations` (video id -> seconds, e.g. from Charades' CSV
"length" column) to get them, else `Sample.duration` is None and spans are only checked to start
at or after 0. One `Sample` per line, id "<video_id>#<n>" (n counts the video's lines).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from tvg.errors import DataError
from tvg.formats.base import LoadContext, Scope
from tvg.sample import Sample

NAME = "charades_sta"


def load(ctx: LoadContext) -> Iterator[tuple[Scope, Sample]]:
    """Yield (scope, sample) for every valid line of a Charades-STA file."""
    per_video: Counter[str] = Counter()
    durations = ctx.options.durations or {}
    for lineno, line in enumerate(ctx.text.splitlines(), start=1):
        if not line.strip():
            continue
        ctx.report.records += 1
        scope = ctx.scope(line=lineno)
        try:
            head, sep, sentence = line.partition("##")
            fields = head.split()
            if not sep or len(fields) != 3:
                raise scope.error(
                    "malformed_line",
                    f"expected '<video_id> <start> <end>##<sentence>', got {line.strip()[:80]!r}",
                )
            video_id, raw_start, raw_end = fields
            query = scope.query(sentence)
            duration = None
            if video_id in durations:
                duration = scope.duration(durations[video_id])
            start, end, clamped = scope.span([raw_start, raw_end], duration, ctx.options)
        except DataError as exc:
            ctx.skip(exc)
            continue
        ctx.report.clamped += clamped
        n = per_video[video_id]
        per_video[video_id] += 1
        yield (
            scope,
            Sample(
                id=f"{video_id}#{n}",
                video=ctx.video_from_id(video_id),
                duration=duration,
                query=query,
                spans=((start, end),),
                source=ctx.default_source,
                video_id=video_id,
            ),
        )
