"""TimeLens-Bench annotations: one JSON object mapping video ids to their queries.

    { "<video_id>": { "duration": 30.2, "spans": [[s, e], ...], "queries": ["...", ...] }, ... }

spans[i] belongs to queries[i] (a spans entry may also hold several pairs, [[s, e], ...]); the
video is <video_root>/<video_id>.<ext>. One `Sample` per query, id "<video_id>#<i>".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tvg.errors import DataError
from tvg.formats.base import LoadContext, Scope, duplicate_keys, line_of_key, parse_json_document
from tvg.sample import Sample

NAME = "timelens_bench"


def load(ctx: LoadContext) -> Iterator[tuple[Scope, Sample]]:
    """Yield (scope, sample) for every valid query of a TimeLens-Bench file."""
    yield from load_video_keyed(ctx, spans_field="spans", queries_field="queries")


def load_video_keyed(
    ctx: LoadContext, spans_field: str, queries_field: str
) -> Iterator[tuple[Scope, Sample]]:
    """Yield samples from a JSON object {video_id: {duration, <spans_field>, <queries_field>}}.

    Shared by TimeLens-Bench ("spans" / "queries") and ActivityNet Captions ("timestamps" /
    "sentences").
    """
    data = parse_json_document(ctx.path, ctx.text)
    if not isinstance(data, dict):
        raise ctx.scope(line=1).error(
            "bad_type",
            f"expected a JSON object mapping video ids to records, got {type(data).__name__}",
        )
    for video_id in duplicate_keys(data):
        ctx.report.records += 1
        scope = ctx.scope(line=line_of_key(ctx.text, video_id, occurrence=2), key=video_id)
        ctx.skip(scope.error("duplicate_id", f"video id {video_id!r} appears more than once"))
    for video_id, record in data.items():
        ctx.report.records += 1
        scope = ctx.scope(key=video_id)
        try:
            duration = scope.child(".duration").duration(scope.get(record, "duration"))
            queries = scope.get(record, queries_field)
            spans = _spans_or_unlabelled(ctx, scope, record, spans_field, queries)
            if not isinstance(spans, list):
                raise scope.child(f".{spans_field}").error(
                    "bad_type", f"{spans_field} must be a list"
                )
            if not isinstance(queries, list):
                raise scope.child(f".{queries_field}").error(
                    "bad_type", f"{queries_field} must be a list"
                )
            if len(spans) != len(queries):
                raise scope.error(
                    "length_mismatch",
                    f"{len(spans)} {spans_field} but {len(queries)} {queries_field}",
                )
        except DataError as exc:
            ctx.skip(exc)
            continue
        video = ctx.video_from_id(video_id)
        for i, (raw_query, raw_spans) in enumerate(zip(queries, spans, strict=True)):
            try:
                query = scope.child(f".{queries_field}[{i}]").query(raw_query)
                if raw_spans is None or raw_spans == []:
                    if not ctx.options.allow_unlabelled:
                        raise scope.child(f".{spans_field}[{i}]").error(
                            "unlabelled",
                            f"query {i} has no span (an unlabelled corpus is accepted only "
                            "where the objective needs no labels)",
                        )
                    pairs, clamped = [], 0
                else:
                    pairs, clamped = scope.child(f".{spans_field}[{i}]").spans(
                        raw_spans, duration, ctx.options
                    )
            except DataError as exc:
                ctx.skip(exc)
                continue
            ctx.report.clamped += clamped
            yield (
                scope.child(f"[{i}]"),
                Sample(
                    id=f"{video_id}#{i}",
                    video=video,
                    duration=duration,
                    query=query,
                    spans=tuple(pairs),
                    source=ctx.default_source,
                    video_id=video_id,
                ),
            )


def _spans_or_unlabelled(
    ctx: LoadContext, scope: Scope, record: Any, spans_field: str, queries: Any
) -> Any:
    """The record's spans list; a record with no spans field (or null) is an unlabelled record:
    one `None` per query when unlabelled samples are allowed, else a DataError."""
    if isinstance(record, dict) and record.get(spans_field) is None:
        if not ctx.options.allow_unlabelled:
            raise scope.error(
                "unlabelled",
                f"no {spans_field} (an unlabelled corpus is accepted only where the objective "
                "needs no labels)",
            )
        return [None] * (len(queries) if isinstance(queries, list) else 0)
    return scope.get(record, spans_field)
