"""The on-disk cache of offline predictions, keyed by model weights + dataset + settings.

One JSONL file per key: `<cache_dir>/<role>-<key>.jsonl`; the first line is {"meta": {...}} (the
key and everything hashed into it), then one row per prompt in dataset order. Files are written
atomically (temporary file + os.replace), so a crash leaves either the old file or none. A file
whose meta, length or ids do not match what is asked for is a miss (and is overwritten).

- weights: `weights_checksum(model_dir)`, the checksum a rollout engine reports for the weights
  it was built with (`rollout.weight_sync`), so a model directory and a running engine holding
  the same weights share cache entries;
- dataset: the annotation file's sha256 plus a digest of the prompts built from it (ids, video
  paths, queries, spans, prompt style, video settings);
- settings: how the predictions were sampled (`PredictionSettings`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rollout.batch import PromptSpec


def weights_checksum(model_dir: str | Path) -> str:
    """Checksum of a model directory's safetensors weights (what its engine reports at start)."""
    from runtime.checksums import checksum_of_digests, safetensors_digests

    digests = safetensors_digests(model_dir)
    if not digests:
        raise FileNotFoundError(f"no *.safetensors weights in {model_dir}")
    return checksum_of_digests(digests)


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prompts_digest(prompts: Sequence[PromptSpec]) -> str:
    """sha256 over every prompt's identity and input settings, in order."""
    h = hashlib.sha256()
    for spec in prompts:
        record = {
            "id": spec.sample_id,
            "video": spec.video,
            "query": spec.query,
            "spans": spec.spans,
            "duration": spec.duration,
            "style": spec.prompt_style,
            "video_settings": asdict(spec.video_settings),
        }
        h.update(json.dumps(record, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def dataset_key(annotation_path: str | Path | None, prompts: Sequence[PromptSpec]) -> str:
    """The dataset part of a cache key: annotation file content + the prompts built from it."""
    content = file_digest(annotation_path) if annotation_path else "-"
    return hashlib.sha256(f"{content}|{prompts_digest(prompts)}".encode()).hexdigest()


def cache_key(weights: str, dataset: str, settings: dict[str, Any]) -> str:
    """A 24-hex-digit key over (weights checksum, dataset key, settings)."""
    blob = json.dumps(
        {"weights": weights, "dataset": dataset, "settings": settings}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class PredictionCache:
    """JSONL files of per-prompt predictions under one directory (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def path(self, role: str, key: str) -> Path:
        """Where the entry of (role, key) lives."""
        return self.directory / f"{role}-{key}.jsonl"

    def load(self, role: str, key: str, ids: Sequence[str]) -> list[dict[str, Any]] | None:
        """The rows of (role, key) when a complete entry for exactly these ids exists, else None;
        counts a hit or a miss."""
        path = self.path(role, key)
        rows = _read(path) if path.is_file() else None
        if rows is None or rows[0].get("meta", {}).get("key") != key:
            self.misses += 1
            return None
        body = rows[1:]
        if [r.get("id") for r in body] != list(ids):
            print(f"[curriculum] cache entry {path} does not match the dataset: recomputing")
            self.misses += 1
            return None
        self.hits += 1
        return body

    def store(
        self, role: str, key: str, meta: dict[str, Any], rows: Sequence[dict[str, Any]]
    ) -> Path:
        """Write (role, key) atomically: a temporary file in the same directory, then replace."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(role, key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps({"meta": {**meta, "key": key, "role": role}}) + "\n")
            for row in rows:
                handle.write(json.dumps(row) + "\n")
        os.replace(tmp, path)
        return path


def _read(path: Path) -> list[dict[str, Any]] | None:
    """All JSON lines of a file, or None when it is unreadable or empty."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, ValueError):
        print(f"[curriculum] unreadable cache entry {path}: recomputing")
        return None
    return rows or None
