"""Selection rules as pure functions of score arrays (no I/O, no models), deterministic by seed.

TVDF (Video-OPD; docs/OBJECTIVES.md §1 "TVDF", docs/CURRICULUM.md):
- teacher reliability: keep sample i when mean_j IoU_teacher(i, j) >= tau_T over its k predictions;
- disagreement: delta_i = IoU_teacher(i) - IoU_student(i) (teacher IoU = the mean over its k);
- prioritisation among the reliable samples: `top_k` (the paper's default: the `size` largest
  delta, descending), and the appendix's alternatives `uniform` (uniform-by-delta: every reliable
  sample equally likely, whatever its delta), `bucket` (B equal-width delta buckets, equal counts)
  and `gaussian` (weights exp(-(delta - c)^2 / (2 sigma^2)), c = 0.9, sigma = 0.2).
Difficulty sampling (TimeLens's GRPO recipe, docs/OBJECTIVES.md §2):
weight_i = N(IoU_student(i); 0.05, 0.2) divided by the
empirical density of the IoU's bin (20 equal bins on [0, 1]).

Random rules draw from `numpy.random.default_rng(seed)`; weighted draws without replacement use
Gumbel top-k (equivalent to drawing one by one with probability proportional to weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TVDF_RULES: tuple[str, ...] = ("top_k", "uniform", "bucket", "gaussian")


def teacher_reliable(teacher_ious: np.ndarray, tau: float) -> np.ndarray:
    """Boolean mask of samples whose mean teacher IoU over its k predictions is >= tau."""
    ious = np.asarray(teacher_ious, dtype=np.float64)
    if ious.ndim != 2 or ious.shape[1] < 1:
        raise ValueError(f"teacher_ious must have shape (n, k >= 1), got {ious.shape}")
    return ious.mean(axis=1) >= tau


def disagreement(teacher_iou: np.ndarray, student_iou: np.ndarray) -> np.ndarray:
    """delta = teacher IoU - student IoU, elementwise (teacher IoU: the mean of its predictions)."""
    teacher = np.asarray(teacher_iou, dtype=np.float64)
    student = np.asarray(student_iou, dtype=np.float64)
    if teacher.shape != student.shape:
        raise ValueError(f"teacher {teacher.shape} and student {student.shape} shapes differ")
    return teacher - student


def _take(candidates: np.ndarray, size: int) -> int:
    """How many to keep: `size` capped at the pool (size <= 0 keeps the whole pool)."""
    return len(candidates) if size <= 0 else min(size, len(candidates))


def select_top_k(delta: np.ndarray, candidates: np.ndarray, size: int) -> np.ndarray:
    """The `size` candidates with the largest delta, in descending delta (ties: lower index)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    order = np.lexsort((candidates, -np.asarray(delta)[candidates]))
    return candidates[order][: _take(candidates, size)]


def select_uniform(candidates: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Uniform-by-delta: `size` candidates drawn uniformly without replacement (delta ignored)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return rng.permutation(candidates)[: _take(candidates, size)]


def weighted_without_replacement(
    log_weights: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Positions of `size` items drawn without replacement with probability proportional to
    exp(log_weights), by Gumbel top-k; items of weight 0 (log -inf) come last."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    order = np.lexsort((np.arange(len(keys)), -keys))
    return order[:size]


def select_gaussian(
    delta: np.ndarray, candidates: np.ndarray, size: int, seed: int, center: float, sigma: float
) -> np.ndarray:
    """`size` candidates drawn without replacement with weight exp(-(delta - c)^2 / (2 sigma^2))."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    candidates = np.asarray(candidates, dtype=np.int64)
    d = np.asarray(delta, dtype=np.float64)[candidates]
    log_w = -((d - center) ** 2) / (2.0 * sigma**2)
    picked = weighted_without_replacement(
        log_w, _take(candidates, size), np.random.default_rng(seed)
    )
    return candidates[picked]


def bucket_of(values: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket ids 0..B-1 of equal-width buckets spanning [min(values), max(values)]."""
    values = np.asarray(values, dtype=np.float64)
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.int64)
    ids = np.floor((values - lo) / (hi - lo) * buckets).astype(np.int64)
    return np.clip(ids, 0, buckets - 1)


def balanced_quotas(capacities: list[int], total: int) -> list[int]:
    """Split `total` as evenly as possible over buckets of the given capacities (water-filling:
    what a full bucket cannot take goes to the others); the last units that cannot be split
    evenly go one each to the highest buckets (largest delta) first."""
    quotas = [0] * len(capacities)
    remaining = min(total, sum(capacities))
    while remaining > 0:
        open_ = [b for b in reversed(range(len(capacities))) if quotas[b] < capacities[b]]
        share = remaining // len(open_)
        if share == 0:
            for b in open_[:remaining]:
                quotas[b] += 1
            break
        for b in open_:
            give = min(capacities[b] - quotas[b], share)
            quotas[b] += give
            remaining -= give
    return quotas


def select_bucket_balanced(
    delta: np.ndarray, candidates: np.ndarray, size: int, seed: int, buckets: int = 5
) -> np.ndarray:
    """Equal counts from B equal-width delta buckets over the candidates' delta range, drawn
    uniformly within each bucket; a bucket too small to fill its share passes it on."""
    candidates = np.asarray(candidates, dtype=np.int64)
    ids = bucket_of(np.asarray(delta)[candidates], buckets)
    members = [candidates[ids == b] for b in range(buckets)]
    quotas = balanced_quotas([len(m) for m in members], _take(candidates, size))
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(m)[:q] for m, q in zip(members, quotas, strict=True)]
    return np.concatenate(picked[::-1]) if picked else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class TVDFRule:
    """How TVDF selects: the rule, the subset size (<= 0: every reliable sample), tau_T, and the
    rules' parameters (B buckets; Gaussian centre c and width sigma)."""

    rule: str = "top_k"
    size: int = 2500
    tau: float = 0.5
    buckets: int = 5
    center: float = 0.9
    sigma: float = 0.2

    def __post_init__(self) -> None:
        """Reject unknown rules and impossible parameters."""
        if self.rule not in TVDF_RULES:
            raise ValueError(f"TVDF rule must be one of {TVDF_RULES}, got {self.rule!r}")
        if self.buckets < 1 or self.sigma <= 0:
            raise ValueError("TVDF buckets must be >= 1 and sigma > 0")


@dataclass(frozen=True)
class Selection:
    """The outcome of a TVDF selection: selected dataset indices (in the rule's order: descending
    delta for top_k), the reliability mask and the per-sample delta."""

    indices: np.ndarray
    reliable: np.ndarray
    delta: np.ndarray


def select_tvdf(
    teacher_ious: np.ndarray, student_ious: np.ndarray, rule: TVDFRule, seed: int
) -> Selection:
    """TVDF: drop samples the teacher is unreliable on (mean IoU < tau), then pick `rule.size`
    of the rest by disagreement with the configured rule."""
    reliable = teacher_reliable(teacher_ious, rule.tau)
    delta = disagreement(np.asarray(teacher_ious, dtype=np.float64).mean(axis=1), student_ious)
    pool = np.flatnonzero(reliable)
    if rule.rule == "top_k":
        chosen = select_top_k(delta, pool, rule.size)
    elif rule.rule == "uniform":
        chosen = select_uniform(pool, rule.size, seed)
    elif rule.rule == "bucket":
        chosen = select_bucket_balanced(delta, pool, rule.size, seed, rule.buckets)
    else:
        chosen = select_gaussian(delta, pool, rule.size, seed, rule.center, rule.sigma)
    return Selection(indices=np.asarray(chosen, dtype=np.int64), reliable=reliable, delta=delta)


def iou_bins(ious: np.ndarray, bins: int) -> np.ndarray:
    """Bin ids 0..bins-1 of equal bins on [0, 1] (IoU 1.0 falls in the last bin)."""
    values = np.clip(np.asarray(ious, dtype=np.float64), 0.0, 1.0)
    return np.clip(np.floor(values * bins).astype(np.int64), 0, bins - 1)


def difficulty_weights(
    student_ious: np.ndarray, mean: float = 0.05, sigma: float = 0.2, bins: int = 20
) -> np.ndarray:
    """TimeLens difficulty sampling probabilities: exp(-(iou - mean)^2 / (2 sigma^2)) divided by
    the empirical density (fraction of samples) of the iou's bin among `bins` equal bins on
    [0, 1], normalised to sum to 1."""
    if sigma <= 0 or bins < 1:
        raise ValueError("difficulty sigma must be > 0 and bins >= 1")
    ious = np.asarray(student_ious, dtype=np.float64)
    if ious.ndim != 1 or ious.size == 0:
        raise ValueError(f"student_ious must be a non-empty vector, got shape {ious.shape}")
    ids = iou_bins(ious, bins)
    density = np.bincount(ids, minlength=bins) / ious.size
    gauss = np.exp(-((ious - mean) ** 2) / (2.0 * sigma**2))
    weights = gauss / density[ids]
    return weights / weights.sum()
