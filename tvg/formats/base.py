"""Shared machinery of the annotation loaders: options, the load report, record validation.

Every loader walks its file record by record and validates each field through a `Scope`, which
knows the file and the record's line / key, so that every `DataError` names them. Strict loading
raises the first error; lenient loading skips the bad record (or the bad query of a record holding
several) and counts it by reason in the `LoadReport`.

Span tolerance: a span may stick out of [0, duration] by up to
``max(tolerance_s, tolerance_frac * duration)`` (defaults 0.5 s and 1 %) — annotation tools and
rounding produce such spans — and is then clamped into [0, duration]; further out it is an error
("span_out_of_range"). Without a known duration only the start is checked (>= -tolerance_s).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvg.errors import DataError, Location, json_failure
from tvg.sample import Sample, normalize_query

DEFAULT_VIDEO_EXTS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi")
DEFAULT_TOLERANCE_S = 0.5
DEFAULT_TOLERANCE_FRAC = 0.01
MAX_EXAMPLES_PER_REASON = 5

# Reason codes a load can report, with what each means.
REASONS: dict[str, str] = {
    "missing_field": "a required field is missing",
    "bad_type": "a field or record has the wrong type",
    "bad_time": "a time is not a finite number",
    "bad_duration": "the duration is not a finite number > 0",
    "empty_span": "a span has start >= end",
    "span_out_of_range": "a span lies outside [0, duration] beyond the tolerance",
    "empty_query": "the query is empty",
    "length_mismatch": "spans and queries differ in number",
    "duplicate_id": "an id appears more than once",
    "malformed_json": "a line or document is not valid JSON",
    "malformed_line": "a text line does not follow the format",
    "unparseable_answer": "the answer text holds no time pair",
    "unlabelled": "the query has no ground-truth span (allowed only on request)",
    "missing_video": "the video file does not exist",
    "unknown_format": "the file's format is not known",
    "unreadable": "the file cannot be read as UTF-8 text",
}


@dataclass(frozen=True)
class LoadOptions:
    """How to load an annotation file.

    Attributes:
        video_root: folder of the videos; relative video paths and bare ids resolve against it.
        video_exts: extensions tried, in order, for formats that only give a video id.
        check_videos: report records whose video file does not exist ("missing_video").
        strict: raise the first `DataError` (True) or skip bad records and count them (False).
        allow_unlabelled: accept queries without spans (QVHighlights test split).
        source: dataset name for the samples; default: the record's own, else the file's stem.
        tolerance_s, tolerance_frac: how far a span may leave [0, duration] and still be clamped.
        durations: video id -> duration, for formats that carry none (Charades-STA).
    """

    video_root: Path | None = None
    video_exts: tuple[str, ...] = DEFAULT_VIDEO_EXTS
    check_videos: bool = False
    strict: bool = True
    allow_unlabelled: bool = False
    source: str | None = None
    tolerance_s: float = DEFAULT_TOLERANCE_S
    tolerance_frac: float = DEFAULT_TOLERANCE_FRAC
    durations: Mapping[str, float] | None = None


@dataclass
class LoadReport:
    """What a load produced: the samples, the record count and the skipped records by reason."""

    path: str
    format: str
    samples: list[Sample] = field(default_factory=list)
    records: int = 0
    clamped: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Total number of skipped records / queries."""
        return sum(self.skipped.values())

    @property
    def clean(self) -> bool:
        """True when nothing was skipped."""
        return self.n_skipped == 0

    def add_skip(self, error: DataError) -> None:
        """Count a skipped record under its reason and keep a few examples (file:line: text)."""
        self.skipped[error.reason] += 1
        examples = self.examples.setdefault(error.reason, [])
        if len(examples) < MAX_EXAMPLES_PER_REASON:
            examples.append(str(error))

    def to_dict(self) -> dict[str, Any]:
        """Return the report (without the samples) as plain JSON-able data."""
        return {
            "path": self.path,
            "format": self.format,
            "records": self.records,
            "samples": len(self.samples),
            "clamped_spans": self.clamped,
            "skipped": dict(sorted(self.skipped.items())),
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
        }


def line_of_key(text: str, key: str, occurrence: int = 1) -> int | None:
    """Return the 1-based line of the `occurrence`-th `"key":` in a JSON text, or None."""
    needle = json.dumps(key)
    start = 0
    for _ in range(occurrence):
        while True:
            pos = text.find(needle, start)
            if pos < 0:
                return None
            rest = text[pos + len(needle) :].lstrip()
            start = pos + len(needle)
            if rest.startswith(":"):
                break
    return text.count("\n", 0, pos) + 1


class Scope:
    """A record being validated: knows the file, the line and/or key, and builds errors for them."""

    def __init__(
        self,
        path: str,
        line: int | None = None,
        key: str | None = None,
        text: str | None = None,
        top_key: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        self._text = text
        self._top_key = top_key

    def child(self, suffix: str) -> Scope:
        """Return a scope for a part of this record, e.g. `.spans[2]`."""
        key = f"{self.key}{suffix}" if self.key is not None else suffix.lstrip(".")
        return Scope(self.path, self.line, key, self._text, self._top_key)

    def location(self) -> Location:
        """Return the record's location, finding the line of a top-level JSON key lazily."""
        line = self.line
        if line is None and self._text is not None and self._top_key is not None:
            line = line_of_key(self._text, self._top_key)
        return Location(line=line, key=self.key)

    def error(self, reason: str, detail: str) -> DataError:
        """Return a `DataError` for this record."""
        return DataError(self.path, self.location(), reason, detail)

    def get(self, record: Any, name: str) -> Any:
        """Return record[name]; a non-object record or a missing / null field is an error."""
        if not isinstance(record, Mapping):
            raise self.error("bad_type", f"expected a JSON object, got {type(record).__name__}")
        if name not in record or record[name] is None:
            raise self.error("missing_field", f"missing field {name!r}")
        return record[name]

    def time(self, value: Any, what: str) -> float:
        """Return value as a finite float (numbers or numeric strings); else a "bad_time" error."""
        number = _to_float(value)
        if number is None:
            raise self.error("bad_time", f"{what} is not a finite number: {value!r}")
        return number

    def duration(self, value: Any) -> float:
        """Return value as a duration > 0; else a "bad_duration" error."""
        number = _to_float(value)
        if number is None or number <= 0:
            raise self.error("bad_duration", f"duration must be a finite number > 0, got {value!r}")
        return number

    def query(self, value: Any) -> str:
        """Return the normalised query; a non-string or empty query is an error."""
        if not isinstance(value, str):
            raise self.error("bad_type", f"query must be a string, got {type(value).__name__}")
        query = normalize_query(value)
        if not query:
            raise self.error("empty_query", "query is empty")
        return query

    def span_pairs(self, value: Any, allow_single: bool = True) -> list[Any]:
        """Return a list of raw pairs from [[s, e], ...] or (when allowed) a single [s, e]."""
        if not isinstance(value, list | tuple):
            raise self.error("bad_type", f"spans must be a list of [start, end], got {value!r}")
        if allow_single and len(value) == 2 and not any(isinstance(v, list | tuple) for v in value):
            return [value]
        return list(value)

    def span(
        self, pair: Any, duration: float | None, options: LoadOptions
    ) -> tuple[float, float, bool]:
        """Validate one [start, end] pair; return (start, end, clamped).

        Errors: not a pair ("bad_type"), non-finite times ("bad_time"), out of [0, duration]
        beyond the tolerance ("span_out_of_range"), start >= end ("empty_span").
        """
        if not isinstance(pair, list | tuple) or len(pair) < 2:
            raise self.error("bad_type", f"a span must be [start, end], got {pair!r}")
        start = self.time(pair[0], "span start")
        end = self.time(pair[1], "span end")
        tol = options.tolerance_s
        if duration is not None:
            tol = max(options.tolerance_s, options.tolerance_frac * duration)
        if start < -tol or (duration is not None and end > duration + tol):
            limit = f"[0, {duration:g}]" if duration is not None else "[0, inf)"
            raise self.error(
                "span_out_of_range",
                f"span [{start:g}, {end:g}] lies outside {limit} by more than {tol:g} s",
            )
        new_start = max(start, 0.0)
        new_end = min(end, duration) if duration is not None else end
        clamped = (new_start, new_end) != (start, end)
        if new_start >= new_end:
            raise self.error("empty_span", f"span start {start:g} >= end {end:g}")
        return new_start, new_end, clamped

    def spans(
        self, value: Any, duration: float | None, options: LoadOptions, allow_single: bool = True
    ) -> tuple[list[tuple[float, float]], int]:
        """Validate a non-empty list of spans; return the pairs and how many were clamped."""
        pairs = self.span_pairs(value, allow_single=allow_single)
        if not pairs:
            raise self.error("missing_field", "no [start, end] pair given")
        out: list[tuple[float, float]] = []
        clamped = 0
        for i, pair in enumerate(pairs):
            start, end, was_clamped = self.child(f"[{i}]").span(pair, duration, options)
            out.append((start, end))
            clamped += was_clamped
        return out, clamped


def _to_float(value: Any) -> float | None:
    """Return value as a finite float, or None (bools and non-numeric strings are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


class LoadContext:
    """State of one load: the options, the report being filled and how bad records are handled."""

    def __init__(self, path: Path, text: str, fmt: str, options: LoadOptions) -> None:
        self.path = path
        self.text = text
        self.options = options
        self.report = LoadReport(path=str(path), format=fmt)

    @property
    def default_source(self) -> str:
        """The dataset name for records that carry none: the option, else the file's stem."""
        return self.options.source or self.path.stem

    def skip(self, error: DataError) -> None:
        """Handle a bad record: re-raise it in strict mode, count it in lenient mode."""
        if self.options.strict:
            raise error
        self.report.add_skip(error)

    def scope(self, line: int | None = None, key: str | None = None) -> Scope:
        """Return a validation scope for the record at `line` or under top-level `key`."""
        top_key = None
        if key is not None:
            top_key = key
            key = json.dumps(key)
        return Scope(str(self.path), line=line, key=key, text=self.text, top_key=top_key)

    def video_from_id(self, video_id: str) -> str:
        """Return the video path for a bare id: <video_root>/<id><ext> for the first ext found.

        Without a video root the path is just "<id><first ext>"; when no candidate exists the first
        extension is used (and the missing-video check, if enabled, reports it).
        """
        names = [f"{video_id}{ext}" for ext in self.options.video_exts] or [video_id]
        root = self.options.video_root
        if root is None:
            return names[0]
        for name in names:
            candidate = root / name
            if candidate.exists():
                return str(candidate)
        return str(root / names[0])

    def video_from_path(self, video: str) -> str:
        """Return a record's video path, resolved against the video root when it is relative."""
        root = self.options.video_root
        if root is None or Path(video).is_absolute():
            return video
        return str(root / video)


class _KeyedDict(dict):  # type: ignore[type-arg]
    """A dict built from JSON that remembers the keys it saw more than once."""

    duplicates: list[str]


def _keep_first(pairs: list[tuple[str, Any]]) -> _KeyedDict:
    """object_pairs_hook: keep the first value of a repeated key and record the repetition."""
    out = _KeyedDict()
    out.duplicates = []
    for key, value in pairs:
        if key in out:
            out.duplicates.append(key)
        else:
            out[key] = value
    return out


def parse_json_document(path: Path, text: str) -> Any:
    """Parse a whole-file JSON document; a syntax error is a "malformed_json" DataError.

    Objects keep the first value of a repeated key; the repeated keys are listed in the object's
    `duplicates` attribute (see `duplicate_keys`).
    """
    try:
        return json.loads(text, object_pairs_hook=_keep_first)
    except json.JSONDecodeError as exc:
        raise DataError(
            str(path), Location(line=exc.lineno), "malformed_json", f"invalid JSON: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:  # over-long integer literal, absurd nesting
        raise DataError(
            str(path), Location(), "malformed_json", f"invalid JSON: {json_failure(exc)}"
        ) from None


def duplicate_keys(obj: Any) -> list[str]:
    """Return the keys that appeared more than once in a JSON object parsed by this module."""
    return list(getattr(obj, "duplicates", []))


def iter_json_lines(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object or DataError) for each non-blank line of a JSONL text."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line, object_pairs_hook=_keep_first)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            yield (
                lineno,
                DataError(
                    str(path),
                    Location(line=lineno),
                    "malformed_json",
                    f"invalid JSON line: {json_failure(exc)}",
                ),
            )
