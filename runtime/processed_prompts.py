"""What the model's processor makes of one prompt, computed once per process (`PromptCache`).

Every transformers-side consumer runs the processor over the same prompts again and again: the
learner on each micro-batch, the transformers engine before each `generate`, the teacher's
transformers backend on each scoring call; in the colocated layout the rank's engine and its
learner even process the same prompts within one step. The processor's work on a prompt (chat
text with the video placeholders expanded, and the video's patches resized and normalised) does
not depend on the weights or on the rest of the batch (one call over a batch gives each prompt
the same ids and pixel values as a call of its own: tested), so it is kept per prompt.

- Key: the tokenizer's name, the prompt's chat text and the frame cache's key of its video (the
  file's path, modification time, size and the decoding settings), so an edited video is a new
  entry. Only vision inputs from a `FrameCache` are kept (the cache stamps its key on them:
  `VisionInputs.cache_key`); inputs built another way are processed every time.
- Entries hold the expanded prompt ids, the multimodal token types, and the video tensors (patch
  values, grid, seconds per grid when the processor returns them), on the CPU; least recently
  used entries go first beyond `max_bytes`.
- `right_padded` and `left_padded` assemble a batch from entries exactly as the processor's own
  batch call would (tested): right padding with completions appended for scoring, left padding
  for `generate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tvg.bytes_lru import BytesLRU
from tvg.vision_inputs import VisionInputs

# Per process. The demo's prompts take ~0.26 MB each (24 frames of 32 x 32), so its 2,000
# training prompts fit in ~0.5 GB.
DEFAULT_MAX_BYTES = 1 << 30
# The processor outputs a cached prompt may hold; any other key makes a batch uncacheable.
PROMPT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")
VIDEO_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


@dataclass(frozen=True)
class ProcessedPrompt:
    """One prompt as the processor made it: expanded ids, token types, its videos' tensors."""

    input_ids: list[int]
    token_types: list[int] | None
    video: dict[str, torch.Tensor]
    # The prompt's key in a `PromptCache` (None: not kept), for caches keyed by prompt.
    key: tuple[str, str, str] | None = None

    @property
    def nbytes(self) -> int:
        """Memory the entry takes, roughly (ids at 8 bytes each, tensors exactly)."""
        ids = 8 * len(self.input_ids) * (2 if self.token_types is not None else 1)
        return ids + sum(t.numel() * t.element_size() for t in self.video.values())


def process_prompts(
    processor: Any, texts: Sequence[str], visions: Sequence[VisionInputs]
) -> list[ProcessedPrompt]:
    """One processor call over `texts` with one video each, split into one entry per prompt."""
    kwargs = [v.hf_processor_kwargs() for v in visions]
    per_video = ("videos", "video_metadata")
    options = [{k: v for k, v in kw.items() if k not in per_video} for kw in kwargs]
    if any(o != options[0] for o in options[1:]):
        raise ValueError("process_prompts: prompts need the same processor options in one call")
    encoded = processor(
        text=list(texts),
        videos=[f for kw in kwargs for f in kw["videos"]],
        video_metadata=[m for kw in kwargs for m in kw["video_metadata"]],
        **options[0],
    )
    unknown = set(encoded.keys()) - set(PROMPT_KEYS) - set(VIDEO_KEYS)
    if unknown:
        raise ValueError(f"process_prompts: the processor returned {sorted(unknown)}, not kept")
    grid = torch.as_tensor(encoded["video_grid_thw"])
    patches = torch.as_tensor(encoded["pixel_values_videos"])
    patches_per_video = grid.prod(dim=1).tolist()
    seconds = encoded.get("second_per_grid_ts")
    out: list[ProcessedPrompt] = []
    row = 0
    video = 0
    for i, kw in enumerate(kwargs):
        count = len(kw["videos"])
        rows = sum(patches_per_video[video : video + count])
        tensors = {
            "pixel_values_videos": patches[row : row + rows].clone(),
            "video_grid_thw": grid[video : video + count].clone(),
        }
        if seconds is not None:
            tensors["second_per_grid_ts"] = (
                torch.as_tensor(seconds).reshape(-1)[video : video + count].clone()
            )
        types = encoded.get("mm_token_type_ids")
        out.append(
            ProcessedPrompt(
                input_ids=[int(t) for t in encoded["input_ids"][i]],
                token_types=[int(t) for t in types[i]] if types is not None else None,
                video=tensors,
            )
        )
        row += rows
        video += count
    return out


def _video_inputs(entries: Sequence[ProcessedPrompt]) -> dict[str, torch.Tensor]:
    """The batch's video tensors: each entry's, in order (as the processor concatenates them)."""
    keys = [k for k in VIDEO_KEYS if k in entries[0].video]
    return {k: torch.cat([e.video[k] for e in entries]) for k in keys}


def _stack(
    rows: Sequence[Sequence[int]], width: int, fill: int, dtype: torch.dtype, left: bool
) -> torch.Tensor:
    """Rows of unequal length in one (len(rows), width) tensor, padded with `fill` on the left
    or on the right."""
    out = torch.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        if row:
            span = slice(width - len(row), width) if left else slice(0, len(row))
            out[i, span] = torch.tensor(row, dtype=dtype)
    return out


def _padded(
    entries: Sequence[ProcessedPrompt],
    rows: list[list[int]],
    pad_id: int,
    left: bool,
    types_dtype: torch.dtype,
) -> dict[str, torch.Tensor]:
    """Model inputs of `rows` (the entries' ids, maybe with more appended), padded on one side,
    with the entries' token types (0 past the prompt) and video tensors."""
    width = max(len(r) for r in rows)
    inputs = {
        "input_ids": _stack(rows, width, pad_id, torch.long, left),
        "attention_mask": _stack([[1] * len(r) for r in rows], width, 0, torch.long, left),
        **_video_inputs(entries),
    }
    if entries[0].token_types is not None:
        # Types cover the prompt (left padding: the whole row); 0 past it.
        types = [e.token_types or [] for e in entries]
        inputs["mm_token_type_ids"] = _stack(types, width, 0, types_dtype, left)
    return inputs


def right_padded(
    entries: Sequence[ProcessedPrompt], completions: Sequence[Sequence[int]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Scoring inputs: prompt + completion ids per row, right-padded, with the video tensors."""
    rows = [e.input_ids + [int(t) for t in c] for e, c in zip(entries, completions, strict=True)]
    return _padded(entries, rows, pad_id, left=False, types_dtype=torch.int32)


def left_padded(entries: Sequence[ProcessedPrompt], pad_id: int) -> dict[str, torch.Tensor]:
    """Generation inputs: the prompts left-padded (the processor's `padding=True` with a
    left-padding tokenizer, as tensors), with the video tensors."""
    rows = [list(e.input_ids) for e in entries]
    return _padded(entries, rows, pad_id, left=True, types_dtype=torch.long)


def prompt_key(processor: Any, text: str, vision: VisionInputs) -> tuple[str, str, str] | None:
    """The cache key of a prompt, or None when its vision inputs did not come from a
    `FrameCache` (module docstring)."""
    if vision.cache_key is None:
        return None
    return (str(getattr(processor.tokenizer, "name_or_path", "")), text, vision.cache_key)


@dataclass
class CacheCounts:
    """Hits and misses of a `PromptCache` since it was made."""

    hits: int = 0
    misses: int = 0


class PromptCache:
    """Processed prompts of one process, least recently used first out (module docstring)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """An empty cache holding at most `max_bytes` of entries (0: keeps nothing)."""
        self.entries: BytesLRU[ProcessedPrompt] = BytesLRU(max_bytes, lambda e: e.nbytes)
        self.counts = CacheCounts()

    @property
    def nbytes(self) -> int:
        """Memory the entries take now."""
        return self.entries.nbytes

    def __len__(self) -> int:
        return len(self.entries)

    def get(
        self, processor: Any, texts: Sequence[str], visions: Sequence[VisionInputs]
    ) -> list[ProcessedPrompt]:
        """The processed prompts for `texts` / `visions` (one video each): kept entries as they
        are, the rest from one processor call over them, then kept."""
        keys = [prompt_key(processor, t, v) for t, v in zip(texts, visions, strict=True)]
        out = [self.entries.get(key) if key is not None else None for key in keys]
        missing = [i for i, entry in enumerate(out) if entry is None]
        self.counts.hits += len(keys) - len(missing)
        self.counts.misses += len(missing)
        if missing:
            made = process_prompts(
                processor, [texts[i] for i in missing], [visions[i] for i in missing]
            )
            for i, entry in zip(missing, made, strict=True):
                key = keys[i]
                if key is not None:
                    entry = dataclasses.replace(entry, key=key)
                    self.entries.put(key, entry)
                out[i] = entry
        return [entry for entry in out if entry is not None]
