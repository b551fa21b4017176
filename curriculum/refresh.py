"""Refresh policy and the shared machinery of samplers that re-score the student as it trains.

Modes: "none" (select once, before the first step), "rounds" (the paper's multi-round TVDF:
re-score the current student and reselect each time the current round's selection has been
walked through once; inside a round the selection is static), "online" (beyond the paper:
re-score and reselect every K steps). The driver asks `needs_refresh(step)` before each step and
calls `refresh(rollout_group, step)` when it says so; the first call makes the first selection.

A refreshing sampler walks its selection with a seeded `UniformSampler` (one per round, seeded by
(seed, round)); its state holds the round, the selection and the walk's position, so a resumed run
continues exactly without re-scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curriculum.predictions import Predictor
from curriculum.scoring import OfflineScorer
from curriculum.uniform import UniformSampler

REFRESH_MODES: tuple[str, ...] = ("none", "rounds", "online")


@dataclass(frozen=True)
class RefreshPolicy:
    """When to re-score the student: never, at the end of each round, or every `every` steps."""

    mode: str = "none"
    every: int = 0

    def __post_init__(self) -> None:
        """Reject unknown modes and an online refresh without a period."""
        if self.mode not in REFRESH_MODES:
            raise ValueError(f"refresh mode must be one of {REFRESH_MODES}, got {self.mode!r}")
        if self.mode == "online" and self.every < 1:
            raise ValueError("online refresh needs a period of K >= 1 steps")


def round_seed(seed: int, round_index: int) -> int:
    """The seed of one round's selection and walk."""
    return seed * 1_000_003 + round_index


class RefreshingSampler:
    """Base of the TVDF and difficulty samplers (the `Sampler` protocol plus the refresh hook).

    Subclasses implement `_reselect(student)` (score, select, return a summary dict),
    `_make_walk()`, `_dataset_index(i)`, `_selection_state()` and `_restore_selection(state)`.
    """

    kind = "refreshing"

    def __init__(self, size: int, scorer: OfflineScorer, policy: RefreshPolicy, seed: int) -> None:
        if size < 1:
            raise ValueError(f"cannot sample from an empty dataset (size {size})")
        self.size, self.scorer, self.policy, self.seed = size, scorer, policy, seed
        self.round = -1
        self.refreshed_at = -1
        self.rounds: list[dict[str, Any]] = []
        self._walk: UniformSampler | None = None

    # -- refresh --------------------------------------------------------------------------
    def needs_refresh(self, step: int) -> bool:
        """Whether the driver must call `refresh` before drawing the indices of step `step`+1."""
        walk = self._walk
        if walk is None:
            return True
        if self.policy.mode == "rounds":
            return walk.epoch >= 1 or walk.position >= walk.size
        if self.policy.mode == "online":
            return step > 0 and step % self.policy.every == 0 and step != self.refreshed_at
        return False

    def refresh(self, student: Predictor | None, step: int) -> dict[str, Any]:
        """Re-score the student (`student`: a rollout group holding its current weights; None:
        the student model directory), reselect and start a new round; return its summary."""
        self.round += 1
        summary = {"round": self.round, "step": step, **self._reselect(student)}
        self.refreshed_at = step
        self._walk = self._make_walk()
        self.rounds.append(summary)
        shown = ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()
        )
        print(f"[curriculum] {self.kind}: {shown}")
        return summary

    # -- the Sampler protocol --------------------------------------------------------------
    def next_indices(self, count: int) -> list[int]:
        """The dataset indices of the next `count` prompts from the current round."""
        if self._walk is None:
            raise RuntimeError(
                f"{self.kind} sampler has no selection yet: call refresh(student, step) first "
                "(the driver does when needs_refresh(step) says so)"
            )
        return [self._dataset_index(i) for i in self._walk.next_indices(count)]

    def state_dict(self) -> dict[str, Any]:
        """Round, selection and walk position (no re-scoring is needed to resume)."""
        return {
            "kind": self.kind,
            "size": self.size,
            "seed": self.seed,
            "round": self.round,
            "refreshed_at": self.refreshed_at,
            "walk": self._walk.state_dict() if self._walk is not None else None,
            **self._selection_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved state; the kind, dataset size and seed must match."""
        mine = (self.kind, self.size, self.seed)
        theirs = (state.get("kind"), state.get("size"), state.get("seed"))
        if mine != theirs:
            raise ValueError(f"sampler state is for kind/size/seed {theirs}, this run has {mine}")
        self.round, self.refreshed_at = int(state["round"]), int(state["refreshed_at"])
        if state.get("walk") is None:
            self._walk = None
            return
        self._restore_selection(state)
        self._walk = self._make_walk()
        self._walk.load_state_dict(state["walk"])

    # -- for subclasses --------------------------------------------------------------------
    def _reselect(self, student: Predictor | None) -> dict[str, Any]:
        raise NotImplementedError

    def _make_walk(self) -> UniformSampler:
        raise NotImplementedError

    def _dataset_index(self, i: int) -> int:
        raise NotImplementedError

    def _selection_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore_selection(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
