"""Errors raised by the task layer for bad input data."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a record sits in a file: a 1-based line number, a JSON key path, or both."""

    line: int | None = None
    key: str | None = None

    def describe(self, path: str) -> str:
        """Return "path:line: key 'k'"-style text naming the file and the record."""
        text = f"{path}:{self.line}" if self.line is not None else str(path)
        if self.key is not None:
            text += f": key {self.key}"
        return text


class DataError(ValueError):
    """A bad input file or record; the message names the file, the line or key, and the problem.

    Attributes:
        path: the file (as given).
        location: the record's line and/or key inside the file (may be empty for file-level errors).
        reason: a short machine-readable code ("missing_field", "bad_time", "empty_span", ...).
        detail: what is wrong, in words.
    """

    def __init__(self, path: str, location: Location | None, reason: str, detail: str) -> None:
        self.path = str(path)
        self.location = location or Location()
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.location.describe(self.path)}: {detail} [{reason}]")


def json_failure(exc: BaseException) -> str:
    """Why `json.loads` failed, in words: its own message, or what a non-syntax failure means.

    Besides `JSONDecodeError`, `json.loads` raises a plain `ValueError` for an integer literal
    longer than Python's digit limit and `RecursionError` for absurdly deep nesting.
    """
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]
