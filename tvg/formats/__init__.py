"""Annotation loaders: every supported file format becomes a list of `tvg.sample.Sample`.

Formats (docs/DATASETS.md §2): timelens_bench, timelens_100k, charades_sta, activitynet,
qvhighlights, ms_swift. `load_samples` detects the format (content first, see `tvg.formats.detect`)
unless given one, validates every record and either raises the first `tvg.errors.DataError` (strict,
the default) or skips bad records and counts them by reason in the returned `LoadReport` (lenient).
Skips count the unit dropped: the whole record when the record itself is bad, else the one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from tvg.errors import DataError, Location
from tvg.formats import (
    activitynet,
    charades_sta,
    ms_swift,
    qvhighlights,
    timelens_100k,
    timelens_bench,
)
from tvg.formats.base import (
    DEFAULT_TOLERANCE_FRAC,
    DEFAULT_TOLERANCE_S,
    DEFAULT_VIDEO_EXTS,
    REASONS,
    LoadContext,
    LoadOptions,
    LoadReport,
    Scope,
)
from tvg.formats.detect import detect_format, sniff_format
from tvg.sample import Sample

Loader = Callable[[LoadContext], Iterator[tuple[Scope, Sample]]]

LOADERS: dict[str, Loader] = {
    module.NAME: module.load
    for module in (timelens_bench, timelens_100k, charades_sta, activitynet, qvhighlights, ms_swift)
}
FORMAT_NAMES: tuple[str, ...] = tuple(LOADERS)

__all__ = [
    "DEFAULT_TOLERANCE_FRAC",
    "DEFAULT_TOLERANCE_S",
    "DEFAULT_VIDEO_EXTS",
    "FORMAT_NAMES",
    "REASONS",
    "DataError",
    "LoadOptions",
    "LoadReport",
    "detect_format",
    "load_samples",
    "normalize_format_name",
    "read_samples",
    "sniff_format",
]


def normalize_format_name(name: str, path: str | Path = "<format>") -> str:
    """Return the canonical format name ("TimeLens-Bench" -> "timelens_bench").

    Raises DataError ("unknown_format") for a name that is not a known format.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise DataError(
            str(path),
            Location(),
            "unknown_format",
            f"unknown format {name!r}; known formats: {', '.join(FORMAT_NAMES)}",
        )
    return key


def load_samples(
    path: str | Path,
    format: str | None = None,
    *,
    video_root: str | Path | None = None,
    video_exts: tuple[str, ...] = DEFAULT_VIDEO_EXTS,
    check_videos: bool | None = None,
    strict: bool = True,
    allow_unlabelled: bool = False,
    source: str | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    tolerance_frac: float = DEFAULT_TOLERANCE_FRAC,
    durations: Mapping[str, float] | None = None,
) -> LoadReport:
    """Load an annotation file into samples (one per query) and return the `LoadReport`.

    Args:
        path: the annotation file.
        format: one of FORMAT_NAMES; None detects it from the content.
        video_root: folder of the videos (bare ids become <video_root>/<id><ext>, trying
            `video_exts` in order; relative paths are joined to it).
        check_videos: report queries whose video file is missing; default: when video_root is set.
        strict: raise the first DataError (default), or skip bad records and count them.
        allow_unlabelled: accept queries without spans (QVHighlights test split).
        source: dataset name for the samples (default: the record's own, else the file's stem).
        tolerance_s, tolerance_frac: spans may leave [0, duration] by max(tolerance_s,
            tolerance_frac * duration) and are then clamped; beyond that they are errors.
        durations: video id -> seconds for formats without durations (Charades-STA).

    Raises:
        DataError: a file-level problem (unreadable, unknown format, not JSON where JSON is needed)
            in any mode; the first bad record in strict mode. Duplicate sample ids and missing
            videos are reported like any other bad record.
    """
    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark (some Windows editors write one) is not content.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            str(path), Location(), "unreadable", f"cannot read the file: {exc}"
        ) from None
    fmt = normalize_format_name(format, path) if format else detect_format(path, text)
    root = Path(video_root) if video_root is not None else None
    options = LoadOptions(
        video_root=root,
        video_exts=tuple(video_exts),
        check_videos=(root is not None) if check_videos is None else check_videos,
        strict=strict,
        allow_unlabelled=allow_unlabelled,
        source=source,
        tolerance_s=tolerance_s,
        tolerance_frac=tolerance_frac,
        durations=durations,
    )
    ctx = LoadContext(path, text, fmt, options)
    seen: dict[str, Scope] = {}
    video_exists: dict[str, bool] = {}
    for scope, sample in LOADERS[fmt](ctx):
        if sample.id in seen:
            first = seen[sample.id].location().describe(str(path))
            ctx.skip(scope.error("duplicate_id", f"id {sample.id!r} already used at {first}"))
            continue
        if options.check_videos:
            if sample.video not in video_exists:
                video_exists[sample.video] = Path(sample.video).is_file()
            if not video_exists[sample.video]:
                ctx.skip(scope.error("missing_video", f"video file not found: {sample.video}"))
                continue
        seen[sample.id] = scope
        ctx.report.samples.append(sample)
    return ctx.report


def read_samples(path: str | Path, format: str | None = None, **kwargs: object) -> list[Sample]:
    """Load an annotation file (strict by default) and return only its samples."""
    return load_samples(path, format, **kwargs).samples  # type: ignore[arg-type]
