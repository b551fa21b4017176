"""Size presets and per-family config builders for the tiny vision-language models.

Sizes follow what learned on 2 CPU cores (see docs/ARCHITECTURE.md and SYNTHETIC reference):
`teacher` = text hidden 128 x 2 layers with a 2-block vision tower of hidden 64 (~0.9 M parameters),
`student` = text hidden 96 x 2 layers with a 1-block vision tower (~0.6 M). `small` is a larger
teacher for GPUs. These tiny sizes use head_dim 32, a head size the vLLM CPU attention supports.

The `ladder_*` sizes are the model ladder of benchmarks/model_ladder.py (BENCHMARKS.md, "Model
ladder"), meant for `--vocab-size 151936` (Qwen's embedding rows). Their names count the
NON-EMBEDDING parameters (text transformer + vision tower, without the input embedding and the
LM head); with 151,936 rows the embedding and LM head dominate the small rungs' totals:

    size          text (hidden x layers, heads / KV heads, MLP)   vision tower   non-emb    total
    ladder_10m    256 x 9, 4 / 2, 1024                            128 x 2        10.2 M    88.0 M
    ladder_30m    384 x 12, 6 / 2, 1536                           128 x 2        27.5 M   144.2 M
    ladder_100m   640 x 16, 10 / 2, 2560                          256 x 4       101.4 M   295.9 M
    ladder_0_5b   896 x 24, 14 / 2, 4864 (Qwen2.5-0.5B's text)    512 x 4       383.4 M   655.6 M

(`launch.tiny_models.build.count_parameters` of the 151,936-row builds; the embedding and the
untied LM head are 2 x 151,936 x hidden of the total). `ladder_30m` is the 10 M rung's teacher.
Every ladder size uses head_dim 64 (Qwen2.5-0.5B's, which the vLLM CPU attention supports) and
vision heads of 64. The vision tower's size is part of the non-embedding count.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES: tuple[str, ...] = ("qwen3_vl", "qwen2_5_vl")


@dataclass(frozen=True)
class TinySize:
    """Widths and depths of one tiny model size."""

    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_intermediate: int
    vision_hidden: int
    vision_depth: int
    vision_heads: int
    vision_intermediate: int
    head_dim: int = 32


SIZES: dict[str, TinySize] = {
    "student": TinySize(96, 2, 3, 1, 384, 64, 1, 2, 256),
    "teacher": TinySize(128, 2, 4, 2, 512, 64, 2, 2, 256),
    "small": TinySize(256, 4, 8, 4, 1024, 128, 2, 4, 512),
    # The model ladder (module docstring): Qwen3-VL-shaped, head_dim 64.
    "ladder_10m": TinySize(256, 9, 4, 2, 1024, 128, 2, 2, 512, head_dim=64),
    "ladder_30m": TinySize(384, 12, 6, 2, 1536, 128, 2, 2, 512, head_dim=64),
    "ladder_100m": TinySize(640, 16, 10, 2, 2560, 256, 4, 4, 1024, head_dim=64),
    "ladder_0_5b": TinySize(896, 24, 14, 2, 4864, 512, 4, 8, 2048, head_dim=64),
}

# The sizes of the model ladder, smallest first (benchmarks/model_ladder.py).
LADDER_SIZES: tuple[str, ...] = ("ladder_10m", "ladder_30m", "ladder_100m", "ladder_0_5b")


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim / 2 rotary frequencies into (time, height, width) sections like Qwen's."""
    half = head_dim // 2
    t = half - 2 * (half * 5 // 16)
    return [t, half * 5 // 16, half * 5 // 16]


def qwen3_vl_config(size: TinySize, token_ids: dict[str, int], vocab_size: int) -> dict:
    """Return a Qwen3-VL config dict (text + vision) for a tiny size and the shared tokenizer."""
    return {
        "model_type": "qwen3_vl",
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "text_config": {
            "model_type": "qwen3_vl_text",
            "vocab_size": vocab_size,
            "hidden_size": size.text_hidden,
            "intermediate_size": size.text_intermediate,
            "num_hidden_layers": size.text_layers,
            "num_attention_heads": size.text_heads,
            "num_key_value_heads": size.text_kv_heads,
            "head_dim": size.head_dim,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": _mrope_section(size.head_dim),
                "mrope_interleaved": True,
            },
            "bos_token_id": token_ids["bos"],
            "eos_token_id": token_ids["eos"],
            "pad_token_id": token_ids["pad"],
            "tie_word_embeddings": False,
        },
        "vision_config": {
            "model_type": "qwen3_vl_vision",
            "depth": size.vision_depth,
            "hidden_size": size.vision_hidden,
            "intermediate_size": size.vision_intermediate,
            "num_heads": size.vision_heads,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": size.text_hidden,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        },
        "image_token_id": token_ids["image"],
        "video_token_id": token_ids["video"],
        "vision_start_token_id": token_ids["vision_start"],
        "vision_end_token_id": token_ids["vision_end"],
        "tie_word_embeddings": False,
    }


def qwen2_5_vl_config(size: TinySize, token_ids: dict[str, int], vocab_size: int) -> dict:
    """Return a Qwen2.5-VL config dict (text + vision) for a tiny size and the shared tokenizer."""
    return {
        "model_type": "qwen2_5_vl",
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "text_config": {
            "model_type": "qwen2_5_vl_text",
            "vocab_size": vocab_size,
            "hidden_size": size.text_hidden,
            "intermediate_size": size.text_intermediate,
            "num_hidden_layers": size.text_layers,
            "num_attention_heads": size.text_heads,
            "num_key_value_heads": size.text_kv_heads,
            "max_position_embeddings": 32768,
            "max_window_layers": size.text_layers,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": _mrope_section(size.head_dim),
            },
            "bos_token_id": token_ids["bos"],
            "eos_token_id": token_ids["eos"],
            "pad_token_id": token_ids["pad"],
            "tie_word_embeddings": False,
        },
        "vision_config": {
            "model_type": "qwen2_5_vl",
            "depth": size.vision_depth,
            "hidden_size": size.vision_hidden,
            "intermediate_size": size.vision_intermediate,
            "num_heads": size.vision_heads,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 56,
            "out_hidden_size": size.text_hidden,
            "fullatt_block_indexes": list(range(size.vision_depth)),
        },
        "image_token_id": token_ids["image"],
        "video_token_id": token_ids["video"],
        "vision_start_token_id": token_ids["vision_start"],
        "vision_end_token_id": token_ids["vision_end"],
        "tie_word_embeddings": False,
    }
