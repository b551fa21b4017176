"""Prediction files and their matching to annotated samples.

Accepted formats (detected from the content unless given):

- "timelens": TimeLens' result file, one JSON object
      {"<video>>>><query>>>><gt span>": {"timestamps": [[s, e]], "answers": "..."}, ...}
  Numeric "timestamps" are used as given (even reversed: they then score IoU 0); without them
  the span is parsed from "answers".
- "qvhighlights": QVHighlights submissions, JSON lines
      {"qid": 1, "query": "...", "vid": "...", "pred_relevant_windows": [[s, e, score], ...]}
  The first window is the top-1 prediction (as the official evaluation takes it).
- "jsonl": this project's own lines (or a JSON array of them): "id" (the sample id), or
  "video_id" / "vid" / "video" (a path) plus "query"; and one of "span": [s, e] (used as given),
  "windows": [[s, e, score], ...], or "answer": text (parsed with `tvg.parsing.parse_span`).

Matching: by sample id first, else by (video id, normalised query, compared case-insensitively);
when several samples share both (the same query asked twice of a video), TimeLens' GT-span part
of the key, then file order, decides. Predictions that match no sample are counted as unmatched;
a second prediction for an already matched sample is counted as a duplicate and ignored.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvg.errors import DataError, Location, json_failure
from tvg.parsing import parse_span
from tvg.sample import Sample, normalize_query, video_id_from_path

Span = tuple[float, float]
Window = tuple[float, float, float]

PREDICTION_FORMATS: tuple[str, ...] = ("timelens", "qvhighlights", "jsonl")
TIMELENS_KEY_SEPARATOR = ">>>"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Prediction:
    """One query's prediction: the top-1 span (None if unparseable) and any ranked windows."""

    span: Span | None
    windows: tuple[Window, ...] = ()
    answer: str | None = None

    @property
    def parsed(self) -> bool:
        """Whether a span was found."""
        return self.span is not None

    def ranked_windows(self) -> tuple[Window, ...]:
        """The windows for mAP: the given ranked windows, else the span with score 1."""
        if self.windows:
            return self.windows
        return ((self.span[0], self.span[1], 1.0),) if self.span is not None else ()


@dataclass(frozen=True)
class PredictionKey:
    """What a prediction says about the query it answers, and where it sits in its file."""

    location: str
    id: str | None = None
    video_id: str | None = None
    query: str | None = None
    gt_hint: Span | None = None


@dataclass
class MatchedPredictions:
    """Predictions matched to samples: sample id -> Prediction, plus what could not be matched."""

    format: str
    by_sample: dict[str, Prediction] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def _finite_pair(value: Any) -> Span | None:
    """Return [s, e] (or [[s, e], ...]: its first pair) as floats, or None when not numeric."""
    if isinstance(value, list | tuple) and value and isinstance(value[0], list | tuple):
        value = value[0]
    if not isinstance(value, list | tuple) or len(value) < 2:
        return None
    try:
        start, end = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    if isinstance(value[0], bool) or isinstance(value[1], bool):
        return None
    return (start, end) if math.isfinite(start) and math.isfinite(end) else None


def _windows(value: Any) -> tuple[Window, ...]:
    """Return [[s, e, score], ...] as float triples; a missing score keeps the list's order."""
    out: list[Window] = []
    if not isinstance(value, list | tuple):
        return ()
    for rank, item in enumerate(value):
        pair = _finite_pair(item)
        if pair is None:
            continue
        score = -float(rank)
        if isinstance(item, list | tuple) and len(item) >= 3:
            with contextlib.suppress(TypeError, ValueError):
                score = float(item[2])
        out.append((pair[0], pair[1], score))
    return tuple(out)


def _first_text(value: Any) -> str | None:
    """Return a string, or the first string of a list, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return next((v for v in value if isinstance(v, str)), None)
    return None


def _read_json_records(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    """Yield (location, record) from a JSON array or JSON lines; bad JSON is a DataError."""
    if text.lstrip().startswith("["):
        data = _parse_json(path, text)
        for i, record in enumerate(data):
            yield f"{path}: key [{i}]", record
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{lineno}", json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DataError(
                str(path),
                Location(line=lineno),
                "malformed_json",
                f"invalid JSON line: {json_failure(exc)}",
            ) from None


def detect_prediction_format(path: str | Path, text: str | None = None) -> str:
    """Return "timelens", "qvhighlights" or "jsonl" for a prediction file (by its content)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict) and any(TIMELENS_KEY_SEPARATOR in k for k in document):
            return "timelens"
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if '"pred_relevant_windows"' in first:
        return "qvhighlights"
    if stripped.startswith(("{", "[")):
        return "jsonl"
    raise DataError(
        str(path),
        Location(),
        "unknown_format",
        f"cannot tell the prediction format; pass one of {', '.join(PREDICTION_FORMATS)}",
    )


def _parse_json(path: Path, text: str) -> Any:
    """The JSON value of a predictions file; bad JSON is a DataError naming the file and line."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(
            str(path),
            Location(line=getattr(exc, "lineno", None)),
            "malformed_json",
            json_failure(exc),
        ) from None


def _timelens_entries(path: Path, text: str) -> Iterator[tuple[PredictionKey, Prediction]]:
    """Yield entries of a TimeLens result file."""
    data = _parse_json(path, text)
    if not isinstance(data, dict):
        raise DataError(str(path), Location(line=1), "bad_type", "expected a JSON object")
    for key, value in data.items():
        parts = key.split(TIMELENS_KEY_SEPARATOR)
        if len(parts) < 2:
            raise DataError(
                str(path),
                Location(key=json.dumps(key)),
                "bad_type",
                "a TimeLens key must be '<video>>>><query>>>><gt span>'",
            )
        hint_numbers = [float(x) for x in _NUMBER.findall(parts[2])] if len(parts) > 2 else []
        hint = (hint_numbers[0], hint_numbers[1]) if len(hint_numbers) >= 2 else None
        record = value if isinstance(value, dict) else {}
        answer = _first_text(record.get("answers", record.get("answer")))
        span = _finite_pair(record.get("timestamps"))
        if span is None and answer is not None:
            span = parse_span(answer)
        yield (
            PredictionKey(
                location=f"{path}: key {json.dumps(key)}",
                video_id=video_id_from_path(parts[0].strip()),
                query=normalize_query(parts[1]),
                gt_hint=hint,
            ),
            Prediction(span=span, answer=answer),
        )


def _record_entries(path: Path, text: str) -> Iterator[tuple[PredictionKey, Prediction]]:
    """Yield entries of QVHighlights submission lines or the project's own JSONL."""
    for location, record in _read_json_records(path, text):
        if not isinstance(record, dict):
            raise DataError(
                str(path), Location(), "bad_type", f"{location}: expected a JSON object"
            )
        raw_id = record.get("id", record.get("qid"))
        video = record.get("video_id", record.get("vid", record.get("video")))
        query = record.get("query")
        answer = _first_text(record.get("answer"))
        windows = _windows(record.get("pred_relevant_windows", record.get("windows")))
        span = _finite_pair(record.get("span"))
        if span is None and windows:
            span = (windows[0][0], windows[0][1])
        if span is None and answer is not None:
            span = parse_span(answer)
        yield (
            PredictionKey(
                location=location,
                id=str(raw_id) if raw_id is not None else None,
                video_id=video_id_from_path(video) if isinstance(video, str) else None,
                query=normalize_query(query) if isinstance(query, str) else None,
            ),
            Prediction(span=span, windows=windows, answer=answer),
        )


def read_predictions(
    path: str | Path, format: str | None = None
) -> tuple[str, list[tuple[PredictionKey, Prediction]]]:
    """Read a prediction file; return its format and its (key, prediction) entries in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            str(path), Location(), "unreadable", f"cannot read the file: {exc}"
        ) from None
    fmt = format.strip().lower() if format else detect_prediction_format(path, text)
    if fmt not in PREDICTION_FORMATS:
        raise DataError(
            str(path),
            Location(),
            "unknown_format",
            f"unknown prediction format {format!r}; known: {', '.join(PREDICTION_FORMATS)}",
        )
    reader = _timelens_entries if fmt == "timelens" else _record_entries
    return fmt, list(reader(path, text))


def _close(hint: Span, spans: Sequence[Span], tol: float = 0.051) -> bool:
    """Whether a GT-span hint matches one of a sample's spans up to rounding."""
    return any(abs(hint[0] - s) <= tol and abs(hint[1] - e) <= tol for s, e in spans)


def match_predictions(
    samples: Iterable[Sample], entries: Iterable[tuple[PredictionKey, Prediction]], format: str = ""
) -> MatchedPredictions:
    """Assign each prediction to its sample (see the module docstring for the rules)."""
    by_id: dict[str, Sample] = {}
    by_video_query: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        by_id[sample.id] = sample
        by_video_query.setdefault((sample.video_id, sample.query.casefold()), []).append(sample)
    result = MatchedPredictions(format=format)
    for key, prediction in entries:
        target: Sample | None = None
        if key.id is not None and key.id in by_id:
            target = by_id[key.id]
        elif key.video_id is not None and key.query is not None:
            candidates = by_video_query.get((key.video_id, key.query.casefold()), [])
            free = [s for s in candidates if s.id not in result.by_sample]
            if key.gt_hint is not None:
                hinted = [s for s in free if _close(key.gt_hint, s.spans)]
                free = hinted or free
            if free:
                target = free[0]
            elif candidates:
                target = candidates[0]
        if target is None:
            result.unmatched.append(key.location)
        elif target.id in result.by_sample:
            result.duplicates.append(key.location)
        else:
            result.by_sample[target.id] = prediction
    return result


def load_predictions(
    path: str | Path, samples: Iterable[Sample], format: str | None = None
) -> MatchedPredictions:
    """Read a prediction file and match its entries to `samples`."""
    fmt, entries = read_predictions(path, format)
    return match_predictions(samples, entries, fmt)
