"""Library noise filters: each one drops one named warning that says nothing actionable.

A run's processes (the driver, vLLM rollout / teacher workers, DeepSpeed learner ranks) print
warnings from the libraries underneath them that no user can act on, some of them once per call
site and process, re-armed whenever a library touches the warning filters (one quick demo printed
74 copies of one). Each filter here matches one such warning precisely — a Python warning by its
category, the start of its message and the module it is attributed to; a log record by its logger
and a fragment of its unformatted message — and drops only that: the same message from another
module, or another message from the same logger, still shows.

Where the rest live: vLLM's own routine lines and its engine-process environment are in
`runtime.vllm_env` (which installs these filters too); transformers' "non-writable NumPy array"
warning is fixed at its cause (`tvg.vision_inputs` hands libraries writable frames).
Call `quiet_library_noise()` early in each process (it is idempotent).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class WarningFilter:
    """One Python warning to ignore.

    name: what the filter is called in docs and tests.
    category: the warning's class (matched with issubclass, as `warnings` does).
    message: regex matched (case-insensitively) at the start of the warning's message.
    module: regex matched against the whole name of the module the warning is attributed to.
    reason: why the warning is useless here.
    """

    name: str
    category: type[Warning]
    message: str
    module: str
    reason: str

    def install(self) -> None:
        """Add the ignore rule in front of this process's warning filters (no duplicate)."""
        warnings.filterwarnings(
            "ignore", message=self.message, category=self.category, module=self.module
        )


WARNING_FILTERS: tuple[WarningFilter, ...] = (
    WarningFilter(
        name="deepspeed-deprecated-collectives",
        category=FutureWarning,
        message=r"`torch\.distributed\.(all_gather_into_tensor|reduce_scatter_tensor)` is "
        r"deprecated",
        # torch's c10d logging wrapper is the caller the deprecation points at.
        module=r"torch\.distributed\.c10d_logger\Z",
        reason="DeepSpeed ZeRO calls these collectives on every step of every learner rank; "
        "the rename is DeepSpeed's to make (74 warnings, 148 lines, in one quick demo)",
    ),
    WarningFilter(
        name="vllm-dispatcher-reduce-op",
        category=FutureWarning,
        message=r"`torch\.distributed\.reduce_op` is deprecated",
        module=r"vllm\.triton_utils\.dispatcher\Z",
        reason="vLLM's kernel dispatcher scans every loaded module's attributes at engine start "
        "and so touches torch's deprecated alias; nothing uses it (two lines per engine)",
    ),
)


# Logger name -> fragments of the unformatted messages dropped from that logger (not vLLM's:
# those are `runtime.vllm_env.ROUTINE_MESSAGES`).
LOGGER_MESSAGES: dict[str, tuple[str, ...]] = {
    # torch looks for Triton kernels in every custom op vLLM registers; the CPU install removes
    # Triton on purpose (a CUDA build that breaks CPU imports, README "Install details").
    "torch._library.triton": ("Triton not available",),
    # Each learner rank's DeepSpeed falls back to its CPU accelerator when torch sees no CUDA;
    # the learner picks gloo / NCCL from the same test itself (trainer.learner).
    "DeepSpeed": ("Setting accelerator to CPU",),
}


class DropMessages(logging.Filter):
    """Drop a logger's records whose unformatted message contains one of `fragments`."""

    def __init__(self, fragments: Iterable[str]) -> None:
        super().__init__()
        self.fragments: tuple[str, ...] = tuple(fragments)

    def add(self, fragments: Iterable[str]) -> None:
        """Also drop `fragments` (those already dropped are not repeated)."""
        self.fragments += tuple(f for f in fragments if f not in self.fragments)

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False (drop) for a record carrying one of the fragments."""
        text = str(record.msg)
        return not any(fragment in text for fragment in self.fragments)


def drop_logger_messages(messages: Mapping[str, Iterable[str]]) -> None:
    """Install (once per logger and process) a `DropMessages` filter for each logger named."""
    for name, fragments in messages.items():
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, DropMessages)), None)
        if existing is None:
            logger.addFilter(DropMessages(fragments))
        else:
            existing.add(fragments)


def quiet_transformers_progress() -> None:
    """Turn off transformers' own progress bars in this process: "Loading weights" at every model
    load and "Writing model shards" at every checkpoint, printed by each learner rank, engine and
    teacher worker (a demo printed 12 pairs of them between its own bars); the loop's progress
    bar says what those would."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def quiet_library_noise() -> None:
    """Install every filter of this module in this process (idempotent)."""
    for rule in WARNING_FILTERS:
        rule.install()
    drop_logger_messages(LOGGER_MESSAGES)
    quiet_transformers_progress()
