"""On-policy distillation (OPD) objectives: the paper's sampled-token form and its variants.

Notation (docs/OBJECTIVES.md §1): y_t the t-th token the student sampled, s_t = (x, y_<t),
pi_theta the student being trained, pi_old the student that sampled (the rollout engine's weights),
pi_T the teacher; all log-probs after the same temperature, vision placeholder tokens masked out.

Which is which:

- `opd_loss` is **the paper's sampled-token form** (Video-OPD, Li et al. 2026; the "importance
  sampling" loss with advantages = -reverse KL of Thinking Machines' on-policy distillation recipe,
  Oct 2025). It needs only the teacher's log-prob of each sampled token.
- `opd_full_rkl_loss` is **the exact reverse KL** at each student-visited position, over the whole
  vocabulary (GKD with beta = 1 on student samples, Agarwal et al. 2024); `opd_union_topk_rkl_loss`
  approximates it over the union of the student's and the teacher's top-k. The prototype
  (docs/GENERATED_DATA.md) measured the exact form 2-4x faster to a target and far more stable
  than the sampled-token form on this project's synthetic task (gradient-norm median 0.83 / max
  5.0 against 2.2 / 55): both are offered, and measurements, not this module, pick the default.
- `opd_topk_fkl_loss`, `opd_topk_rkl_loss`: forward / reverse KL on the teacher's top-k support.
- `opd_k1_loss`, `opd_k3_loss`: the k1 / k3 estimators of reverse KL on the sampled token used as
  direct losses (not as an advantage).

Every loss returns a `LossOutput`; per-position values are reduced by `aggregate` (default
"seq_mean_token_sum": the published sum over a completion's tokens, averaged over completions
exactly as the released run's micro-batch of one and gradient accumulation did). This module
imports only torch.
"""

from __future__ import annotations

import torch

from trainer.objectives._common import (
    LossOutput,
    aggregate,
    check_logprob_rows,
    check_shape,
    masked_mean,
    validate_token_tensors,
    zero_pad,
)

DEFAULT_OPD_AGGREGATION = "seq_mean_token_sum"


def discounted_future_sum(
    rewards: torch.Tensor, mask: torch.Tensor, discount: float = 0.0
) -> torch.Tensor:
    """Discounted sum of future per-token rewards, per sequence:

        R_t = sum_{s >= t} discount^(s - t) * r_s        (positions outside `mask` count as r = 0)

    discount = 0 returns the rewards unchanged (the Video-OPD setting and Thinking Machines'
    kl_discount_factor default). Source: Thinking Machines' on-policy distillation recipe
    (kl_discount_factor); docs/OBJECTIVES.md §1. Shapes (B, T); the result carries no gradient.
    """
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount!r}")
    check_shape("rewards", rewards, mask.shape)
    rewards = zero_pad(rewards.detach(), mask.bool())
    if discount == 0.0:
        return rewards
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + discount * running
        out[:, t] = running
    return zero_pad(out, mask.bool())


OPD_BASELINES = ("none", "batch_mean")


def opd_token_rewards(
    old_logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float = 1.0,
    discount: float = 0.0,
) -> torch.Tensor:
    """Video-OPD's per-token reward, held constant (detached):

        r_t = -kl_coef * ( log pi_old(y_t|s_t) - log pi_T(y_t|s_t) )

    then, when discount > 0, replaced by its discounted future sum (`discounted_future_sum`).
    kl_coef = 1 and discount = 0 are the paper's setting and Thinking Machines' defaults
    (kl_penalty_coef, kl_discount_factor). Source: docs/OBJECTIVES.md §1. Shapes (B, T).
    """
    bool_mask = validate_token_tensors(
        mask, old_logprobs=old_logprobs, teacher_logprobs=teacher_logprobs
    )
    rewards = -kl_coef * (old_logprobs.detach() - teacher_logprobs.detach())
    return discounted_future_sum(zero_pad(rewards, bool_mask), bool_mask, discount)


def opd_loss(
    logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    old_logprobs: torch.Tensor | None = None,
    *,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
    discount: float = 0.0,
    reward_clip: float | None = None,
    baseline: str = "none",
) -> LossOutput:
    """The paper's sampled-token OPD loss (Video-OPD, Li et al. 2026; docs/OBJECTIVES.md §1):

        r_t = -kl_coef * ( log pi_old(y_t|s_t) - log pi_T(y_t|s_t) )        (no gradient)
        L   = - sum_t  r_t * exp( log pi_theta(y_t|s_t) - log pi_old(y_t|s_t) )

    an importance-sampling policy gradient with no clipping, no KL to a reference and no group
    normalisation. With pi_old = pi_theta its expected gradient is the gradient of the per-token
    reverse KL, KL(pi_theta || pi_T) (tests/trainer/test_opd.py enumerates a tiny vocabulary).

    Args:
        logprobs: (B, T) log pi_theta of the sampled tokens, with gradient.
        teacher_logprobs: (B, T) log pi_T of the same tokens.
        mask: (B, T) 1 on trained completion tokens.
        old_logprobs: (B, T) behaviour log-probs (Trajectory.logprobs, or recomputed on the
            learner); None means pi_old = pi_theta (logprobs.detach(), ratio exactly 1).
        aggregation: see `aggregate`; default "seq_mean_token_sum" = the published sum over a
            completion's tokens (averaged over completions, as the released run's gradient
            accumulation over micro-batches of one did). "token_mean" / "seq_mean" / "sum" too.
        kl_coef: scale of the reward (Thinking Machines' kl_penalty_coef, default 1.0).
        discount: discount of the future per-token rewards (0 = the paper).
        reward_clip: clamp each r_t to [-reward_clip, reward_clip] (None = the paper: no clamp).
            A teacher that is near-certain gives a student token it rejects r_t of -10 to -20;
            a handful of such tokens then set the whole step's direction.
        baseline: "none" (the paper) or "batch_mean": subtract the step's mean r_t over its
            trained tokens (a constant baseline: the expected gradient is unchanged, as
            E[grad log pi_theta(y_t)] = 0 at every position; the variance drops).
        Both are variance remedies of this project, not published for OPD.

    Metrics: "reverse_kl" (mean sampled-token estimate log pi_old - log pi_T), "reward",
    "ratio" (mean importance ratio), "tokens".
    """
    if old_logprobs is None:
        old_logprobs = logprobs.detach()
    bool_mask = validate_token_tensors(
        mask, logprobs=logprobs, teacher_logprobs=teacher_logprobs, old_logprobs=old_logprobs
    )
    if baseline not in OPD_BASELINES:
        raise ValueError(f"unknown OPD baseline {baseline!r}; known: {', '.join(OPD_BASELINES)}")
    if reward_clip is not None and not reward_clip > 0:
        raise ValueError(f"reward_clip must be > 0 (or None), got {reward_clip!r}")
    rewards = opd_token_rewards(old_logprobs, teacher_logprobs, bool_mask, kl_coef, discount)
    if reward_clip is not None:
        rewards = zero_pad(rewards.clamp(-reward_clip, reward_clip), bool_mask)
    if baseline == "batch_mean":
        rewards = zero_pad(rewards - masked_mean(rewards, bool_mask), bool_mask)
    log_ratio = zero_pad(logprobs - old_logprobs.detach(), bool_mask)
    ratio = torch.exp(log_ratio)
    per_token = -rewards * ratio
    loss = aggregate(per_token, bool_mask, aggregation)
    metrics = {
        "reverse_kl": masked_mean(old_logprobs - teacher_logprobs, bool_mask),
        "reward": masked_mean(rewards, bool_mask),
        "ratio": masked_mean(ratio, bool_mask),
        "tokens": bool_mask.sum().detach(),
    }
    return LossOutput(loss, metrics)


# The name that says which form it is.
opd_sampled_token_loss = opd_loss


def reverse_kl_rows(
    student_logprob_rows: torch.Tensor,
    teacher_logprob_rows: torch.Tensor,
    valid: torch.Tensor | None = None,
    renormalize: bool = False,
) -> torch.Tensor:
    """Reverse KL per position over a set of tokens (the last dim), with gradient:

        KL_t = sum_v p_theta(v) * ( log p_theta(v) - log p_T(v) )

    `valid` (same shape, bool) drops entries (duplicates, padding); -inf student entries
    contribute 0 (0 * log 0 = 0). With `renormalize`, both distributions are first renormalised
    on the valid entries: log p~(v) = log p(v) - logsumexp_{u valid} log p(u), giving a proper KL
    between the two conditional distributions on that support (>= 0). A valid entry where the
    student has mass and the teacher has log-prob -inf gives +inf (the true value).
    Source: docs/OBJECTIVES.md §1 (GKD beta = 1 on student samples).
    """
    check_shape("teacher_logprob_rows", teacher_logprob_rows, student_logprob_rows.shape)
    neg_inf = torch.tensor(
        float("-inf"), dtype=student_logprob_rows.dtype, device=student_logprob_rows.device
    )
    student = student_logprob_rows
    teacher = teacher_logprob_rows.detach().to(student.dtype)
    if valid is not None:
        check_shape("valid", valid, student.shape)
        student = torch.where(valid, student, neg_inf)
        teacher = torch.where(valid, teacher, neg_inf)
    if renormalize:
        student = student - torch.logsumexp(student, dim=-1, keepdim=True)
        teacher = teacher - torch.logsumexp(teacher, dim=-1, keepdim=True)
    has_mass = torch.isfinite(student.detach())
    zero = torch.zeros((), dtype=student.dtype, device=student.device)
    s_safe = torch.where(has_mass, student, zero)
    t_safe = torch.where(has_mass, teacher, zero)
    terms = torch.where(has_mass, torch.exp(s_safe) * (s_safe - t_safe), zero)
    return terms.sum(dim=-1)


def opd_full_rkl_loss(
    student_logprob_rows: torch.Tensor,
    teacher_logprob_rows: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """The exact reverse KL at each student-visited position, over the whole vocabulary:

        L = aggregate_t  kl_coef * sum_v p_theta(v|s_t) * ( log p_theta(v|s_t) - log p_T(v|s_t) )

    (GKD with beta = 1 on student samples, Agarwal et al. 2024; docs/OBJECTIVES.md §1, measured in
    docs/GENERATED_DATA.md as 2-4x faster and far more stable than the sampled-token `opd_loss`).
    The gradient is autograd of this closed form, through p_theta in both places.

    Args:
        student_logprob_rows: (B, T, V) log-softmax rows of pi_theta at the completion positions,
            with gradient (vision placeholders at -inf, as masked_log_softmax leaves them).
        teacher_logprob_rows: (B, T, V) the teacher's rows (same temperature, same masking).
        mask: (B, T) trained completion positions.
        aggregation, kl_coef: as in `opd_loss`.

    Metrics: "reverse_kl" (mean exact KL per position), "tokens".
    """
    bool_mask = validate_token_tensors(mask)
    if student_logprob_rows.dim() != 3 or student_logprob_rows.shape[:2] != mask.shape:
        raise ValueError(
            f"student_logprob_rows has shape {tuple(student_logprob_rows.shape)}, "
            f"expected (B, T, V) with (B, T) = {tuple(mask.shape)}"
        )
    check_shape("teacher_logprob_rows", teacher_logprob_rows, student_logprob_rows.shape)
    check_logprob_rows("student_logprob_rows", student_logprob_rows, bool_mask)
    check_logprob_rows("teacher_logprob_rows", teacher_logprob_rows, bool_mask)
    kl = reverse_kl_rows(
        student_logprob_rows,
        _untrained_as_student(teacher_logprob_rows, student_logprob_rows, bool_mask),
    )
    loss = aggregate(kl_coef * kl, bool_mask, aggregation)
    return LossOutput(loss, {"reverse_kl": masked_mean(kl, bool_mask), "tokens": bool_mask.sum()})


def _untrained_as_student(
    teacher: torch.Tensor, student: torch.Tensor, bool_mask: torch.Tensor
) -> torch.Tensor:
    """The teacher's rows with untrained (padded) positions replaced by the student's, detached:
    their KL is then 0 and finite, so no NaN gradient (inf * 0) reaches the student there."""
    return torch.where(bool_mask.unsqueeze(-1), teacher.detach(), student.detach())


def rows_from_topk(
    topk_ids: torch.Tensor,
    topk_logprobs: torch.Tensor,
    vocab_size: int,
    support_size: int | None = None,
) -> torch.Tensor | None:
    """Dense (B, T, V) log-prob rows from a top-k list that covers the whole support, or None.

    A teacher asked for k = V returns its full distribution as a top-k list; scattered back into
    rows it feeds `opd_full_rkl_loss` directly (O(V) per position) instead of the union-of-top-k
    form (O(V^2) per position). `support_size` is how many ids can carry probability (default V;
    a padded vocabulary's unused ids and the vision placeholders cannot): a list at least that
    long is complete. Returns None when the list is shorter, so the caller keeps the
    approximation. Ids not listed (padding rows) stay -inf.
    """
    if topk_ids.shape[-1] < (vocab_size if support_size is None else support_size):
        return None
    rows = torch.full(
        (*topk_ids.shape[:-1], vocab_size),
        float("-inf"),
        dtype=topk_logprobs.dtype,
        device=topk_logprobs.device,
    )
    ids = topk_ids.long()
    listed = (ids >= 0) & (ids < vocab_size)
    safe_ids = torch.where(listed, ids, torch.zeros_like(ids))
    # Out-of-range ids (none in a well-formed list) are dropped; the (-inf) values keep a
    # dropped entry from overwriting a real one that shares its safe id.
    values = torch.where(listed, topk_logprobs, torch.full_like(topk_logprobs, float("-inf")))
    return rows.scatter_reduce(-1, safe_ids, values, reduce="amax", include_self=True)


def union_topk_support(
    student_topk_ids: torch.Tensor, teacher_topk_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The union of the student's and the teacher's top-k token ids per position.

    Returns (ids, valid): ids (B, T, Ks + Kt) = the student's ids then the teacher's; valid marks
    each id's first occurrence (a teacher id already in the student's top-k is invalid), so
    summing over valid entries sums over the union exactly once.
    """
    if student_topk_ids.shape[:2] != teacher_topk_ids.shape[:2]:
        raise ValueError(
            f"student_topk_ids {tuple(student_topk_ids.shape)} and teacher_topk_ids "
            f"{tuple(teacher_topk_ids.shape)} differ in (B, T)"
        )
    ids = torch.cat([student_topk_ids, teacher_topk_ids.to(student_topk_ids.dtype)], dim=-1)
    same = ids.unsqueeze(-1) == ids.unsqueeze(-2)  # (B, T, K, K)
    earlier = torch.ones(same.shape[-2:], dtype=torch.bool, device=ids.device).tril(-1)
    duplicate = (same & earlier).any(dim=-1)
    return ids, ~duplicate


def lookup_logprobs(
    ids: torch.Tensor,
    topk_ids: torch.Tensor,
    topk_logprobs: torch.Tensor,
    fill: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of `ids` (B, T, N) read from a top-k list (B, T, K); returns (values, found).

    An id absent from the top-k gets `fill`, by default the smallest finite log-prob in that
    position's top-k: an upper bound on the true value (every token outside the top-k is at most
    as likely as the k-th). The fill is an approximation this project chose (not published).
    """
    match = ids.unsqueeze(-1) == topk_ids.unsqueeze(-2)  # (B, T, N, K)
    found = match.any(dim=-1)
    lp = topk_logprobs.detach().unsqueeze(-2).expand(match.shape)
    zero = torch.zeros((), dtype=lp.dtype, device=lp.device)
    values = torch.where(match, lp, zero).sum(dim=-1)
    if fill is None:
        finite = torch.isfinite(topk_logprobs.detach())
        big = torch.tensor(float("inf"), dtype=lp.dtype, device=lp.device)
        kth = torch.where(finite, topk_logprobs.detach(), big).amin(dim=-1, keepdim=True)
        fill_values = kth.expand(values.shape)
    else:
        fill_values = torch.full_like(values, float(fill))
    return torch.where(found, values, fill_values), found


def opd_union_topk_rkl_loss(
    student_logprob_rows: torch.Tensor,
    teacher_topk_ids: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    student_k: int | None = None,
    teacher_support_logprobs: torch.Tensor | None = None,
    renormalize: bool = False,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """Reverse KL over the union of the student's and the teacher's top-k (a cheaper stand-in for
    `opd_full_rkl_loss` when the teacher returns only its top-k; docs/OBJECTIVES.md §1, §4):

        S_t = topk_theta(s_t) ∪ topk_T(s_t)
        L   = aggregate_t  kl_coef * sum_{v in S_t} p_theta(v) ( log p_theta(v) - log p_T(v) )

    The student's top-k ids are taken from its rows without gradient (k = `student_k`, default the
    teacher's K). Teacher log-probs on S_t come from `teacher_support_logprobs` (B, T, Ks + Kt),
    aligned with `union_topk_support`'s ids, when the teacher scored them; otherwise from its top-k,
    an id outside it taking the k-th log-prob (`lookup_logprobs`, an upper bound). Not published:
    the truncated sum (renormalize=False, default: it equals the exact value once S_t holds the
    student's support) vs renormalising both on S_t (renormalize=True, see `reverse_kl_rows`).

    Metrics: "reverse_kl", "teacher_coverage" (fraction of union entries the teacher's top-k
    holds), "tokens".
    """
    bool_mask = validate_token_tensors(mask)
    if student_logprob_rows.dim() != 3 or student_logprob_rows.shape[:2] != mask.shape:
        raise ValueError(
            f"student_logprob_rows has shape {tuple(student_logprob_rows.shape)}, "
            f"expected (B, T, V) with (B, T) = {tuple(mask.shape)}"
        )
    _check_topk("teacher", teacher_topk_ids, teacher_topk_logprobs, bool_mask)
    check_logprob_rows("student_logprob_rows", student_logprob_rows, bool_mask)
    k = teacher_topk_ids.shape[-1] if student_k is None else student_k
    student_ids = student_logprob_rows.detach().topk(k, dim=-1).indices
    ids, valid = union_topk_support(student_ids, teacher_topk_ids)
    student_lp = student_logprob_rows.gather(-1, ids.long())
    if teacher_support_logprobs is not None:
        check_shape("teacher_support_logprobs", teacher_support_logprobs, ids.shape)
        check_logprob_rows("teacher_support_logprobs", teacher_support_logprobs, bool_mask)
        teacher_lp, found = teacher_support_logprobs, torch.ones_like(valid)
    else:
        teacher_lp, found = lookup_logprobs(ids, teacher_topk_ids, teacher_topk_logprobs)
    teacher_lp = _untrained_as_student(teacher_lp, student_lp, bool_mask)
    kl = reverse_kl_rows(student_lp, teacher_lp, valid, renormalize)
    loss = aggregate(kl_coef * kl, bool_mask, aggregation)
    coverage = (found & valid & bool_mask.unsqueeze(-1)).sum() / (
        (valid & bool_mask.unsqueeze(-1)).sum().clamp_min(1)
    )
    metrics = {
        "reverse_kl": masked_mean(kl, bool_mask),
        "teacher_coverage": coverage.detach().float(),
        "tokens": bool_mask.sum(),
    }
    return LossOutput(loss, metrics)


def _check_topk(
    who: str, ids: torch.Tensor, logprobs: torch.Tensor, bool_mask: torch.Tensor
) -> None:
    """Shape and finiteness checks of a (B, T, K) top-k pair against the (B, T) mask."""
    if ids.dim() != 3 or ids.shape[:2] != bool_mask.shape:
        raise ValueError(
            f"{who}_topk_ids has shape {tuple(ids.shape)}, expected (B, T, K) with (B, T) = "
            f"{tuple(bool_mask.shape)}"
        )
    check_shape(f"{who}_topk_logprobs", logprobs, ids.shape)
    check_logprob_rows(f"{who}_topk_logprobs", logprobs, bool_mask)


def _check_on_topk(
    student_on_topk: torch.Tensor, teacher_topk_logprobs: torch.Tensor, bool_mask: torch.Tensor
) -> None:
    """Shape and finiteness checks of the (B, T, K) student / teacher values on the top-k."""
    if student_on_topk.dim() != 3 or student_on_topk.shape[:2] != bool_mask.shape:
        raise ValueError(
            f"student_logprobs_on_topk has shape {tuple(student_on_topk.shape)}, expected "
            f"(B, T, K) with (B, T) = {tuple(bool_mask.shape)}"
        )
    check_shape("teacher_topk_logprobs", teacher_topk_logprobs, student_on_topk.shape)
    check_logprob_rows("teacher_topk_logprobs", teacher_topk_logprobs, bool_mask)
    check_logprob_rows("student_logprobs_on_topk", student_on_topk, bool_mask)


def gather_logprobs(logprob_rows: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log p(ids) read from full rows: (B, T, V) and (B, T, K) ids -> (B, T, K), with gradient."""
    return logprob_rows.gather(-1, ids.long())


def opd_topk_fkl_loss(
    student_logprobs_on_topk: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    renormalize_teacher: bool = False,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """Forward KL on the teacher's top-k support (docs/OBJECTIVES.md §1; the paper's OP-FKD row):

        L = aggregate_t  kl_coef * sum_{v in topk_T(s_t)} p_T(v) ( log p_T(v) - log p_theta(v) )

    with p_T the teacher's probabilities as returned (not renormalised: the published formula), so
    the value can be slightly negative; its gradient is -sum_v p_T(v) grad log p_theta(v), the
    truncated cross-entropy. `renormalize_teacher=True` uses p_T / sum_{u in topk} p_T(u) instead
    (an option, not published). Entries with teacher log-prob -inf (a short top-k list) count 0.

    Args:
        student_logprobs_on_topk: (B, T, K) log p_theta at the teacher's top-k ids, with gradient
            (`gather_logprobs(student_rows, teacher_topk_ids)`).
        teacher_topk_logprobs: (B, T, K) the teacher's top-k log-probs.
        mask: (B, T) trained completion positions.
    """
    bool_mask = validate_token_tensors(mask)
    _check_on_topk(student_logprobs_on_topk, teacher_topk_logprobs, bool_mask)
    teacher = teacher_topk_logprobs.detach().to(student_logprobs_on_topk.dtype)
    if renormalize_teacher:
        teacher = teacher - torch.logsumexp(teacher, dim=-1, keepdim=True)
    has_mass = torch.isfinite(teacher) & bool_mask.unsqueeze(-1)
    zero = torch.zeros((), dtype=teacher.dtype, device=teacher.device)
    t_safe = torch.where(has_mass, teacher, zero)
    s_safe = torch.where(has_mass, student_logprobs_on_topk, zero)
    terms = torch.where(has_mass, torch.exp(t_safe) * (t_safe - s_safe), zero)
    fkl = terms.sum(dim=-1)
    loss = aggregate(kl_coef * fkl, bool_mask, aggregation)
    return LossOutput(
        loss, {"forward_kl_topk": masked_mean(fkl, bool_mask), "tokens": bool_mask.sum()}
    )


def opd_topk_rkl_loss(
    student_logprobs_on_topk: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """Reverse KL restricted to the teacher's top-k support S_t, renormalised on it (see
    docs/OBJECTIVES.md §1; the paper's OP-RKD row). Exactly:

        log q_theta(v) = log p_theta(v) - logsumexp_{u in S_t} log p_theta(u)
        log q_T(v)     = log p_T(v)     - logsumexp_{u in S_t} log p_T(u)
        L = aggregate_t  kl_coef * sum_{v in S_t} q_theta(v) ( log q_theta(v) - log q_T(v) )

    i.e. the KL between the two distributions conditioned on S_t: >= 0, and 0 iff they agree up
    to scale on S_t. The gradient flows through both the weights q_theta and the log-ratio.
    Entries with teacher log-prob -inf (a short list) are left out of S_t.

    Args: as `opd_topk_fkl_loss`.
    """
    bool_mask = validate_token_tensors(mask)
    _check_on_topk(student_logprobs_on_topk, teacher_topk_logprobs, bool_mask)
    valid = torch.isfinite(teacher_topk_logprobs.detach()) & bool_mask.unsqueeze(-1)
    valid = valid | ~bool_mask.unsqueeze(-1)  # padding rows: keep well-defined, zeroed later
    student = torch.where(
        bool_mask.unsqueeze(-1),
        student_logprobs_on_topk,
        torch.zeros_like(student_logprobs_on_topk),
    )
    teacher = torch.where(
        bool_mask.unsqueeze(-1), teacher_topk_logprobs, torch.zeros_like(teacher_topk_logprobs)
    )
    rkl = reverse_kl_rows(student, teacher, valid, renormalize=True)
    loss = aggregate(kl_coef * rkl, bool_mask, aggregation)
    return LossOutput(
        loss, {"reverse_kl_topk": masked_mean(rkl, bool_mask), "tokens": bool_mask.sum()}
    )


# Log-probability floor of a tail bucket: a teacher list that holds (almost) all of its mass
# leaves a tail of ~0, whose log would make the KL infinite or its gradient NaN.
TAIL_LOGPROB_FLOOR = -30.0


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, stable on both ends (Maechler 2012). Each branch is
    evaluated only on inputs where it is finite, so the branch torch.where drops cannot put an
    inf into the gradient (0 * inf = NaN: seen in float32, where exp(-1e-12) rounds to 1)."""
    x = x.clamp(max=-1e-12)
    half = -0.6931471805599453
    near_zero = x > half
    a = torch.log(-torch.expm1(torch.where(near_zero, x, torch.full_like(x, half))))
    b = torch.log1p(-torch.exp(torch.where(near_zero, torch.full_like(x, half), x)))
    return torch.where(near_zero, a, b)


def topk_with_tail(
    logprobs_on_topk: torch.Tensor, listed: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The K + 1 outcome log-probs of a top-k list plus a tail bucket: the listed entries
    (unlisted ones -inf) and log(1 - sum of the listed probabilities), floored at
    TAIL_LOGPROB_FLOOR. (B, T, K), (B, T, K) bool -> (B, T, K), (B, T)."""
    neg = torch.full_like(logprobs_on_topk, float("-inf"))
    kept = torch.where(listed, logprobs_on_topk, neg)
    tail = _log1mexp(torch.logsumexp(kept, dim=-1)).clamp_min(TAIL_LOGPROB_FLOOR)
    return kept, tail


def _tail_kl(
    p_logprobs: torch.Tensor, q_logprobs: torch.Tensor, listed: torch.Tensor
) -> torch.Tensor:
    """KL(p || q) over the top-k list plus its tail bucket, per position: (B, T)."""
    p_k, p_tail = topk_with_tail(p_logprobs, listed)
    q_k, q_tail = topk_with_tail(q_logprobs, listed)
    zero = torch.zeros((), dtype=p_k.dtype, device=p_k.device)
    p_safe = torch.where(listed, p_k, zero)
    q_safe = torch.where(listed, q_k, zero)
    listed_terms = torch.where(listed, p_safe.exp() * (p_safe - q_safe), zero).sum(dim=-1)
    return listed_terms + p_tail.exp() * (p_tail - q_tail)


def _topk_tail_loss(
    direction: str,
    student_logprobs_on_topk: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str,
    kl_coef: float,
) -> LossOutput:
    bool_mask = validate_token_tensors(mask)
    _check_on_topk(student_logprobs_on_topk, teacher_topk_logprobs, bool_mask)
    teacher = teacher_topk_logprobs.detach().to(student_logprobs_on_topk.dtype)
    listed = torch.isfinite(teacher) & bool_mask.unsqueeze(-1)
    zero = torch.zeros((), dtype=teacher.dtype, device=teacher.device)
    student = torch.where(bool_mask.unsqueeze(-1), student_logprobs_on_topk, zero)
    teacher = torch.where(bool_mask.unsqueeze(-1), teacher, zero)
    if direction == "reverse":
        kl = _tail_kl(student, teacher, listed)
    else:
        kl = _tail_kl(teacher, student, listed)
    kl = zero_pad(kl, bool_mask)
    loss = aggregate(kl_coef * kl, bool_mask, aggregation)
    _, teacher_tail = topk_with_tail(teacher, listed)
    metrics = {
        f"{direction}_kl_topk_tail": masked_mean(kl, bool_mask),
        "teacher_tail_mass": masked_mean(teacher_tail.exp(), bool_mask),
        "tokens": bool_mask.sum(),
    }
    return LossOutput(loss, metrics)


def opd_topk_tail_rkl_loss(
    student_logprobs_on_topk: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """Reverse KL over the teacher's top-k plus one tail bucket (docs/OBJECTIVES.md §4): the K
    listed tokens keep their own probabilities and every other token is pooled into "the rest",
    so both sides are proper distributions over K + 1 outcomes without renormalising:

        p_rest = 1 - sum_{v in S_t} p(v)        (S_t = the teacher's top-k at position t)
        L = aggregate_t kl_coef * [ sum_{v in S_t} p_theta(v) log(p_theta(v) / p_T(v))
                                    + p_theta(rest) log(p_theta(rest) / p_T(rest)) ]

    By the data-processing inequality it is a lower bound of the full reverse KL, and equal to it
    when the teacher's list holds all of either side's mass. The teacher ships K values per
    position (its tail is one minus their sum); the student's tail comes from its own top-k
    values. Tail log-probs are floored at TAIL_LOGPROB_FLOOR. Metrics: "reverse_kl_topk_tail",
    "teacher_tail_mass", "tokens". Args as `opd_topk_fkl_loss`.
    """
    return _topk_tail_loss(
        "reverse", student_logprobs_on_topk, teacher_topk_logprobs, mask, aggregation, kl_coef
    )


def opd_topk_tail_fkl_loss(
    student_logprobs_on_topk: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """Forward KL over the teacher's top-k plus one tail bucket (docs/OBJECTIVES.md §4; the
    forward form of `opd_topk_tail_rkl_loss`, as verl / NeMo-RL ship top-k distillation):

        L = aggregate_t kl_coef * [ sum_{v in S_t} p_T(v) log(p_T(v) / p_theta(v))
                                    + p_T(rest) log(p_T(rest) / p_theta(rest)) ]

    A lower bound of the full forward KL (equal when the list holds all the teacher's mass).
    Metrics: "forward_kl_topk_tail", "teacher_tail_mass", "tokens".
    """
    return _topk_tail_loss(
        "forward", student_logprobs_on_topk, teacher_topk_logprobs, mask, aggregation, kl_coef
    )


def k1(logprobs: torch.Tensor, other_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k1 estimator of KL(pi || pi_other) on a token sampled from pi:
    log pi(y) - log pi_other(y) (unbiased, can be negative). Elementwise."""
    return logprobs - other_logprobs


def k2(logprobs: torch.Tensor, other_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k2 estimator: 0.5 * (log pi(y) - log pi_other(y))^2 (biased, >= 0)."""
    return 0.5 * (logprobs - other_logprobs) ** 2


def k3(logprobs: torch.Tensor, other_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator: rho - 1 - log rho with rho = pi_other(y) / pi(y) (unbiased, >= 0).

    Source: J. Schulman, "Approximating KL divergence" (2020). Elementwise.
    """
    log_rho = other_logprobs - logprobs
    return torch.expm1(log_rho) - log_rho


def _direct_kl_loss(
    estimator: str,
    logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str,
    kl_coef: float,
) -> LossOutput:
    bool_mask = validate_token_tensors(mask, logprobs=logprobs, teacher_logprobs=teacher_logprobs)
    fn = k1 if estimator == "k1" else k3
    values = fn(zero_pad(logprobs, bool_mask), zero_pad(teacher_logprobs.detach(), bool_mask))
    loss = aggregate(kl_coef * values, bool_mask, aggregation)
    return LossOutput(loss, {f"reverse_kl_{estimator}": masked_mean(values, bool_mask)})


def opd_k1_loss(
    logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """The k1 estimator of reverse KL on the sampled token, as a direct loss (see
    docs/OBJECTIVES.md §1 variant list; Schulman 2020):

        L = aggregate_t  kl_coef * ( log pi_theta(y_t|s_t) - log pi_T(y_t|s_t) )

    Its value estimates KL(pi_theta || pi_T), but as a loss its expected gradient on on-policy
    samples is E[grad log pi_theta] = 0: the reverse-KL gradient needs the score-function term
    that `opd_loss` carries. Offered for comparison; tests/trainer/test_opd.py checks this.
    """
    return _direct_kl_loss("k1", logprobs, teacher_logprobs, mask, aggregation, kl_coef)


def opd_k3_loss(
    logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = DEFAULT_OPD_AGGREGATION,
    kl_coef: float = 1.0,
) -> LossOutput:
    """The k3 estimator of reverse KL on the sampled token, as a direct loss (see
    docs/OBJECTIVES.md §1 variant list; Schulman 2020):

        rho_t = pi_T(y_t|s_t) / pi_theta(y_t|s_t)
        L     = aggregate_t  kl_coef * ( rho_t - 1 - log rho_t )

    Its value is an unbiased, non-negative estimate of KL(pi_theta || pi_T), but as a loss on
    on-policy samples its expected gradient is that of the FORWARD KL(pi_T || pi_theta)
    (E_{y~pi_theta}[grad k3] = -sum_v pi_T(v) grad log pi_theta(v)); tests check it.
    """
    return _direct_kl_loss("k3", logprobs, teacher_logprobs, mask, aggregation, kl_coef)
