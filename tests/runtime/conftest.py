"""Fixtures of the shared runtime's tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest


@pytest.fixture
def logger_records() -> Callable[[str, Callable[[logging.Logger], None]], list[str]]:
    """`capture(name, emit)`: the messages that `emit(logger)` gets through logger `name`'s own
    filters, seen by a handler attached to that logger itself (so a library's logging set-up,
    such as vLLM's propagate=False, cannot hide them)."""

    def capture(name: str, emit: Callable[[logging.Logger], None]) -> list[str]:
        logger = logging.getLogger(name)
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            emit(logger)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        return [record.getMessage() for record in records]

    return capture
