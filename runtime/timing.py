"""Wall-clock seconds per named phase: the driver's step phases and a learner rank's parts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class PhaseTimer:
    """Accumulates wall-clock seconds per named phase (rollout, teacher, learner, sync, ...).

    `synchronize` (e.g. `torch.cuda.synchronize` on a GPU rank) runs before each reading, so a
    phase of asynchronous device work is charged to itself, not to the next one.
    """

    def __init__(self, synchronize: Callable[[], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.synchronize = synchronize

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the enclosed block and add it to `name`."""
        if self.synchronize is not None:
            self.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.synchronize is not None:
                self.synchronize()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def reset(self) -> dict[str, float]:
        """Return the accumulated times and start again from zero."""
        out, self.seconds = self.seconds, {}
        return out
