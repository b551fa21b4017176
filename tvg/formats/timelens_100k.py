"""TimeLens-100K training annotations, JSON lines:

    {"source": "...", "video_path": "...", "duration": 93.0,
     "events": [{"query": "...", "span": [[s, e]]}, ...]}

"span" may be one pair or a list of pairs. One `Sample` per event, id "<video_id>#<n>" (n counts
the video's events through the file); the record's "source" names the dataset unless the caller
sets one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from tvg.errors import DataError
from tvg.formats.base import LoadContext, Scope, iter_json_lines
from tvg.sample import Sample, video_id_from_path

NAME = "timelens_100k"


def load(ctx: LoadContext) -> Iterator[tuple[Scope, Sample]]:
    """Yield (scope, sample) for every valid event of a TimeLens-100K JSONL file."""
    per_video: Counter[str] = Counter()
    for lineno, record in iter_json_lines(ctx.path, ctx.text):
        ctx.report.records += 1
        if isinstance(record, DataError):
            ctx.skip(record)
            continue
        scope = ctx.scope(line=lineno)
        try:
            video_path = scope.get(record, "video_path")
            if not isinstance(video_path, str) or not video_path.strip():
                raise scope.child("video_path").error(
                    "bad_type", "video_path must be a non-empty string"
                )
            duration = scope.child("duration").duration(scope.get(record, "duration"))
            events = scope.get(record, "events")
            if not isinstance(events, list):
                raise scope.child("events").error("bad_type", "events must be a list")
            raw_source = record.get("source")
            source = ctx.options.source or (
                raw_source if isinstance(raw_source, str) and raw_source else ctx.default_source
            )
        except DataError as exc:
            ctx.skip(exc)
            continue
        video_id = video_id_from_path(video_path)
        video = ctx.video_from_path(video_path)
        for i, event in enumerate(events):
            event_scope = scope.child(f"events[{i}]")
            try:
                query = event_scope.child(".query").query(event_scope.get(event, "query"))
                pairs, clamped = event_scope.child(".span").spans(
                    event_scope.get(event, "span"), duration, ctx.options
                )
            except DataError as exc:
                ctx.skip(exc)
                continue
            ctx.report.clamped += clamped
            n = per_video[video_id]
            per_video[video_id] += 1
            yield (
                event_scope,
                Sample(
                    id=f"{video_id}#{n}",
                    video=video,
                    duration=duration,
                    query=query,
                    spans=tuple(pairs),
                    source=source,
                    video_id=video_id,
                ),
            )
