"""`FrameCache`: a thread-safe LRU cache of decoded videos, in memory and optionally on disk.

G samples of one prompt, the teacher and the learner all ask for the same video; with a cache the
video is decoded once. Entries are keyed by `cache_key(path, settings)`: a hash of the absolute
path, the file's mtime and size, and every field of `VideoSettings`, so an edited file or a change
of settings never returns stale frames.

Memory tier: bounded by bytes (frames + timestamps), least recently used entries are evicted first.
Disk tier (optional): one uncompressed `.npz` per entry in `disk_dir`, written to a temporary file
in the same directory and moved into place with `os.replace`, so a killed run never leaves a
half-written entry under a real name. The disk tier is not size-bounded; delete the directory to
reclaim space. A corrupt disk entry is deleted and decoded again.

Concurrent requests for the same key decode once: the first caller decodes, the others wait for it.
Cached frame arrays are shared and marked read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvg.bytes_lru import BytesLRU
from tvg.video_settings import VideoSettings
from tvg.vision_inputs import VisionInputs

CACHE_FORMAT_VERSION = 1
DEFAULT_MAX_BYTES = 2 * 1024**3
_STALE_TMP_SECONDS = 3600.0


def cache_key(path: str | os.PathLike[str], settings: VideoSettings) -> str:
    """Return the cache key of `path` decoded with `settings` (raises OSError if path is missing).

    A sha256 over the absolute path, mtime (ns), size, the settings and the cache format version.
    """
    abspath = os.path.abspath(os.fspath(path))
    st = os.stat(abspath)
    payload = {
        "path": abspath,
        "mtime_ns": st.st_mtime_ns,
        "size": st.st_size,
        "settings": settings.to_dict(),
        "version": CACHE_FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class CacheStats:
    """Counters of a `FrameCache` (memory hits, disk hits, misses = decodes, evictions)."""

    hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    evictions: int = 0
    entries: int = 0
    nbytes: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return dict(self.__dict__)


class FrameCache:
    """Thread-safe LRU cache of `VisionInputs` bounded by bytes, optionally backed by a directory.

    max_bytes: memory budget; 0 keeps nothing in memory (disk tier only). An entry larger than the
        budget is returned but not kept in memory.
    disk_dir: directory for the on-disk tier (created if missing); None disables it.
    """

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, disk_dir: str | os.PathLike[str] | None = None
    ) -> None:
        """Create an empty cache with a memory budget and an optional disk directory."""
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self._lock = threading.Lock()
        self._memory: BytesLRU[VisionInputs] = BytesLRU(self.max_bytes, lambda e: e.nbytes)
        self._inflight: dict[str, threading.Event] = {}
        self._stats = CacheStats()
        if self.disk_dir is not None:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
            self._remove_stale_tmp_files()

    # ------------------------------------------------------------------ public API
    def get_or_create(self, key: str, create: Callable[[], VisionInputs]) -> VisionInputs:
        """Return the entry for `key`, from memory, else disk, else by calling `create()` once.

        Concurrent callers with the same key wait for the first one instead of decoding again. An
        exception from `create` propagates to its caller; waiting callers then try themselves.
        """
        while True:
            with self._lock:
                entry = self._memory.get(key)
                if entry is not None:
                    self._stats.hits += 1
                    return entry
                event = self._inflight.get(key)
                if event is None:
                    event = self._inflight[key] = threading.Event()
                    break
            # Another caller is producing this entry: wait, then look again. If it kept nothing
            # in memory (failed, or the entry exceeds max_bytes) this caller becomes the producer.
            event.wait()
        try:
            entry = self._load_from_disk(key)
            if entry is not None:
                with self._lock:
                    self._stats.disk_hits += 1
            else:
                entry = create()
                _make_read_only(entry)
                with self._lock:
                    self._stats.misses += 1
                self._write_to_disk(key, entry)
            entry.cache_key = key
            self._memory.put(key, entry)
            return entry
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            event.set()

    def get(self, key: str) -> VisionInputs | None:
        """Return the in-memory entry for `key` (counts a hit) or None, without decoding."""
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                self._stats.hits += 1
            return entry

    def __contains__(self, key: object) -> bool:
        """Return whether `key` is held in memory (does not touch the LRU order or counters)."""
        return key in self._memory

    def __len__(self) -> int:
        """Return the number of entries held in memory."""
        return len(self._memory)

    @property
    def nbytes(self) -> int:
        """Return the bytes held in memory."""
        return self._memory.nbytes

    def stats(self) -> CacheStats:
        """Return a snapshot of the counters."""
        with self._lock:
            snap = CacheStats(**self._stats.as_dict())
            snap.evictions = self._memory.evictions
            snap.entries = len(self._memory)
            snap.nbytes = self._memory.nbytes
            return snap

    def clear(self, disk: bool = False) -> None:
        """Drop every in-memory entry (and every disk entry when `disk` is true); keep counters."""
        self._memory.clear()
        if disk and self.disk_dir is not None:
            for file in self.disk_dir.glob("*.npz"):
                with contextlib.suppress(OSError):
                    file.unlink()

    # ------------------------------------------------------------------ disk tier
    def _disk_path(self, key: str) -> Path | None:
        """Return the file that holds `key` on disk, or None without a disk tier."""
        return None if self.disk_dir is None else self.disk_dir / f"{key}.npz"

    def _load_from_disk(self, key: str) -> VisionInputs | None:
        """Return the entry stored on disk for `key`, or None (missing or corrupt: deleted)."""
        file = self._disk_path(key)
        if file is None or not file.exists():
            return None
        try:
            with np.load(file, allow_pickle=False) as data:
                frames = np.array(data["frames"])
                timestamps = np.array(data["timestamps"])
                info = json.loads(str(data["info"]))
            entry = VisionInputs(
                frames=frames,
                timestamps=timestamps,
                metadata=info["metadata"],
                video_path=info["video_path"],
                settings=VideoSettings(**info["settings"]),
            )
        except Exception:
            with contextlib.suppress(OSError):
                file.unlink()
            return None
        _make_read_only(entry)
        return entry

    def _write_to_disk(self, key: str, entry: VisionInputs) -> None:
        """Store `entry` under `key` atomically (temp file + os.replace); ignore disk errors."""
        file = self._disk_path(key)
        if file is None:
            return
        info = {
            "metadata": entry.metadata,
            "video_path": entry.video_path,
            "settings": entry.settings.to_dict(),
        }
        tmp_name = None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=file.parent)
            with os.fdopen(fd, "wb") as handle:
                np.savez(
                    handle,
                    frames=entry.frames,
                    timestamps=entry.timestamps,
                    info=np.array(json.dumps(info)),
                )
            os.replace(tmp_name, file)
            tmp_name = None
        except OSError:
            pass  # a full or read-only disk only costs a later re-decode
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    def _remove_stale_tmp_files(self) -> None:
        """Delete temporary files that a killed writer left behind more than an hour ago."""
        assert self.disk_dir is not None
        now = time.time()
        for tmp in self.disk_dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                    tmp.unlink()


def _make_read_only(entry: VisionInputs) -> None:
    """Mark the entry's arrays read-only, since every user of a cached entry shares them."""
    entry.frames.setflags(write=False)
    entry.timestamps.setflags(write=False)
