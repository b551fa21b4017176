"""Format auto-detection: the file's content decides, the extension only breaks ties.

Rules, on the first JSON document / line:
- a JSON object of video records with "queries" / "spans"          -> timelens_bench
- a JSON object of video records with "sentences" / "timestamps"   -> activitynet
- records (JSON lines, or a JSON array) with "messages"             -> ms_swift
- records with "events" / "video_path"                              -> timelens_100k
- records with "qid" / "relevant_windows"                           -> qvhighlights
- text lines "<video_id> <start> <end>##<sentence>"                 -> charades_sta
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tvg.errors import DataError, Location

_CHARADES_LINE = re.compile(r"^\S+\s+[-+\d.eE]+\s+[-+\d.eE]+\s*##")
_SNIFF_LINES = 20


def classify_record(record: Any) -> str | None:
    """Return the line-record format a JSON object belongs to, or None."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "ms_swift"
    if "events" in record or "video_path" in record:
        return "timelens_100k"
    if "qid" in record or "relevant_windows" in record:
        return "qvhighlights"
    return None


def classify_video_map(data: dict[str, Any]) -> str | None:
    """Return the video-keyed format of a JSON object {video_id: record}, or None."""
    for value in list(data.values())[:_SNIFF_LINES]:
        if isinstance(value, dict):
            if "queries" in value or "spans" in value:
                return "timelens_bench"
            if "sentences" in value or "timestamps" in value:
                return "activitynet"
    return None


def sniff_format(text: str) -> str | None:
    """Return the format that a file's text looks like, or None."""
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped[0] in "[{":
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # not JSON (or absurd JSON)
            document = None
        if isinstance(document, dict):
            return classify_record(document) or classify_video_map(document)
        if isinstance(document, list):
            return next((f for f in map(classify_record, document[:_SNIFF_LINES]) if f), None)
        for line in [ln for ln in text.splitlines() if ln.strip()][:_SNIFF_LINES]:
            try:
                found = classify_record(json.loads(line))
            except (ValueError, RecursionError):  # not JSON (or absurd JSON)
                continue
            if found:
                return found
        return None
    lines = [ln for ln in text.splitlines() if ln.strip()][:_SNIFF_LINES]
    if any(_CHARADES_LINE.match(ln) for ln in lines):
        return "charades_sta"
    return None


def detect_format(path: str | Path, text: str | None = None) -> str:
    """Return the annotation format of a file; raise DataError("unknown_format") if unclear."""
    path = Path(path)
    if text is None:
        text = path.read_text(encoding="utf-8")
    found = sniff_format(text)
    if found is None:
        from tvg.formats import FORMAT_NAMES

        raise DataError(
            str(path),
            Location(),
            "unknown_format",
            "cannot tell the annotation format from the content; pass format= one of "
            + ", ".join(FORMAT_NAMES),
        )
    return found
