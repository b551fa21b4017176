"""Make transformers compute exactly what vLLM computes for the model families we run.

Qwen2.5-VL video positions: after a video, the reference implementation (Qwen's own code, and
vLLM) resumes text positions at `max(all 3 M-RoPE ids of the video) + 1`. transformers 5.x resumes
them at `start + max(h, w) / merge`, which ignores the video's temporal extent. The two then give
different log-probabilities for every token after a video (3e-3 nats on a tiny model), so the
learner (transformers) would not be scoring what the sampler (vLLM) sampled. `apply_hf_patches()`
switches transformers to the reference rule; it is idempotent and called by every place that loads
a transformers model (`load_hf_model`). It also installs two speed-ups with identical values, not
parity fixes: `runtime.vision_attention` and `runtime.mrope_index` (Qwen3-VL's position ids).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

_PATCHED = False


def _qwen2_5_vl_rope_index(
    self,
    input_ids: torch.LongTensor,
    mm_token_type_ids: torch.IntTensor,
    image_grid_thw: torch.LongTensor | None = None,
    video_grid_thw: torch.LongTensor | None = None,
    second_per_grid_ts: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen2.5-VL 3-D RoPE ids with the reference rule: text resumes at max(previous ids) + 1."""
    spatial_merge_size = self.config.vision_config.spatial_merge_size
    tokens_per_second = self.config.vision_config.tokens_per_second
    position_ids = torch.zeros(
        3, input_ids.shape[0], input_ids.shape[1], dtype=input_ids.dtype, device=input_ids.device
    )
    grid_iters = {
        1: iter(image_grid_thw) if image_grid_thw is not None else None,
        2: iter(video_grid_thw) if video_grid_thw is not None else None,
    }
    seconds = iter(second_per_grid_ts) if second_per_grid_ts is not None else itertools.repeat(1)
    deltas = []
    for batch_idx, row in enumerate(input_ids):
        types = mm_token_type_ids[batch_idx]
        if attention_mask is not None:
            keep = attention_mask[batch_idx].bool()
            row, types = row[keep], types[keep]
        pieces: list[torch.Tensor] = []
        current = 0
        for modality, group in itertools.groupby(enumerate(types.tolist()), lambda x: x[1]):
            group = list(group)
            length = group[-1][0] + 1 - group[0][0]
            if modality == 0:
                pieces.append(
                    torch.arange(length, device=input_ids.device).view(1, -1).expand(3, -1)
                    + current
                )
                current += length
            else:
                grid_thw = next(grid_iters[modality])
                interval = tokens_per_second * next(seconds) if modality == 2 else 1
                ids = self.get_vision_position_ids(
                    current, grid_thw, 1, spatial_merge_size, interval, device=input_ids.device
                )
                pieces.append(ids)
                current = int(ids.max()) + 1
        positions = torch.cat(pieces, dim=1).reshape(3, -1)
        if attention_mask is not None:
            position_ids[:, batch_idx, attention_mask[batch_idx].bool()] = positions
        else:
            position_ids[:, batch_idx] = positions
        deltas.append(positions.max() + 1 - len(row))
    return position_ids, torch.tensor(deltas, device=input_ids.device).unsqueeze(1)


def apply_hf_patches() -> None:
    """Patch transformers so that its Qwen2.5-VL positions equal the reference (and vLLM's), and
    its Qwen-VL vision attention runs one kernel call per run of equal frames, not per frame
    (`runtime.vision_attention`: the same values, far fewer calls), and its Qwen3-VL position ids
    come from array operations, not a loop per frame (`runtime.mrope_index`: the same ids)."""
    global _PATCHED
    if _PATCHED:
        return
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen2_5_vl

    from runtime import mrope_index, vision_attention

    qwen2_5_vl.Qwen2_5_VLModel.get_rope_index = _qwen2_5_vl_rope_index
    vision_attention.install()
    mrope_index.install()
    _PATCHED = True


def inference_device() -> torch.device:
    """Where a frozen scoring model (a transformers teacher, a co-located teacher) runs: the
    process's CUDA device when it has one (a Ray actor with num_gpus sees its own), else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def load_hf_model(
    model_dir: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | None = None
):
    """Load a vision-language model with transformers, with the parity patches applied, on
    `device` (None: left on the CPU, e.g. for DeepSpeed to place)."""
    from transformers import AutoModelForImageTextToText

    apply_hf_patches()
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype)
    return model if device is None else model.to(device)
