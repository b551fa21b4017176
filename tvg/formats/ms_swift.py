"""ms-swift message records (the released Video-OPD training set), as a JSON array or JSON lines:

    {"videos": ["path/to/video.mp4"],
     "messages": [{"role": "system", "content": "..."},
                  {"role": "user",
                   "content": "<video>Please find the visual event ... '{query}' ..."},
                  {"role": "assistant", "content": "The event happens in 3.0 - 7.5 seconds."}],
     "duration": 30.0}                                      # optional; also optional "id", "query"

The span is parsed from the last assistant message with `tvg.parsing.parse_span`; the query is the
record's "query" field, else recovered from the user prompt with the registered prompt styles'
templates, else the user text without "<video>" / "<image>" placeholders. Message content may be a
string or a list of parts ({"type": "text", "text": ...}). One `Sample` per record, id = the
record's "id" or "<video_id>#<n>".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from tvg.errors import DataError
from tvg.formats.base import LoadContext, Scope, iter_json_lines, parse_json_document
from tvg.parsing import parse_span
from tvg.prompts import extract_query
from tvg.sample import Sample, video_id_from_path

NAME = "ms_swift"
_PLACEHOLDER = re.compile(r"<(?:video|image)>")


def load(ctx: LoadContext) -> Iterator[tuple[Scope, Sample]]:
    """Yield (scope, sample) for every valid record of an ms-swift JSON array or JSONL file."""
    per_video: Counter[str] = Counter()
    for scope, record in _records(ctx):
        ctx.report.records += 1
        if isinstance(record, DataError):
            ctx.skip(record)
            continue
        try:
            sample, clamped = _sample(ctx, scope, record, per_video)
        except DataError as exc:
            ctx.skip(exc)
            continue
        ctx.report.clamped += clamped
        yield scope, sample


def _records(ctx: LoadContext) -> Iterator[tuple[Scope, Any]]:
    """Yield (scope, record or DataError) from a JSON array (keys "[i]") or JSON lines (lines)."""
    if ctx.text.lstrip().startswith("["):
        data = parse_json_document(ctx.path, ctx.text)
        if not isinstance(data, list):
            raise ctx.scope(line=1).error("bad_type", "expected a JSON array of records")
        for i, record in enumerate(data):
            yield Scope(str(ctx.path), key=f"[{i}]"), record
        return
    for lineno, record in iter_json_lines(ctx.path, ctx.text):
        yield ctx.scope(line=lineno), record


def _text_of(content: Any) -> str:
    """Return the text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _sample(
    ctx: LoadContext, scope: Scope, record: Any, per_video: Counter[str]
) -> tuple[Sample, int]:
    """Build the sample of one record; raise DataError when the record is bad."""
    videos = scope.get(record, "videos")
    if isinstance(videos, str):
        videos = [videos]
    if not isinstance(videos, list) or not videos:
        raise scope.child(".videos").error("bad_type", "videos must be a non-empty list of paths")
    video_path = videos[0]
    if isinstance(video_path, dict):
        video_path = video_path.get("path") or video_path.get("video")
    if not isinstance(video_path, str) or not video_path.strip():
        raise scope.child(".videos[0]").error(
            "bad_type", "the video path must be a non-empty string"
        )
    messages = scope.get(record, "messages")
    if not isinstance(messages, list):
        raise scope.child(".messages").error("bad_type", "messages must be a list")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    assistants = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if not assistants:
        raise scope.child(".messages").error("missing_field", "no assistant message (the answer)")
    answer = _text_of(assistants[-1].get("content"))
    raw_query = record.get("query")
    if raw_query is None:
        if not users:
            raise scope.child(".messages").error("missing_field", "no user message (the query)")
        user_text = _text_of(users[-1].get("content"))
        raw_query = extract_query(user_text) or _PLACEHOLDER.sub(" ", user_text)
    query = scope.child(".query").query(raw_query)
    duration = None
    if record.get("duration") is not None:
        duration = scope.child(".duration").duration(record["duration"])
    pair = parse_span(answer)
    if pair is None:
        raise scope.child(".messages").error(
            "unparseable_answer", f"no time pair in the assistant answer {answer[:80]!r}"
        )
    start, end, clamped = scope.child(".answer").span(pair, duration, ctx.options)
    video_id = video_id_from_path(video_path)
    if record.get("id") is not None:
        sample_id = str(record["id"])
    else:
        sample_id = f"{video_id}#{per_video[video_id]}"
        per_video[video_id] += 1
    raw_source = record.get("source")
    source = ctx.options.source or (
        raw_source if isinstance(raw_source, str) and raw_source else ctx.default_source
    )
    sample = Sample(
        id=sample_id,
        video=ctx.video_from_path(video_path),
        duration=duration,
        query=query,
        spans=((start, end),),
        source=source,
        video_id=video_id,
        extra={"answer": answer},
    )
    return sample, int(clamped)
