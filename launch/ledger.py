"""The compute ledger: per-step metrics and per-phase wall-clock, to JSONL and TensorBoard.

Each step appends one JSON line (flushed and fsynced, so a killed run keeps every finished step)
and, when TensorBoard is available, the same scalars. The comparison report reads the JSONL.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


class Ledger:
    """Appends step records to `<dir>/metrics.jsonl` and scalars to TensorBoard."""

    def __init__(self, directory: str | Path, tensorboard: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "metrics.jsonl"
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.directory / "tensorboard"))
            except ImportError:  # TensorBoard is optional at run time
                self._writer = None

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (must hold "step"); nested dicts become "a/b" scalars."""
        clean = _jsonable(record)
        line = json.dumps(clean, sort_keys=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self._writer is not None:
            step = int(record["step"])
            for key, value in _flatten(clean).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def truncate_after(self, step: int) -> list[dict[str, Any]]:
        """Drop records of steps after `step` (used when resuming from a checkpoint); return the
        records kept."""
        if not self.path.exists():
            return []
        kept = [
            (line, record)
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip() and (record := json.loads(line)).get("step", 0) <= step
        ]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line, _ in kept), encoding="utf-8")
        os.replace(tmp, self.path)
        return [record for _, record in kept]

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out


def read_ledger(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file, in order."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
