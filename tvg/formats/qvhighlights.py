"""QVHighlights annotations, JSON lines (one query per line, possibly several windows):

    {"qid": 1, "query": "...", "duration": 150, "vid": "<ytid>_<start>_<end>",
     "relevant_windows": [[s, e], ...], "relevant_clip_ids": [...],
     "saliency_scores": [[a, b, c], ...]}

id = str(qid); the video is <video_root>/<vid>.<ext>. The test split hides "relevant_windows":
such queries are accepted (with no spans) only when the caller allows unlabelled samples.
"relevant_clip_ids" and "saliency_scores" are kept in `Sample.extra`.
"""

from __future__ import annotations

from collections.abc import Iterator

from tvg.errors import DataError
from tvg.formats.base import LoadContext, Scope, iter_json_lines
from tvg.sample import Sample

NAME = "qvhighlights"
_EXTRA_FIELDS = ("relevant_clip_ids", "saliency_scores")


def load(ctx: LoadContext) -> Iterator[tuple[Scope, Sample]]:
    """Yield (scope, sample) for every valid query of a QVHighlights JSONL file."""
    for lineno, record in iter_json_lines(ctx.path, ctx.text):
        ctx.report.records += 1
        if isinstance(record, DataError):
            ctx.skip(record)
            continue
        scope = ctx.scope(line=lineno)
        try:
            qid = scope.get(record, "qid")
            if isinstance(qid, bool) or not isinstance(qid, int | str):
                raise scope.child("qid").error(
                    "bad_type", f"qid must be an int or string, got {qid!r}"
                )
            query = scope.child("query").query(scope.get(record, "query"))
            video_id = scope.get(record, "vid")
            if not isinstance(video_id, str) or not video_id:
                raise scope.child("vid").error("bad_type", "vid must be a non-empty string")
            duration = scope.child("duration").duration(scope.get(record, "duration"))
            windows = record.get("relevant_windows")
            if windows is None or windows == []:
                if not ctx.options.allow_unlabelled:
                    raise scope.error(
                        "unlabelled",
                        f"qid {qid!r} has no relevant_windows "
                        "(test split? allow unlabelled queries to load it)",
                    )
                pairs: list[tuple[float, float]] = []
                clamped = 0
            else:
                pairs, clamped = scope.child("relevant_windows").spans(
                    windows, duration, ctx.options, allow_single=False
                )
        except DataError as exc:
            ctx.skip(exc)
            continue
        ctx.report.clamped += clamped
        extra = {name: record[name] for name in _EXTRA_FIELDS if name in record}
        yield (
            scope,
            Sample(
                id=str(qid),
                video=ctx.video_from_id(video_id),
                duration=duration,
                query=query,
                spans=tuple(pairs),
                source=ctx.default_source,
                video_id=video_id,
                extra=extra,
            ),
        )
