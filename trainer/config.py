"""The run configuration's `learner:` section (`LearnerConfig`): the DeepSpeed ZeRO ranks and the
optimizer. A rank's `trainer.learner.LearnerSettings` is this section plus what the rank learns
from the rest of the run (its model, the step count, the sampling temperature, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LearnerConfig:
    """DeepSpeed ZeRO learner ranks and the optimizer."""

    num_ranks: int = 2
    zero_stage: int = 3
    precision: str = "fp32"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    weight_decay: float = 0.01
    warmup_steps: int = 0
    # "constant", or "cosine": decays from lr to min_lr_ratio * lr by trainer.steps, or by the
    # end of trainer.budget_s (wall-clock) when that comes first.
    schedule: str = "constant"
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    micro_batch_size: int = 8
    # Activation checkpointing (transformers' gradient_checkpointing_enable, non-reentrant):
    # recompute each layer in the backward instead of keeping its activations; ~1/3 more
    # learner compute for activation memory that no longer grows with depth (long videos).
    gradient_checkpointing: bool = False
    # Torch / OpenMP threads of each rank's process (and of its rollout engine with
    # rollout.colocate): ranks x threads should not exceed the cores the ranks get.
    threads: int = 1
    # Limit of every call to the ranks (start-up, step, export, checkpoints); on expiry the
    # driver restarts the group from the last checkpoint (trainer.max_recoveries).
    timeout_s: float = 600.0

    @property
    def inference_dtype(self) -> str:
        """The dtype of the run's inference engines (rollout, teacher, reference): bfloat16
        when the ranks train in bf16, else float32."""
        return "bfloat16" if self.precision == "bf16" else "float32"
