"""Checkpoint directories: written atomically, the last K kept, the newest found for --resume.

A checkpoint is `<run>/checkpoints/step_<N>/` holding the HF model (loadable by transformers and
vLLM), the learner state and `state.json` (step, RNG, data position). It is written under a
temporary name and renamed when complete, so a run killed while writing leaves the previous
checkpoint intact and no half-written one that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

COMPLETE_MARKER = "state.json"


def checkpoint_root(run_dir: str | Path) -> Path:
    """The directory holding a run's checkpoints."""
    return Path(run_dir) / "checkpoints"


def staging_dir(run_dir: str | Path, step: int) -> Path:
    """A fresh temporary directory for the checkpoint of `step` (removed if it exists)."""
    path = checkpoint_root(run_dir) / f".tmp_step_{step:08d}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def commit_checkpoint(
    run_dir: str | Path, staging: Path, step: int, state: dict[str, Any], keep_last: int
) -> Path:
    """Write state.json into `staging`, rename it to step_<N>, and prune to the last K."""
    tmp = staging / (COMPLETE_MARKER + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, staging / COMPLETE_MARKER)
    final = checkpoint_root(run_dir) / f"step_{step:08d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary and incomplete ones ignored)."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = [
        path
        for path in root.iterdir()
        if path.is_dir() and path.name.startswith("step_") and (path / COMPLETE_MARKER).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def read_state(checkpoint: str | Path) -> dict[str, Any]:
    """The state.json of a checkpoint."""
    return json.loads((Path(checkpoint) / COMPLETE_MARKER).read_text())
