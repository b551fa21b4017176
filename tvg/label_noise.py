"""Seeded label noise: corrupt a chosen share of the ground-truth spans of an annotation file.

For "SFT / GRPO on noisy labels" arms (0 / 25 / 50 % noise; docs/DATASETS.md §7 "Label noise").
`corrupt_samples` is the pure part (samples in, samples and a record of what changed out);
`corrupt_file` reads an annotation file with `tvg.formats`, writes the corrupted file in the same
format and a sidecar JSON (`sidecar_path`).

A *record* is one query, i.e. one `tvg.sample.Sample` as the loaders produce it. Of the N records,
exactly ``round(share * N)`` (rounded half up) are corrupted. The seed first fixes an order of all
records, and the first ``round(share * N)`` of that order are corrupted; each record then draws its
kind and its new span from its own generator, seeded by (seed, position in the file). So with one
seed the records corrupted at 25 % are among those corrupted at 50 %, and they are corrupted the
same way: noise levels are nested.

Kinds (each drawn uniformly from the allowed list; a query with several spans has each span
shifted / shrunk on its own, and is swapped as a whole):

- ``shift``: the span moves by a random offset of at least half its length and keeps its length;
  the new start is uniform over every start in [0, duration - length] at least half a length away
  from the old one. When no such start exists (the span covers more than about two thirds of the
  video), it moves by exactly half its length toward the side with more room and is clipped to
  [0, duration].
- ``shrink``: a random sub-span covering 10-50 % of the span (coverage uniform, position uniform).
- ``swap``: the spans of another query on the same video (uniform among those whose spans differ
  from this query's and fit in its duration) when the file has one; else one random span of
  similar length (0.75-1.25 x the first span's) whose IoU with every original span is < 0.3. When
  200 such draws fail (a span covering most of the video), the span goes into the largest part of
  the video that no original span covers, or, when there is none, is a span of 0.2 x the shortest
  original span (IoU <= 0.2).

New times are rounded to `decimals` (default 2) places when the rounded span still satisfies the
kind's definition (redrawn otherwise; after 50 failed draws the unrounded span is kept). Every
corrupted span satisfies 0 <= start < end <= duration, so the output passes `vopd data check`.

Formats written: timelens_bench (what `vopd synth` writes), activitynet, timelens_100k,
qvhighlights. charades_sta (no durations: a span cannot be kept inside its video) and ms_swift (the
span lives inside the assistant's answer text) are refused with a `LabelNoiseError`. The input is
loaded strictly: a bad record, including a query without a span (e.g. QVHighlights' test split),
is a `tvg.errors.DataError` naming the file and the record; nothing is skipped.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tvg.rewards import temporal_iou
from tvg.sample import Sample, Span

__all__ = [
    "KINDS",
    "WRITABLE_FORMATS",
    "Corruption",
    "LabelNoiseError",
    "NoiseResult",
    "check_share",
    "corrupt_file",
    "corrupt_samples",
    "n_corrupted",
    "parse_kinds",
    "sidecar_path",
]

KINDS: tuple[str, ...] = ("shift", "shrink", "swap")
WRITABLE_FORMATS: tuple[str, ...] = (
    "timelens_bench",
    "activitynet",
    "timelens_100k",
    "qvhighlights",
)
REFUSED_FORMATS: dict[str, str] = {
    "charades_sta": "it carries no video durations, so a corrupted span cannot be kept inside "
    "its video",
    "ms_swift": "its spans live inside the assistant's answer text",
}

SHIFT_MIN_FRACTION = 0.5  # a shift moves a span by at least this share of its length
SHRINK_COVERAGE = (0.1, 0.5)  # a shrunk span covers this share of the original
SWAP_MAX_IOU = 0.3  # a random swap span overlaps every original span by IoU < this
SWAP_LENGTH_RANGE = (0.75, 1.25)  # a random swap span's length relative to the original's
SWAP_TRIES = 200
ROUND_TRIES = 50
_EPS = 1e-9
# Distinct entropy words so that the selection and the per-record generators never coincide.
_SELECT_STREAM = 0x5E1EC7
_RECORD_STREAM = 0xC0221


class LabelNoiseError(ValueError):
    """A bad label-noise request: share, kinds, seed or an output format that cannot be written."""


@dataclass(frozen=True)
class Corruption:
    """What happened to one corrupted record.

    Attributes:
        index: the record's position in the file (0-based, in load order).
        id: the sample id (as `tvg.formats` loads it).
        video_id: the sample's video id.
        kind: "shift", "shrink" or "swap".
        original: the spans before (as loaded, i.e. clamped into the tolerance).
        corrupted: the spans written.
        iou: mean over the original spans of the best IoU with a corrupted span.
        swapped_with: for a swap that took another query's spans, that query's id; else None.
    """

    index: int
    id: str
    video_id: str
    kind: str
    original: tuple[Span, ...]
    corrupted: tuple[Span, ...]
    iou: float
    swapped_with: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-able data (the sidecar's per-record entry)."""
        return {
            "index": self.index,
            "id": self.id,
            "video_id": self.video_id,
            "kind": self.kind,
            "original": [list(s) for s in self.original],
            "corrupted": [list(s) for s in self.corrupted],
            "iou": round(self.iou, 6),
            "swapped_with": self.swapped_with,
        }


@dataclass
class NoiseResult:
    """The output of `corrupt_samples`: every sample (corrupted ones replaced) and the changes."""

    samples: list[Sample]
    corruptions: list[Corruption]
    share: float
    seed: int
    kinds: tuple[str, ...]
    decimals: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_records(self) -> int:
        """Number of records (queries) in the input."""
        return len(self.samples)

    @property
    def share_realised(self) -> float:
        """Corrupted records / records (0.0 for an empty input)."""
        return len(self.corruptions) / self.n_records if self.n_records else 0.0

    @property
    def mean_iou(self) -> float | None:
        """Mean IoU(original, corrupted) over the corrupted records; None when none was."""
        if not self.corruptions:
            return None
        return float(sum(c.iou for c in self.corruptions) / len(self.corruptions))

    def summary(self) -> dict[str, Any]:
        """Return the sidecar's content: settings, realised share, mean IoU and every change."""
        mean = self.mean_iou
        return {
            **self.extra,
            "seed": self.seed,
            "kinds": list(self.kinds),
            "share_requested": self.share,
            "decimals": self.decimals,
            "n_records": self.n_records,
            "n_corrupted": len(self.corruptions),
            "share_realised": self.share_realised,
            "mean_iou": None if mean is None else round(mean, 6),
            "by_kind": dict(sorted(Counter(c.kind for c in self.corruptions).items())),
            "records": [c.to_dict() for c in self.corruptions],
        }


def check_share(share: float) -> float:
    """Return share as a float in [0, 1]; raise LabelNoiseError otherwise (NaN included)."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise LabelNoiseError(f"share must be a number in [0, 1], got {share!r}") from None
    if not (0.0 <= value <= 1.0):  # also false for NaN
        raise LabelNoiseError(f"share must be in [0, 1], got {share!r}")
    return value


def _check_seed(seed: int) -> int:
    """Return seed as a non-negative int; raise LabelNoiseError otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise LabelNoiseError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def parse_kinds(kinds: str | Iterable[str] | None) -> tuple[str, ...]:
    """Return the allowed kinds from "shift,shrink" or a sequence (None: all of KINDS).

    Order and duplicates are normalised to KINDS' order; an unknown or empty list is an error.
    """
    if kinds is None:
        return KINDS
    items = kinds.split(",") if isinstance(kinds, str) else list(kinds)
    names = [str(k).strip().lower() for k in items if str(k).strip()]
    unknown = [k for k in names if k not in KINDS]
    if unknown:
        raise LabelNoiseError(
            f"unknown corruption kind(s) {', '.join(map(repr, unknown))}; "
            f"known kinds: {', '.join(KINDS)}"
        )
    if not names:
        raise LabelNoiseError(f"no corruption kind given; known kinds: {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in names)


def n_corrupted(share: float, n: int) -> int:
    """Return round(share * n), halves rounded up (0.25 x 10 -> 3), robust to float error."""
    return min(n, math.floor(check_share(share) * n + 0.5 + _EPS))


def sidecar_path(out_path: str | os.PathLike[str]) -> Path:
    """Return the sidecar of an output file: its name with the suffix replaced by ".noise.json".

    "train_noisy.json" -> "train_noisy.noise.json"; "x.jsonl" -> "x.noise.json";
    "x" -> "x.noise.json".
    """
    path = Path(out_path)
    return path.with_name(f"{path.stem if path.suffix else path.name}.noise.json")


# --- the kinds -----------------------------------------------------------------------------------


def _rounder(decimals: int | None) -> Callable[[float], float]:
    """Return a function rounding a time to `decimals` places (identity for None)."""
    if decimals is None:
        return float
    return lambda t: float(round(t, decimals))


def _draw(
    make: Callable[[], tuple[float, float]],
    ok: Callable[[float, float], bool],
    decimals: int | None,
    rng: np.random.Generator,
) -> tuple[float, float] | None:
    """Draw spans with `make` until a rounded one passes `ok`; after ROUND_TRIES, an unrounded one.

    Returns None when even the unrounded draws fail `ok` (the caller falls back).
    """
    rnd = _rounder(decimals)
    for _ in range(ROUND_TRIES if decimals is not None else 1):
        start, end = make()
        start, end = rnd(start), rnd(end)
        if ok(start, end):
            return start, end
    for _ in range(ROUND_TRIES):
        start, end = make()
        if ok(start, end):
            return float(start), float(end)
    return None


def _valid(start: float, end: float, duration: float) -> bool:
    """Whether 0 <= start < end <= duration."""
    return 0.0 <= start < end <= duration


def shift_span(
    span: Span, duration: float, rng: np.random.Generator, decimals: int | None = 2
) -> Span:
    """Move a span by at least half its length, keeping its length when the video allows it."""
    start, end = span
    length = end - start
    min_off = SHIFT_MIN_FRACTION * length
    left = max(0.0, start - min_off)  # starts in [0, start - min_off]
    right = max(0.0, (duration - length) - (start + min_off))  # [start + min_off, D - L]
    if left + right > _EPS:
        length_tol = _EPS + (10.0**-decimals if decimals is not None else 0.0)

        def make() -> tuple[float, float]:
            u = float(rng.uniform(0.0, left + right))
            new_start = u if u < left else start + min_off + (u - left)
            return new_start, new_start + length

        def ok(s: float, e: float) -> bool:
            return (
                _valid(s, e, duration)
                and abs(s - start) >= min_off - _EPS
                and abs((e - s) - length) <= length_tol
            )

        found = _draw(make, ok, decimals, rng)
        if found is not None:
            return found
    # No room to keep the length: half a length toward the roomier side, clipped to the video.
    room_right, room_left = duration - end, start
    go_right = room_right > room_left or (room_right == room_left and bool(rng.integers(2)))
    if go_right:
        return start + min_off, duration
    return 0.0, end - min_off


def shrink_span(span: Span, rng: np.random.Generator, decimals: int | None = 2) -> Span:
    """Return a random sub-span covering 10-50 % of the span."""
    start, end = span
    length = end - start
    low, high = SHRINK_COVERAGE

    def make() -> tuple[float, float]:
        sub = float(rng.uniform(low, high)) * length
        new_start = float(rng.uniform(start, end - sub))
        return new_start, new_start + sub

    def ok(s: float, e: float) -> bool:
        cover = (e - s) / length
        return s >= start and e <= end and s < e and low - _EPS <= cover <= high + _EPS

    found = _draw(make, ok, decimals, rng)
    if found is not None:
        return found
    middle = start + 0.5 * length  # unreachable in practice: a centred 30 % sub-span
    return middle - 0.15 * length, middle + 0.15 * length


def _best_iou(span: Span, others: Sequence[Span]) -> float:
    """The largest IoU of `span` with any of `others`."""
    return max((temporal_iou(span, o) for o in others), default=0.0)


def _gaps(spans: Sequence[Span], duration: float) -> list[Span]:
    """Return the parts of [0, duration] that no span covers."""
    gaps: list[Span] = []
    cursor = 0.0
    for start, end in sorted(spans):
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < duration:
        gaps.append((cursor, duration))
    return gaps


def random_swap_span(
    spans: Sequence[Span], duration: float, rng: np.random.Generator, decimals: int | None = 2
) -> Span:
    """Return a span of similar length elsewhere in the video, with IoU < 0.3 against `spans`."""
    length = spans[0][1] - spans[0][0]
    low, high = SWAP_LENGTH_RANGE

    def ok(s: float, e: float) -> bool:
        return _valid(s, e, duration) and _best_iou((s, e), spans) < SWAP_MAX_IOU

    def make() -> tuple[float, float]:
        sub = min(duration, float(rng.uniform(low, high)) * length)
        new_start = float(rng.uniform(0.0, duration - sub))
        return new_start, new_start + sub

    rnd = _rounder(decimals)
    for _ in range(SWAP_TRIES):
        s, e = make()
        if ok(rnd(s), rnd(e)):
            return rnd(s), rnd(e)
    gaps = [g for g in _gaps(spans, duration) if g[1] - g[0] > _EPS]
    if gaps:  # IoU 0: inside the largest uncovered part
        g0, g1 = max(gaps, key=lambda g: g[1] - g[0])
        sub = min(length, g1 - g0)

        def make_in_gap() -> tuple[float, float]:
            new_start = float(rng.uniform(g0, g1 - sub))
            return new_start, new_start + sub

        found = _draw(make_in_gap, ok, decimals, rng)
        if found is not None:
            return found
    # The spans cover the video: 0.2 x the shortest span has IoU <= 0.2 with every span.
    sub = 0.2 * min(e - s for s, e in spans)
    new_start = float(rng.uniform(0.0, duration - sub))
    return new_start, min(duration, new_start + sub)


def _record_iou(original: Sequence[Span], corrupted: Sequence[Span]) -> float:
    """Mean over the original spans of the best IoU with a corrupted span."""
    return float(np.mean([_best_iou(o, corrupted) for o in original]))


# --- records --------------------------------------------------------------------------------------


def _rng(seed: int, *words: int) -> np.random.Generator:
    """A generator seeded by (seed, *words)."""
    return np.random.default_rng([seed, *words])


def _check_sample(sample: Sample) -> float:
    """Return the sample's duration; raise LabelNoiseError for a sample that cannot be corrupted."""
    if not sample.spans:
        raise LabelNoiseError(f"record {sample.id!r} has no span to corrupt")
    if sample.duration is None:
        raise LabelNoiseError(f"record {sample.id!r} has no duration (needed to keep spans inside)")
    for start, end in sample.spans:
        if not _valid(start, end, sample.duration):
            raise LabelNoiseError(
                f"record {sample.id!r}: span [{start:g}, {end:g}] is not inside "
                f"[0, {sample.duration:g}] with start < end"
            )
    return float(sample.duration)


def corrupt_samples(
    samples: Sequence[Sample],
    share: float,
    seed: int,
    kinds: str | Iterable[str] | None = None,
    decimals: int | None = 2,
) -> NoiseResult:
    """Corrupt exactly round(share x N) of the samples' labels (see the module doc); pure.

    Args:
        samples: the records, in file order (every one must have spans and a duration).
        share: the share of records to corrupt, in [0, 1].
        seed: a non-negative integer; the same seed gives the same result.
        kinds: allowed kinds ("shift,shrink" or a sequence; None: all of KINDS).
        decimals: round new times to this many places (None: no rounding).

    Raises:
        LabelNoiseError: a share outside [0, 1], an unknown kind, a negative seed, or a sample
            without spans or duration.
    """
    share = check_share(share)
    seed = _check_seed(seed)
    allowed = parse_kinds(kinds)
    samples = list(samples)
    durations = [_check_sample(s) for s in samples]
    k = n_corrupted(share, len(samples))
    order = _rng(seed, _SELECT_STREAM).permutation(len(samples))
    chosen = sorted(int(i) for i in order[:k])
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, sample in enumerate(samples):
        by_video[sample.video_id].append(i)

    out = list(samples)
    corruptions: list[Corruption] = []
    for i in chosen:
        sample, duration = samples[i], durations[i]
        rng = _rng(seed, _RECORD_STREAM, i)
        kind = allowed[int(rng.integers(len(allowed)))]
        swapped_with = None
        if kind == "shift":
            new = tuple(shift_span(s, duration, rng, decimals) for s in sample.spans)
        elif kind == "shrink":
            new = tuple(shrink_span(s, rng, decimals) for s in sample.spans)
        else:
            partners = [
                j
                for j in by_video[sample.video_id]
                if j != i
                and samples[j].spans != sample.spans
                and all(_valid(s, e, duration) for s, e in samples[j].spans)
            ]
            if partners:
                j = partners[int(rng.integers(len(partners)))]
                new, swapped_with = samples[j].spans, samples[j].id
            else:
                new = (random_swap_span(sample.spans, duration, rng, decimals),)
        out[i] = replace(sample, spans=new)
        corruptions.append(
            Corruption(
                index=i,
                id=sample.id,
                video_id=sample.video_id,
                kind=kind,
                original=sample.spans,
                corrupted=out[i].spans,
                iou=_record_iou(sample.spans, out[i].spans),
                swapped_with=swapped_with,
            )
        )
    return NoiseResult(
        samples=out,
        corruptions=corruptions,
        share=share,
        seed=seed,
        kinds=allowed,
        decimals=decimals,
    )


# --- files ---------------------------------------------------------------------------------------


def _is_single_pair(value: Any) -> bool:
    """Whether a raw spans value is one [s, e] pair rather than a list of pairs."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and not any(isinstance(v, list | tuple) for v in value)
    )


def _encode(spans: Sequence[Span], single: bool) -> list[Any]:
    """Return spans in the raw shape of the value they replace: [s, e] or [[s, e], ...]."""
    pairs = [[float(s), float(e)] for s, e in spans]
    return pairs[0] if single and len(pairs) == 1 else pairs


class _Slot:
    """Where one record's spans sit in the parsed file: a container and a key."""

    def __init__(self, container: Any, key: Any, single_ok: bool, line: int | None) -> None:
        self.container = container
        self.key = key
        self.single_ok = single_ok
        self.line = line

    def set(self, spans: Sequence[Span]) -> None:
        """Write the spans back in the shape of the value replaced."""
        single = self.single_ok and _is_single_pair(self.container[self.key])
        self.container[self.key] = _encode(spans, single)


def _slots(fmt: str, text: str) -> tuple[Any, list[_Slot]]:
    """Parse a (strictly valid) file of `fmt`; return the document and one slot per record."""
    slots: list[_Slot] = []
    if fmt in ("timelens_bench", "activitynet"):
        field_name = "spans" if fmt == "timelens_bench" else "timestamps"
        data = json.loads(text)
        for record in data.values():
            values = record[field_name]
            slots.extend(_Slot(values, i, True, None) for i in range(len(values)))
        return data, slots
    lines: list[Any] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            lines.append(None)
            continue
        record = json.loads(line)
        lines.append(record)
        if fmt == "timelens_100k":
            slots.extend(_Slot(event, "span", True, lineno) for event in record["events"])
        else:  # qvhighlights
            slots.append(_Slot(record, "relevant_windows", False, lineno))
    return lines, slots


def _write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary file and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _render(fmt: str, document: Any, text: str, changed_lines: set[int]) -> str:
    """Return the output text: a JSON document re-dumped, JSONL lines re-dumped where changed."""
    if fmt in ("timelens_bench", "activitynet"):
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    out = []
    for lineno, (line, record) in enumerate(zip(text.splitlines(), document, strict=True), 1):
        out.append(json.dumps(record, ensure_ascii=False) if lineno in changed_lines else line)
    return "\n".join(out) + "\n"


def corrupt_file(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    share: float,
    seed: int,
    kinds: str | Iterable[str] | None = None,
    format: str | None = None,
    decimals: int | None = 2,
) -> dict[str, Any]:
    """Corrupt an annotation file's labels; write `out_path` (same format) and its sidecar.

    Returns the sidecar's content (also written to `sidecar_path(out_path)`), which adds
    "input", "output", "sidecar" and "format" to `NoiseResult.summary()`.

    Raises:
        LabelNoiseError: bad share / kinds / seed, a format that cannot be written back, or an
            output path equal to the input.
        tvg.errors.DataError: the input cannot be read, or holds a bad record (it is loaded
            strictly; the error names the file and the record).
    """
    from tvg.formats import detect_format, load_samples, normalize_format_name

    share = check_share(share)
    _check_seed(seed)
    allowed = parse_kinds(kinds)
    src, dst = Path(in_path), Path(out_path)
    side = sidecar_path(dst)
    if dst.resolve() == src.resolve() or side.resolve() == src.resolve():
        raise LabelNoiseError(f"the output {dst} (or its sidecar {side}) would overwrite the input")
    try:
        text: str | None = src.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        text = None  # load_samples reports it
    fmt = None
    if format:
        fmt = normalize_format_name(format, src)
    elif text is not None:
        fmt = detect_format(src, text)
    if fmt is not None and fmt not in WRITABLE_FORMATS:
        why = REFUSED_FORMATS.get(fmt, "no writer for it")
        raise LabelNoiseError(
            f"{src}: format {fmt!r} cannot be written back with label noise ({why}); "
            f"supported formats: {', '.join(WRITABLE_FORMATS)}"
        )
    report = load_samples(src, fmt)
    fmt = report.format
    text = src.read_text(encoding="utf-8-sig") if text is None else text
    result = corrupt_samples(report.samples, share, seed, allowed, decimals)
    document, slots = _slots(fmt, text)
    if len(slots) != len(report.samples):  # strict loading makes this impossible
        raise RuntimeError(f"{src}: {len(slots)} span slots for {len(report.samples)} records")
    changed: set[int] = set()
    for c in result.corruptions:
        slot = slots[c.index]
        slot.set(c.corrupted)
        if slot.line is not None:
            changed.add(slot.line)
    _write_atomic(dst, _render(fmt, document, text, changed))
    result.extra = {"input": str(src), "output": str(dst), "sidecar": str(side), "format": fmt}
    summary = result.summary()
    _write_atomic(side, json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return summary
