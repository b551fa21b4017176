"""How a benchmark records its results: the command that made them, the date, and an atomic
write (`benchmarks.soak.write_json`), so a killed run never leaves a half-written file."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.soak import write_json


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The shell command that reruns `script` (a path from the repository root) with `argv`
    (None: this process's own arguments)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join([".venv/bin/python", script, *args])


def write_results(
    path: Path, payload: dict[str, Any], script: str, argv: Sequence[str] | None
) -> None:
    """Stamp `payload` with its command and date, write it atomically to `path`, say where."""
    payload["command"] = command_line(script, argv)
    payload["date"] = time.strftime("%Y-%m-%d")
    write_json(path, payload)
    print(f"wrote {path}")
