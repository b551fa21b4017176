"""The interface every sampler implements: which training samples the next step sees."""

from __future__ import annotations

from typing import Any, Protocol


class Sampler(Protocol):
    """Chooses sample indices step by step; its state makes a resumed run continue exactly."""

    def next_indices(self, count: int) -> list[int]:
        """The dataset indices of the next `count` prompts."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same sequence after a restart."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a state returned by `state_dict`."""
        ...
