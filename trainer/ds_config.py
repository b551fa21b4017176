"""The DeepSpeed configuration a learner rank runs with, built from the learner settings."""

from __future__ import annotations

from typing import Any


def deepspeed_config(
    zero_stage: int, precision: str, grad_clip: float, micro_batch_size: int = 1
) -> dict[str, Any]:
    """DeepSpeed config dict: ZeRO stage 2 or 3, fp32 or bf16, gradient clipping.

    Gradient accumulation is owned by the learner (it marks the accumulation boundary itself),
    so DeepSpeed's own gradient_accumulation_steps stays 1.
    """
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0-3, got {zero_stage}")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": grad_clip,
        "zero_optimization": {"stage": zero_stage},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if zero_stage == 3:
        config["zero_optimization"].update(
            {
                "stage3_param_persistence_threshold": 0,
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    if precision == "bf16":
        config["bf16"] = {"enabled": True}
    return config
