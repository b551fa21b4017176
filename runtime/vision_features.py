"""A frozen model's vision-encoder outputs, computed once per prompt (`FrozenVisionFeatures`).

A frozen model (the teacher) encodes the same video to the same features every time it sees it:
its vision tower's output depends on the patches and its own unchanging weights only. So for a
batch built from kept prompts (`runtime.processed_prompts`: each item carries its prompt's key)
the encoder runs only on the videos it has not seen, and the forward takes the rest as
precomputed encoder outputs (transformers' `mm_encoder_outputs`, which Qwen2.5-VL and Qwen3-VL
accept in place of `pixel_values_videos`: the pooled video embeddings per video and, for
Qwen3-VL, its deepstack features per level per video). The results equal a forward that encodes
the videos itself (tested). Never for a model that trains: its features change with every step.

Entries live on the model's device, least recently used first out beyond `max_bytes`. A batch
without prompt keys, with an item of no key, or with several videos in one item runs as it is.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Hashable
from typing import Any

import torch

from tvg.bytes_lru import BytesLRU

# Per process. The demo teacher's features take ~12 KB per video; a 2 B model's ~1-10 MB.
DEFAULT_MAX_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class VideoFeatures:
    """One video's encoder outputs: its pooled embeddings and its deepstack features per level
    (None for a model without them)."""

    pooled: torch.Tensor
    deepstack: tuple[torch.Tensor, ...] | None

    @property
    def nbytes(self) -> int:
        """Memory the entry takes."""
        tensors = [self.pooled, *(self.deepstack or ())]
        return sum(t.numel() * t.element_size() for t in tensors)


def _backbone(model: Any) -> Any:
    """The part of a transformers model that holds `get_video_features`."""
    inner = getattr(model, "model", model)
    if not callable(getattr(inner, "get_video_features", None)):
        raise TypeError(f"{type(model).__name__} has no get_video_features")
    return inner


class FrozenVisionFeatures:
    """Video encoder outputs of one frozen model, kept per prompt key (module docstring)."""

    def __init__(self, model: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """Keep at most `max_bytes` of `model`'s video features (0: keeps nothing)."""
        self.entries: BytesLRU[VideoFeatures] = BytesLRU(max_bytes, lambda e: e.nbytes)
        self.backbone = _backbone(model)
        self.hits = 0
        self.misses = 0
        self._output_class: type | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def inputs_for(
        self, inputs: dict[str, Any], keys: list[Hashable | None] | None
    ) -> dict[str, Any]:
        """`inputs` (one item per row, one video each, the prompts' `keys` in row order) with
        the videos as precomputed encoder outputs; unchanged when that cannot apply."""
        grid = inputs.get("video_grid_thw")
        if (
            keys is None
            or any(k is None for k in keys)
            or "pixel_values_videos" not in inputs
            or grid is None
            or len(grid) != len(keys)
        ):
            return inputs
        found = [self.entries.get(key) for key in keys]
        missing = [i for i, entry in enumerate(found) if entry is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            for i, entry in zip(missing, self._encode(inputs, missing), strict=True):
                found[i] = entry
                self.entries.put(keys[i], entry)
        out = {k: v for k, v in inputs.items() if k != "pixel_values_videos"}
        out["mm_encoder_outputs"] = {"video": self._outputs([e for e in found if e is not None])}
        return out

    def _encode(self, inputs: dict[str, Any], rows: list[int]) -> list[VideoFeatures]:
        """Run the vision encoder on the videos of `rows` (one video per row)."""
        grid = inputs["video_grid_thw"]
        counts = grid.prod(dim=1).tolist()
        starts = [0, *itertools.accumulate(counts)]
        device = next(self.backbone.visual.parameters()).device
        patches = torch.cat(
            [inputs["pixel_values_videos"][starts[i] : starts[i] + counts[i]] for i in rows]
        ).to(device)
        with torch.no_grad():
            output = self.backbone.get_video_features(
                patches, grid[rows].to(device), return_dict=True
            )
        self._output_class = type(output)
        deepstack = getattr(output, "deepstack_features", None)
        # Copies, not views of the batch's tensors: an entry holds only its own video.
        return [
            VideoFeatures(
                pooled=output.pooler_output[j].detach().clone(),
                deepstack=tuple(level[j].detach().clone() for level in deepstack)
                if deepstack
                else None,
            )
            for j in range(len(rows))
        ]

    def _outputs(self, entries: list[VideoFeatures]) -> Any:
        """The encoder outputs of `entries` in the form the model's forward takes."""
        assert self._output_class is not None
        fields = {"pooler_output": tuple(e.pooled for e in entries)}
        if entries[0].deepstack is not None:
            levels = len(entries[0].deepstack)
            fields["deepstack_features"] = [
                tuple(e.deepstack[level] for e in entries if e.deepstack is not None)
                for level in range(levels)
            ]
        return self._output_class(**fields)
