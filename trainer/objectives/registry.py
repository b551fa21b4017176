"""The objective registry: `trainer.objective=<name>` -> one loss with a uniform signature.

Every registered objective is called as

    loss_output = get_objective(name)(inputs, **options)

with `inputs` an `ObjectiveInputs` (tensors padded to (B, T) with a completion mask; each
objective reads the fields it needs and names a missing one) and `options` the keyword options of
the underlying pure function (an unknown option is a ValueError naming it). This module imports
only torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from trainer.objectives._common import LossOutput
from trainer.objectives.grpo import grpo_objective
from trainer.objectives.opd import (
    gather_logprobs,
    opd_full_rkl_loss,
    opd_k1_loss,
    opd_k3_loss,
    opd_loss,
    opd_topk_fkl_loss,
    opd_topk_rkl_loss,
    opd_union_topk_rkl_loss,
    rows_from_topk,
)
from trainer.objectives.sft import sft_loss
from trainer.objectives.tempsamp import tempsamp_loss


@dataclass
class ObjectiveInputs:
    """Everything any objective may read, per step (B completions, T padded completion length).

    logprobs: (B, T) log pi_theta of the completion tokens, with gradient (vision placeholders
        masked to -inf before the log-softmax, as rollout.hf_scoring.masked_log_softmax does).
    mask: (B, T) 1 on trained completion tokens.
    old_logprobs: (B, T) behaviour log-probs (Trajectory.logprobs) or None (= pi_theta, ratio 1).
    teacher_logprobs: (B, T) teacher log-probs of the sampled tokens (Trajectory.teacher_logprobs).
    ref_logprobs: (B, T) frozen-reference log-probs (GRPO / TempSamp KL term).
    rewards, group_ids, is_ground_truth: (B,) per completion (Trajectory.rewards["total"],
        prompt_index, is_ground_truth).
    student_logprob_rows: (B, T, V) pi_theta's log-prob rows at the completion positions.
    teacher_logprob_rows: (B, T, V) the teacher's full rows (local teacher / small vocabulary).
    teacher_topk_ids, teacher_topk_logprobs: (B, T, K) the teacher's top-k.
    """

    logprobs: torch.Tensor
    mask: torch.Tensor
    old_logprobs: torch.Tensor | None = None
    teacher_logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    group_ids: torch.Tensor | None = None
    is_ground_truth: torch.Tensor | None = None
    student_logprob_rows: torch.Tensor | None = None
    teacher_logprob_rows: torch.Tensor | None = None
    teacher_topk_ids: torch.Tensor | None = None
    teacher_topk_logprobs: torch.Tensor | None = None


INPUT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ObjectiveInputs))

Objective = Callable[..., LossOutput]


def _need(name: str, inputs: ObjectiveInputs, *required: str) -> None:
    """ValueError naming the first required input field that is None."""
    for key in required:
        if getattr(inputs, key) is None:
            raise ValueError(f"objective {name!r} needs inputs.{key}")


def _opd(inputs: ObjectiveInputs, **options: object) -> LossOutput:
    _need("opd", inputs, "teacher_logprobs")
    return opd_loss(
        inputs.logprobs, inputs.teacher_logprobs, inputs.mask, inputs.old_logprobs, **options
    )


# The union-of-top-k options (student_k, renormalize) change nothing once the teacher's list is
# the whole vocabulary (the union is then every token, each distribution already sums to one).
_EXACT_RKL_OPTIONS = frozenset(inspect.signature(opd_full_rkl_loss).parameters)


def _opd_full_rkl(inputs: ObjectiveInputs, **options: object) -> LossOutput:
    _need("opd_full_rkl", inputs, "student_logprob_rows")
    if inputs.teacher_logprob_rows is not None:
        return opd_full_rkl_loss(
            inputs.student_logprob_rows, inputs.teacher_logprob_rows, inputs.mask, **options
        )
    if inputs.teacher_topk_ids is None or inputs.teacher_topk_logprobs is None:
        raise ValueError(
            "objective 'opd_full_rkl' needs inputs.teacher_logprob_rows (exact) or "
            "inputs.teacher_topk_ids + inputs.teacher_topk_logprobs (union-of-top-k approximation)"
        )
    teacher_rows = rows_from_topk(
        inputs.teacher_topk_ids,
        inputs.teacher_topk_logprobs,
        inputs.student_logprob_rows.shape[-1],
    )
    if teacher_rows is not None:  # the teacher returned its whole distribution: exact form
        exact_options = {k: v for k, v in options.items() if k in _EXACT_RKL_OPTIONS}
        return opd_full_rkl_loss(
            inputs.student_logprob_rows, teacher_rows, inputs.mask, **exact_options
        )
    return opd_union_topk_rkl_loss(
        inputs.student_logprob_rows,
        inputs.teacher_topk_ids,
        inputs.teacher_topk_logprobs,
        inputs.mask,
        **options,
    )


def _topk(name: str, fn: Objective) -> Objective:
    def run(inputs: ObjectiveInputs, **options: object) -> LossOutput:
        """Gather the student's log-probs at the teacher's top-k ids, then call `fn`."""
        _need(name, inputs, "student_logprob_rows", "teacher_topk_ids", "teacher_topk_logprobs")
        rows, ids = inputs.student_logprob_rows, inputs.teacher_topk_ids
        if ids.dim() != 3 or rows.dim() != 3 or ids.shape[:2] != rows.shape[:2]:
            raise ValueError(
                f"teacher_topk_ids {tuple(ids.shape)} and student_logprob_rows "
                f"{tuple(rows.shape)} must be (B, T, K) and (B, T, V) with the same (B, T)"
            )
        student_on_topk = gather_logprobs(rows, ids)
        return fn(student_on_topk, inputs.teacher_topk_logprobs, inputs.mask, **options)

    return run


def _direct(name: str, fn: Objective) -> Objective:
    def run(inputs: ObjectiveInputs, **options: object) -> LossOutput:
        """Call `fn` on the sampled-token student and teacher log-probs."""
        _need(name, inputs, "teacher_logprobs")
        return fn(inputs.logprobs, inputs.teacher_logprobs, inputs.mask, **options)

    return run


def _sft(inputs: ObjectiveInputs, **options: object) -> LossOutput:
    return sft_loss(inputs.logprobs, inputs.mask, **options)


def _grpo(inputs: ObjectiveInputs, **options: object) -> LossOutput:
    _need("grpo", inputs, "rewards", "group_ids")
    return grpo_objective(
        inputs.logprobs,
        inputs.rewards,
        inputs.group_ids,
        inputs.mask,
        inputs.old_logprobs,
        ref_logprobs=inputs.ref_logprobs,
        **options,
    )


def _tempsamp(inputs: ObjectiveInputs, **options: object) -> LossOutput:
    _need("tempsamp", inputs, "rewards", "group_ids", "is_ground_truth")
    return tempsamp_loss(
        inputs.logprobs,
        inputs.rewards,
        inputs.group_ids,
        inputs.is_ground_truth,
        inputs.mask,
        inputs.old_logprobs,
        ref_logprobs=inputs.ref_logprobs,
        **options,
    )


@dataclass(frozen=True)
class ObjectiveSpec:
    """One registered objective: its adapter, the pure functions behind it, what it needs."""

    name: str
    run: Objective
    functions: tuple[Objective, ...]
    requires: tuple[str, ...]
    summary: str

    def options(self) -> tuple[str, ...]:
        """The keyword options the objective accepts (union over its pure functions)."""
        names: list[str] = []
        for fn in self.functions:
            for p in inspect.signature(fn).parameters.values():
                keyword = p.kind is inspect.Parameter.KEYWORD_ONLY
                if keyword and p.name != "ref_logprobs" and p.name not in names:
                    names.append(p.name)
        return tuple(names)


OBJECTIVES: dict[str, ObjectiveSpec] = {
    spec.name: spec
    for spec in (
        ObjectiveSpec(
            "opd",
            _opd,
            (opd_loss,),
            ("logprobs", "mask", "teacher_logprobs"),
            "Video-OPD's sampled-token form (the paper): -sum_t r_t exp(logp - logp_old)",
        ),
        ObjectiveSpec(
            "opd_full_rkl",
            _opd_full_rkl,
            (opd_full_rkl_loss, opd_union_topk_rkl_loss),
            ("mask", "student_logprob_rows", "teacher_logprob_rows | teacher_topk_*"),
            "exact reverse KL per visited position (full rows), or over the union of top-k",
        ),
        ObjectiveSpec(
            "opd_topk_fkl",
            _topk("opd_topk_fkl", opd_topk_fkl_loss),
            (opd_topk_fkl_loss,),
            ("mask", "student_logprob_rows", "teacher_topk_ids", "teacher_topk_logprobs"),
            "forward KL on the teacher's top-k support",
        ),
        ObjectiveSpec(
            "opd_topk_rkl",
            _topk("opd_topk_rkl", opd_topk_rkl_loss),
            (opd_topk_rkl_loss,),
            ("mask", "student_logprob_rows", "teacher_topk_ids", "teacher_topk_logprobs"),
            "reverse KL on the teacher's top-k support, both renormalised on it",
        ),
        ObjectiveSpec(
            "opd_k1",
            _direct("opd_k1", opd_k1_loss),
            (opd_k1_loss,),
            ("logprobs", "mask", "teacher_logprobs"),
            "k1 estimate of reverse KL on the sampled token, as a direct loss",
        ),
        ObjectiveSpec(
            "opd_k3",
            _direct("opd_k3", opd_k3_loss),
            (opd_k3_loss,),
            ("logprobs", "mask", "teacher_logprobs"),
            "k3 estimate of reverse KL on the sampled token, as a direct loss",
        ),
        ObjectiveSpec(
            "sft",
            _sft,
            (sft_loss,),
            ("logprobs", "mask"),
            "token-level cross-entropy on target completions (GT answers or teacher outputs)",
        ),
        ObjectiveSpec(
            "grpo",
            _grpo,
            (grpo_objective,),
            ("logprobs", "mask", "rewards", "group_ids"),
            "GRPO: group-normalised advantages, clipped ratio, optional KL to a reference",
        ),
        ObjectiveSpec(
            "tempsamp",
            _tempsamp,
            (tempsamp_loss,),
            ("logprobs", "mask", "rewards", "group_ids", "is_ground_truth"),
            "TempSamp-R1: GRPO with one ground-truth completion per group",
        ),
    )
}

# Names that say which OPD form is meant.
ALIASES: dict[str, str] = {"opd_sampled_token": "opd", "opd_exact_rkl": "opd_full_rkl"}


def list_objectives() -> tuple[str, ...]:
    """The registered objective names."""
    return tuple(OBJECTIVES)


def get_objective_spec(name: str) -> ObjectiveSpec:
    """The spec registered under `name` (or an alias); ValueError naming the known ones."""
    key = ALIASES.get(name, name)
    try:
        return OBJECTIVES[key]
    except KeyError:
        known = ", ".join(list(OBJECTIVES) + list(ALIASES))
        raise ValueError(f"unknown objective {name!r}; known objectives: {known}") from None


def get_objective(name: str) -> Callable[..., LossOutput]:
    """The loss registered under `name`, called as fn(inputs: ObjectiveInputs, **options).

    Raises ValueError for an unknown name; the returned function raises ValueError for an unknown
    option (naming it and the known ones), a missing input, a shape mismatch or a NaN / inf input
    (naming the tensor).
    """
    spec = get_objective_spec(name)
    allowed = spec.options()

    def objective(inputs: ObjectiveInputs, **options: object) -> LossOutput:
        """Check the options, then run the objective (docstring replaced below)."""
        if not isinstance(inputs, ObjectiveInputs):
            raise TypeError(f"objective {spec.name!r} takes an ObjectiveInputs, got {type(inputs)}")
        unknown = [key for key in options if key not in allowed]
        if unknown:
            raise ValueError(
                f"unknown option(s) {unknown} for objective {spec.name!r}; "
                f"known: {', '.join(allowed)}"
            )
        if spec.name == "opd_full_rkl" and inputs.teacher_logprob_rows is not None:
            extra = [key for key in options if key not in _EXACT_RKL_OPTIONS]
            if extra:
                raise ValueError(
                    f"option(s) {extra} apply only to the union-of-top-k form of 'opd_full_rkl'"
                )
        return spec.run(inputs, **options)

    objective.__name__ = f"objective_{spec.name}"
    objective.__doc__ = f"{spec.summary}. Needs: {', '.join(spec.requires)}."
    return objective
