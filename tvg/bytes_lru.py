"""A map that keeps the most recently used entries within a memory bound (`BytesLRU`).

The per-process caches keep entries this way: the decoded frames' memory tier
(`tvg.frame_cache`) and, on the transformers path, the processed prompts
(`runtime.processed_prompts`) and a frozen model's video features (`runtime.vision_features`).
They drop the least recently used entries first once their entries take more than `max_bytes`;
an entry larger than the bound is not kept. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BytesLRU(Generic[V]):
    """Entries within `max_bytes` (each entry's size from `size`), least recently used out."""

    def __init__(self, max_bytes: int, size: Callable[[V], int]) -> None:
        """An empty map holding at most `max_bytes` (0: keeps nothing)."""
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.evictions = 0  # entries dropped to stay within the bound

    @property
    def nbytes(self) -> int:
        """Memory the entries take now."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether `key` is kept (the order of use unchanged)."""
        with self._lock:
            return key in self._entries

    def clear(self) -> None:
        """Drop every entry (the eviction count stays)."""
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    def keys(self) -> list[Hashable]:
        """The keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def get(self, key: Hashable) -> V | None:
        """The entry of `key` (now the most recently used), or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Keep `value` under `key` (unless it alone exceeds the bound or the key is kept)."""
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = value
            self._nbytes += size
            while self._nbytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._nbytes -= self._size(old)
                self.evictions += 1
