"""The one sample type of the task: a video, a query and the ground-truth span(s)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

Span = tuple[float, float]

_WHITESPACE = re.compile(r"\s+")
_EXTENSION = re.compile(r"^(.+)\.[A-Za-z][A-Za-z0-9]{0,4}$")


def normalize_query(text: str) -> str:
    """Normalise a query as TimeLens does: collapse whitespace runs, strip, drop a trailing period.

    >>> normalize_query("  a person  opens\\tthe door. ")
    'a person opens the door'
    """
    text = _WHITESPACE.sub(" ", text).strip()
    if text.endswith("."):
        text = text[:-1].rstrip()
    return text


def video_id_from_path(path: str) -> str:
    """Return the video id that a path names: its file name without a file extension.

    Only an extension that looks like one (a letter, then up to 4 letters / digits) is removed, so
    that ids with dots, such as QVHighlights' "<ytid>_60.0_210.0", survive.
    """
    name = PurePath(path).name
    match = _EXTENSION.match(name)
    return match.group(1) if match else name


@dataclass(frozen=True)
class Sample:
    """One grounding query.

    Attributes:
        id: unique within its file (the dataset's own id when it has one, else "<video_id>#<n>").
        video: path of the video file.
        duration: video length in seconds; None when the annotation does not carry it
            (Charades-STA), in which case it comes from the decoded video.
        query: the normalised sentence.
        spans: ground-truth (start, end) pairs in seconds; several for QVHighlights, empty for an
            unlabelled query (QVHighlights test split, only when the loader allows it).
        source: the dataset name (used to report metrics per dataset).
        video_id: the dataset's video id (defaults to the video file's stem).
        extra: anything else the format carries (e.g. QVHighlights saliency scores); not compared.
    """

    id: str
    video: str
    duration: float | None
    query: str
    spans: tuple[Span, ...]
    source: str = ""
    video_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        spans = tuple((float(s), float(e)) for s, e in self.spans)
        object.__setattr__(self, "spans", spans)
        if not self.video_id:
            object.__setattr__(self, "video_id", video_id_from_path(self.video))

    @property
    def span(self) -> Span | None:
        """The first ground-truth span, or None for an unlabelled sample."""
        return self.spans[0] if self.spans else None

    @property
    def labelled(self) -> bool:
        """Whether the sample has at least one ground-truth span."""
        return bool(self.spans)
