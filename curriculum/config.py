"""The run configuration's `curriculum:` section (`CurriculumConfig`): which training samples
each step sees and when the student is re-scored (docs/CURRICULUM.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CurriculumConfig:
    """Which training samples each step sees (docs/CURRICULUM.md): uniform, TVDF (Video-OPD's
    teacher-validated disagreement focusing) or TimeLens-style difficulty sampling, and when the
    student is re-scored. Defaults marked (*) were not published; they are this project's choice."""

    kind: str = "uniform"  # uniform | tvdf | difficulty
    # TVDF: keep samples with mean teacher IoU >= tau_teacher over teacher_k predictions, then
    # subset_size of them by delta = teacher IoU - student IoU with `rule`.
    rule: str = "top_k"  # top_k | uniform | bucket | gaussian
    subset_size: int = 2500  # the paper kept 2.5K; <= 0 keeps every reliable sample
    tau_teacher: float = 0.5  # (*)
    teacher_k: int = 4  # (*) predictions per sample; 1 = greedy
    teacher_temperature: float = 1.0  # (*) used when teacher_k > 1
    buckets: int = 5
    gaussian_center: float = 0.9
    gaussian_sigma: float = 0.2
    # Difficulty sampling (GRPO): Gaussian over the student's IoU / IoU density in bins.
    difficulty_mean: float = 0.05
    difficulty_sigma: float = 0.2
    difficulty_bins: int = 20
    # Offline predictions (student: greedy, one per sample).
    max_new_tokens: int = 32  # (*)
    batch_size: int = 64
    num_workers: int = 1
    prediction_seed: int = 0
    cache_dir: str = "artifacts/curriculum_cache"
    # Refresh: none | rounds (re-score after each pass over the selection) | online (every K).
    refresh: str = "none"
    refresh_every: int = 0
