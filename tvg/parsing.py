"""Answer parsing: find the predicted (start, end) span in a model's answer text.

Follows TimeLens' evaluation conventions (docs/DATASETS.md §5, "Metrics"):

1. When the text holds an ``<answer> ... </answer>`` tag, only the tag's content is parsed (an
   unclosed tag runs to the end of the text).
2. The first time pair wins, trying these forms in order:
   a. clock times, HH:MM:SS(.ff) or MM:SS(.ff): the first two in the text ("00:01:05 - 00:01:10");
   b. "a - b" (also en / em dash and "~"), a unit such as "s" / "seconds" may follow a;
   c. "a to b" / "from a to b" (also "until", "till", "through");
   d. any two numbers, the first two in the text.
   Each side of b-d may itself be a clock time.
3. Nothing found: None (scored as IoU 0, as TimeLens' substitute span [duration + 10, duration + 20]
   would be).

A pair with start >= end is returned AS IS, in the order written, not swapped: TimeLens warns and
keeps the order, and such a prediction scores IoU 0 (`tvg.rewards.temporal_iou`).
"""

from __future__ import annotations

import re

Span = tuple[float, float]

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
_CLOCK = r"(?:\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?|\d{1,3}:\d{1,2}(?:\.\d+)?)"
# A token must not continue a word, a number or a clock on the left, nor a number / clock on the
# right; a unit letter may follow it ("12s").
_LEFT = r"(?<![\w.:])"
_RIGHT = r"(?![\d:]|\.\d)"
_TIME = rf"{_LEFT}(?:{_CLOCK}|{_NUMBER}){_RIGHT}"
_UNIT = r"(?:\s*(?:seconds?|secs?|s)\b)?"

# ASCII: only 0-9 are digits (Python's \d would also take other scripts' digits).
_CLOCK_TOKEN = re.compile(rf"{_LEFT}{_CLOCK}{_RIGHT}", re.ASCII)
_DASH_PAIR = re.compile(rf"({_TIME}){_UNIT}\s*(?:-|–|—|~)\s*({_TIME})", re.ASCII)
_TO_PAIR = re.compile(
    rf"({_TIME}){_UNIT}\s+(?:to|until|till|through)\s+({_TIME})", re.ASCII | re.IGNORECASE
)
_ANY_TIME = re.compile(_TIME, re.ASCII)
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)


def time_to_seconds(token: str) -> float:
    """Convert "12.5", "01:05" (MM:SS) or "1:02:03.5" (HH:MM:SS) to seconds."""
    seconds = 0.0
    for part in token.split(":"):
        seconds = seconds * 60.0 + float(part)
    return seconds


def extract_answer_tag(text: str) -> str | None:
    """Return the content of the first <answer> tag (to the end if unclosed), or None if absent."""
    match = _ANSWER_TAG.search(text)
    return match.group(1) if match else None


def parse_span(text: str) -> Span | None:
    """Return the first (start, end) time pair of an answer, or None when there is none.

    See the module docstring for the forms tried and their order. The pair keeps the written order:
    "20 - 10" gives (20.0, 10.0), which scores IoU 0 downstream.
    """
    if not isinstance(text, str):
        return None
    tagged = extract_answer_tag(text)
    if tagged is not None:
        text = tagged
    clocks = _CLOCK_TOKEN.findall(text)
    if len(clocks) >= 2:
        return time_to_seconds(clocks[0]), time_to_seconds(clocks[1])
    for pattern in (_DASH_PAIR, _TO_PAIR):
        match = pattern.search(text)
        if match:
            return time_to_seconds(match.group(1)), time_to_seconds(match.group(2))
    tokens = _ANY_TIME.findall(text)
    if len(tokens) >= 2:
        return time_to_seconds(tokens[0]), time_to_seconds(tokens[1])
    return None
