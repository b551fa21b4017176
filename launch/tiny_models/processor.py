"""The HF processor (tokenizer + image and video processors) for each tiny model family."""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast, ProcessorMixin

from launch.tiny_models.tokenizer import CHAT_TEMPLATE

# Resize budgets of the saved processors. Frames arrive already resized by the task layer's video
# decoder to multiples of patch x merge within its pixel budget, so the processor only checks that
# the total fits and never upsamples small synthetic frames (its stock minimum would).
_MAX_VIDEO_PIXELS = 32 * 32 * 2 * 8192


def build_processor(family: str, tokenizer: PreTrainedTokenizerFast) -> ProcessorMixin:
    """Return the processor of a model family ("qwen3_vl" or "qwen2_5_vl") around the tokenizer."""
    if family == "qwen3_vl":
        from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

        factor = 16 * 2
        image_processor = Qwen2VLImageProcessor(
            patch_size=16,
            merge_size=2,
            temporal_patch_size=2,
            size={"shortest_edge": factor * factor, "longest_edge": factor * factor * 1024},
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        )
        video_processor = Qwen3VLVideoProcessor(
            patch_size=16,
            merge_size=2,
            temporal_patch_size=2,
            size={"shortest_edge": factor * factor * 2, "longest_edge": _MAX_VIDEO_PIXELS},
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
            do_sample_frames=False,
            cap_pixels_per_frame=False,
        )
        return Qwen3VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=CHAT_TEMPLATE,
        )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        factor = 14 * 2
        image_processor = Qwen2VLImageProcessor(
            patch_size=14,
            merge_size=2,
            temporal_patch_size=2,
            size={"shortest_edge": factor * factor, "longest_edge": factor * factor * 1024},
        )
        video_processor = Qwen2VLVideoProcessor(
            patch_size=14,
            merge_size=2,
            temporal_patch_size=2,
            size={"shortest_edge": factor * factor, "longest_edge": _MAX_VIDEO_PIXELS},
            do_sample_frames=False,
        )
        return Qwen2_5_VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=CHAT_TEMPLATE,
        )
    raise ValueError(f"unknown model family {family!r}; expected one of qwen3_vl, qwen2_5_vl")
