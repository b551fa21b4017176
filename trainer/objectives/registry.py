"""The objective registry: the one place that says what each objective is and needs.

An `ObjectiveSpec` per objective holds its traits — which teacher signal it reads (none, the
sampled token, top-k, the full distribution), whether the rollout samples, whether ground-truth
rows are injected, which reward it trains on, its step-level advantage function, the smallest
group it can learn from — and the options it accepts, split by where they act: advantage options
(the driver computes advantages over the whole step), step options (dynamic filtering: the
driver drops rows) and loss options (the learner's loss). Config validation, the driver, the step
logic and the learner's loss read only this. Aliases resolve here (`canonical_name`) and once, in
the config.

Every registered objective can also be called on one batch as

    loss_output = get_objective(name)(inputs, **options)

with `inputs` an `ObjectiveInputs` (tensors padded to (B, T) with a completion mask; each
objective reads the fields it needs and names a missing one) and `options` any of its options
(an unknown option is a ValueError naming it). This module imports only torch.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from trainer.objectives._common import LossOutput
from trainer.objectives.grpo import group_advantages, groups_with_signal, grpo_loss
from trainer.objectives.opd import (
    gather_logprobs,
    opd_full_rkl_loss,
    opd_k1_loss,
    opd_k3_loss,
    opd_loss,
    opd_topk_fkl_loss,
    opd_topk_rkl_loss,
    opd_topk_tail_fkl_loss,
    opd_topk_tail_rkl_loss,
    opd_union_topk_rkl_loss,
    rows_from_topk,
)
from trainer.objectives.sft import sft_loss
from trainer.objectives.tempsamp import ground_truth_old_logprobs, tempsamp_advantages


@dataclass
class ObjectiveInputs:
    """Everything any objective may read, per step (B completions, T padded completion length).

    logprobs: (B, T) log pi_theta of the completion tokens, with gradient (vision placeholders
        masked to -inf before the log-softmax, as runtime.hf_scoring.masked_log_softmax does).
    mask: (B, T) 1 on trained completion tokens.
    old_logprobs: (B, T) behaviour log-probs (Trajectory.logprobs) or None (= pi_theta, ratio 1).
    teacher_logprobs: (B, T) teacher log-probs of the sampled tokens (Trajectory.teacher_logprobs).
    ref_logprobs: (B, T) frozen-reference log-probs (GRPO / TempSamp KL term).
    rewards, group_ids, is_ground_truth: (B,) per completion (Trajectory.rewards["total"],
        prompt_index, is_ground_truth).
    student_logprob_rows: (B, T, V) pi_theta's log-prob rows at the completion positions.
    teacher_logprob_rows: (B, T, V) the teacher's full rows (local teacher / small vocabulary).
    teacher_topk_ids, teacher_topk_logprobs: (B, T, K) the teacher's top-k.
    advantages: (B,) step-level advantages (GRPO / TempSamp-R1; computed by the driver over the
        whole step, `ObjectiveSpec.compute_advantages`).
    ref_mask: (B,) bool, the rows the frozen reference scored (None = all that have
        ref_logprobs).
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
    advantages: torch.Tensor | None = None
    ref_mask: torch.Tensor | None = None


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
    student_rows = inputs.student_logprob_rows
    # Ids the student can put mass on (a padded vocabulary's unused rows and the vision
    # placeholders are -inf): a teacher list that long is the whole distribution.
    finite = torch.isfinite(student_rows.detach()).sum(-1)[inputs.mask.bool()]
    support = int(finite.max()) if finite.numel() else student_rows.shape[-1]
    teacher_rows = rows_from_topk(
        inputs.teacher_topk_ids,
        inputs.teacher_topk_logprobs,
        student_rows.shape[-1],
        support_size=support,
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


def _policy_gradient(name: str, ground_truth_rows: bool) -> Objective:
    def run(inputs: ObjectiveInputs, **options: object) -> LossOutput:
        """GRPO's clipped loss on step-level advantages; an injected ground-truth row (never
        sampled) gets ratio 1 (`ground_truth_old_logprobs`), and the KL term covers only the rows
        the reference scored."""
        _need(name, inputs, "advantages", *(("is_ground_truth",) if ground_truth_rows else ()))
        old = inputs.old_logprobs
        ref, ref_mask = inputs.ref_logprobs, inputs.ref_mask
        if ground_truth_rows:
            assert inputs.is_ground_truth is not None
            old = ground_truth_old_logprobs(inputs.logprobs, old, inputs.is_ground_truth)
            if ref is None and bool(inputs.is_ground_truth.all()):
                # A micro-batch of injected rows only: the reference scored none of them.
                ref = torch.zeros_like(inputs.logprobs.detach())
                ref_mask = torch.zeros_like(inputs.is_ground_truth, dtype=torch.bool)
        return grpo_loss(
            inputs.logprobs,
            inputs.advantages,
            inputs.mask,
            old,
            ref_logprobs=ref,
            ref_mask=ref_mask,
            **options,
        )

    return run


TEACHER_SIGNALS = ("none", "sampled", "topk", "full", "answers")
GROUND_TRUTH_MODES = ("none", "per_group", "only")
# Options the driver applies to the step (not to the loss): DAPO's dynamic filtering.
STEP_OPTIONS: tuple[str, ...] = ("filter_zero_variance",)
# Keyword parameters of the pure functions that are inputs, not user options.
_NOT_OPTIONS = frozenset({"ref_logprobs", "ref_mask", "include", "teacher_support_logprobs"})


def teacher_answer_settings(
    *, teacher_samples: int = 1, teacher_temperature: float = 0.0, regenerate_every: int = 0
) -> dict[str, float]:
    """Sequence-level knowledge distillation's target settings (Kim & Rush 2016): the teacher
    answers each training prompt once — greedily (`teacher_temperature` 0, one answer) or
    `teacher_samples` times at `teacher_temperature` > 0 — the answers are cached and the student
    is trained on them by supervised learning; `regenerate_every` K > 0 asks the teacher again
    for a prompt whose answers are K or more steps old (0: never). Returns the checked values;
    ValueError naming a bad one."""
    if not isinstance(teacher_samples, int) or teacher_samples < 1:
        raise ValueError(f"teacher_samples must be an integer >= 1, got {teacher_samples!r}")
    if not teacher_temperature >= 0:
        raise ValueError(f"teacher_temperature must be >= 0, got {teacher_temperature!r}")
    if teacher_samples > 1 and teacher_temperature == 0:
        raise ValueError(
            "teacher_samples > 1 needs teacher_temperature > 0 (greedy answers are all equal)"
        )
    if not isinstance(regenerate_every, int) or regenerate_every < 0:
        raise ValueError(f"regenerate_every must be an integer >= 0, got {regenerate_every!r}")
    return {
        "teacher_samples": teacher_samples,
        "teacher_temperature": float(teacher_temperature),
        "regenerate_every": regenerate_every,
    }


def _keyword_options(*functions: Callable[..., object]) -> tuple[str, ...]:
    """Keyword-only parameter names of `functions`, in order, without the input ones."""
    names: list[str] = []
    for fn in functions:
        for p in inspect.signature(fn).parameters.values():
            keyword = p.kind is inspect.Parameter.KEYWORD_ONLY
            if keyword and p.name not in _NOT_OPTIONS and p.name not in names:
                names.append(p.name)
    return tuple(names)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


# Options that act only when another option has certain values: given otherwise they would
# change nothing, so `ObjectiveSpec.inert_options` names them and config validation rejects them.
# option -> (the option it depends on, the test its value must pass, what that means)
OPTION_CONDITIONS: dict[str, tuple[str, Callable[[object], bool], str]] = {
    "constant_normalizer": (
        "aggregation",
        lambda v: v in ("seq_mean_token_sum_norm", "dr_grpo"),
        "aggregation=seq_mean_token_sum_norm (dr_grpo)",
    ),
    "downscale_cap": ("variant", lambda v: v == "downscale", "variant=downscale"),
    "downscale_max_reward": ("variant", lambda v: v == "downscale", "variant=downscale"),
    "anchor_factor": ("variant", lambda v: v == "anchor", "variant=anchor"),
    "eps": ("scale_by_std", lambda v: v is True, "scale_by_std=true"),
    "unbiased_std": ("scale_by_std", lambda v: v is True, "scale_by_std=true"),
    "kl_estimator": ("kl_coef", _positive, "kl_coef > 0 (a reference is scored)"),
}
# opd_full_rkl's union-of-top-k options act only when the teacher returns a top-k shorter than
# the vocabulary (teacher.top_k > 0); with the whole distribution the loss is exact.
UNION_ONLY_OPTIONS: tuple[str, ...] = ("student_k", "renormalize")


@dataclass(frozen=True)
class SplitOptions:
    """An objective's options split by where they act (see `ObjectiveSpec.split_options`)."""

    advantage: dict[str, object]
    step: dict[str, object]
    loss: dict[str, object]
    targets: dict[str, object] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveSpec:
    """One registered objective: what it computes, what it needs, what it accepts.

    name / summary: its canonical name and one line on it.
    run: the loss adapter, `run(inputs, **loss_options)`.
    functions: the pure loss functions behind `run` (their keyword options are the loss options;
        the first one's `aggregation` default is the objective's).
    requires: the `ObjectiveInputs` fields `run` reads.
    teacher: the teacher signal it reads — "none", "sampled" (the sampled token's log-prob),
        "topk" (the teacher's top-k per position), "full" (the whole next-token distribution),
        "answers" (the teacher's own generated answers: sequence-level KD).
    samples: whether the rollout samples completions (SFT trains on ground truth only).
    ground_truth: "none", "per_group" (TempSamp-R1: one ground-truth row joins each sampled
        group) or "only" (SFT: the ground-truth row is the whole batch).
    reward: the reward composition it trains on or logs ("grpo" or "tempsamp": `assign_rewards`).
    advantage: the step-level advantage function (rewards, group_ids[, is_ground_truth],
        **options) -> (N,), or None for objectives that take no advantage.
    min_group_size: the fewest sampled completions per prompt (rollout.n) it can learn from.
    needs_labels: whether training needs ground-truth spans (rewards or targets).
    targets: for teacher="answers", the settings function of the teacher's answers (its
        keyword options are the objective's target options), else None.
    """

    name: str
    run: Objective
    functions: tuple[Objective, ...]
    requires: tuple[str, ...]
    summary: str
    teacher: str = "none"
    samples: bool = True
    ground_truth: str = "none"
    reward: str = "grpo"
    advantage: Callable[..., torch.Tensor] | None = None
    min_group_size: int = 1
    needs_labels: bool = False
    targets: Callable[..., dict[str, float]] | None = None

    def __post_init__(self) -> None:
        if self.teacher not in TEACHER_SIGNALS:
            raise ValueError(f"{self.name}: teacher must be one of {TEACHER_SIGNALS}")
        if self.ground_truth not in GROUND_TRUTH_MODES:
            raise ValueError(f"{self.name}: ground_truth must be one of {GROUND_TRUTH_MODES}")

    @property
    def needs_teacher(self) -> bool:
        """Whether the run starts a teacher pool."""
        return self.teacher != "none"

    @property
    def needs_rows(self) -> bool:
        """Whether the learner must compute the student's full log-prob rows (B, T, V)."""
        return self.teacher in ("topk", "full")

    @property
    def accepts_reference(self) -> bool:
        """Whether a KL penalty to a frozen reference (loss option kl_coef) is part of the loss."""
        return self.advantage is not None and "kl_coef" in self.loss_options()

    def loss_options(self) -> tuple[str, ...]:
        """Options the learner's loss takes."""
        return _keyword_options(*self.functions)

    def advantage_options(self) -> tuple[str, ...]:
        """Options of the step-level advantage computation."""
        return _keyword_options(self.advantage) if self.advantage is not None else ()

    def step_options(self) -> tuple[str, ...]:
        """Options the driver applies to the whole step (dynamic filtering)."""
        return STEP_OPTIONS if self.advantage is not None else ()

    def target_options(self) -> tuple[str, ...]:
        """Options of the teacher's answers (sequence-level KD)."""
        return _keyword_options(self.targets) if self.targets is not None else ()

    def options(self) -> tuple[str, ...]:
        """Every option the objective accepts (advantage, step, target and loss options)."""
        names = [*self.advantage_options(), *self.step_options(), *self.target_options()]
        return tuple(names + [n for n in self.loss_options() if n not in names])

    def option_default(self, name: str) -> object:
        """The default value of option `name` (from the function that takes it)."""
        functions = [
            *self.functions,
            *([self.advantage] if self.advantage else []),
            *([self.targets] if self.targets else []),
        ]
        for fn in functions:
            parameter = inspect.signature(fn).parameters.get(name)
            if parameter is not None:
                return parameter.default
        if name in STEP_OPTIONS:
            return False
        raise KeyError(name)

    def inert_options(self, options: dict[str, object]) -> list[str]:
        """The options in `options` that would change nothing given the others (each with the
        setting it needs), per OPTION_CONDITIONS."""
        inert = []
        for name in options:
            condition = OPTION_CONDITIONS.get(name)
            if condition is None or condition[0] not in self.options():
                continue
            other, acts, needs = condition
            value = options.get(other, self.option_default(other))
            if options[name] != self.option_default(name) and not acts(value):
                inert.append(f"{name} (acts only with {needs})")
        return inert

    def split_options(self, options: dict[str, object]) -> SplitOptions:
        """`options` split by where they act; ValueError naming an unknown one."""
        unknown = [key for key in options if key not in self.options()]
        if unknown:
            raise ValueError(
                f"unknown option(s) {unknown} for objective {self.name!r}; "
                f"known: {', '.join(self.options())}"
            )
        adv, step, targets = self.advantage_options(), self.step_options(), self.target_options()
        return SplitOptions(
            advantage={k: v for k, v in options.items() if k in adv},
            step={k: v for k, v in options.items() if k in step},
            loss={k: v for k, v in options.items() if k in self.loss_options()},
            targets={k: v for k, v in options.items() if k in targets},
        )

    def teacher_top_k(self, vocab_size: int, configured: int) -> int:
        """How many teacher log-probs per position to request: the whole vocabulary for the
        exact reverse KL unless `configured` > 0, at least 1 for the top-k forms, else the
        configured value (0: the sampled token only)."""
        if self.teacher == "full":
            return vocab_size if configured <= 0 else configured
        if self.teacher == "topk":
            return max(configured, 1)
        return configured

    def compute_advantages(
        self,
        rewards: torch.Tensor,
        group_ids: torch.Tensor,
        is_ground_truth: torch.Tensor,
        options: dict[str, object],
    ) -> torch.Tensor:
        """Step-level advantages (N,) with the advantage options in `options` (others ignored)."""
        if self.advantage is None:
            raise ValueError(f"objective {self.name!r} takes no advantage")
        kwargs = self.split_options(options).advantage
        if self.ground_truth == "per_group":
            return self.advantage(rewards, group_ids, is_ground_truth.bool(), **kwargs)
        return self.advantage(rewards, group_ids, **kwargs)


def _topk_spec(name: str, fn: Objective, summary: str) -> ObjectiveSpec:
    """The spec of an objective on the teacher's top-k list (signal "topk")."""
    return ObjectiveSpec(
        name,
        _topk(name, fn),
        (fn,),
        ("mask", "student_logprob_rows", "teacher_topk_ids", "teacher_topk_logprobs"),
        summary,
        teacher="topk",
    )


OBJECTIVES: dict[str, ObjectiveSpec] = {
    spec.name: spec
    for spec in (
        ObjectiveSpec(
            "opd",
            _opd,
            (opd_loss,),
            ("logprobs", "mask", "teacher_logprobs"),
            "Video-OPD's sampled-token form (the paper): -sum_t r_t exp(logp - logp_old)",
            teacher="sampled",
        ),
        ObjectiveSpec(
            "opd_full_rkl",
            _opd_full_rkl,
            (opd_full_rkl_loss, opd_union_topk_rkl_loss),
            ("mask", "student_logprob_rows", "teacher_logprob_rows | teacher_topk_*"),
            "exact reverse KL per visited position (full rows), or over the union of top-k",
            teacher="full",
        ),
        _topk_spec("opd_topk_fkl", opd_topk_fkl_loss, "forward KL on the teacher's top-k support"),
        _topk_spec(
            "opd_topk_rkl",
            opd_topk_rkl_loss,
            "reverse KL on the teacher's top-k support, both renormalised on it",
        ),
        _topk_spec(
            "opd_topk_tail_fkl",
            opd_topk_tail_fkl_loss,
            "forward KL on the teacher's top-k plus a tail bucket (K values per position)",
        ),
        _topk_spec(
            "opd_topk_tail_rkl",
            opd_topk_tail_rkl_loss,
            "reverse KL on the teacher's top-k plus a tail bucket (K values per position)",
        ),
        ObjectiveSpec(
            "opd_k1",
            _direct("opd_k1", opd_k1_loss),
            (opd_k1_loss,),
            ("logprobs", "mask", "teacher_logprobs"),
            "k1 estimate of reverse KL on the sampled token, as a direct loss",
            teacher="sampled",
        ),
        ObjectiveSpec(
            "opd_k3",
            _direct("opd_k3", opd_k3_loss),
            (opd_k3_loss,),
            ("logprobs", "mask", "teacher_logprobs"),
            "k3 estimate of reverse KL on the sampled token, as a direct loss",
            teacher="sampled",
        ),
        ObjectiveSpec(
            "sft",
            _sft,
            (sft_loss,),
            ("logprobs", "mask"),
            "token-level cross-entropy on target completions (GT answers or teacher outputs)",
            samples=False,
            ground_truth="only",
            needs_labels=True,
        ),
        ObjectiveSpec(
            "seqkd",
            _sft,
            (sft_loss,),
            ("logprobs", "mask"),
            "sequence-level KD: supervised training on the teacher's cached answers",
            teacher="answers",
            samples=False,
            targets=teacher_answer_settings,
        ),
        ObjectiveSpec(
            "grpo",
            _policy_gradient("grpo", ground_truth_rows=False),
            (grpo_loss,),
            ("logprobs", "mask", "advantages"),
            "GRPO: group-normalised advantages, clipped ratio, optional KL to a reference",
            advantage=group_advantages,
            min_group_size=2,
            needs_labels=True,
        ),
        ObjectiveSpec(
            "tempsamp",
            _policy_gradient("tempsamp", ground_truth_rows=True),
            (grpo_loss,),
            ("logprobs", "mask", "advantages", "is_ground_truth"),
            "TempSamp-R1: GRPO with one ground-truth completion per group",
            ground_truth="per_group",
            reward="tempsamp",
            advantage=tempsamp_advantages,
            needs_labels=True,
        ),
    )
}

# Names that say which OPD form is meant.
ALIASES: dict[str, str] = {"opd_sampled_token": "opd", "opd_exact_rkl": "opd_full_rkl"}


def list_objectives() -> tuple[str, ...]:
    """The registered objective names."""
    return tuple(OBJECTIVES)


def canonical_name(name: str) -> str:
    """The registered name `name` stands for (an alias resolved); ValueError naming the known."""
    key = ALIASES.get(name, name)
    if key not in OBJECTIVES:
        known = ", ".join(list(OBJECTIVES) + list(ALIASES))
        raise ValueError(f"unknown objective {name!r}; known objectives: {known}")
    return key


def get_objective_spec(name: str) -> ObjectiveSpec:
    """The spec registered under `name` (or an alias); ValueError naming the known ones."""
    return OBJECTIVES[canonical_name(name)]


def _advantage_inputs(
    spec: ObjectiveSpec, inputs: ObjectiveInputs, split: SplitOptions
) -> ObjectiveInputs:
    """One batch treated as a whole step: advantages from its rewards and, with dynamic
    filtering, the rows of groups without signal masked out."""
    required = ["rewards", "group_ids"]
    if spec.ground_truth == "per_group":
        required.append("is_ground_truth")
    _need(spec.name, inputs, *required)
    rewards, groups = inputs.rewards, inputs.group_ids
    assert rewards is not None and groups is not None
    if inputs.is_ground_truth is not None:
        is_gt = inputs.is_ground_truth
    else:
        is_gt = torch.zeros_like(rewards, dtype=torch.bool)
    advantages = spec.compute_advantages(rewards, groups, is_gt, split.advantage)
    mask = inputs.mask
    if split.step.get("filter_zero_variance"):
        keep = groups_with_signal(advantages, groups).keep
        mask = mask.bool() & keep[:, None]
    return dataclasses.replace(inputs, advantages=advantages, mask=mask)


def get_objective(name: str) -> Callable[..., LossOutput]:
    """The loss registered under `name`, called as fn(inputs: ObjectiveInputs, **options).

    Raises ValueError for an unknown name; the returned function raises ValueError for an unknown
    option (naming it and the known ones), a missing input, a shape mismatch or a NaN / inf input
    (naming the tensor). For GRPO / TempSamp-R1 without `inputs.advantages`, the batch is taken
    as one whole step: advantages (and dynamic filtering) from its rewards and groups.
    """
    spec = get_objective_spec(name)

    def objective(inputs: ObjectiveInputs, **options: object) -> LossOutput:
        """Check the options, then run the objective (docstring replaced below)."""
        if not isinstance(inputs, ObjectiveInputs):
            raise TypeError(f"objective {spec.name!r} takes an ObjectiveInputs, got {type(inputs)}")
        split = spec.split_options(options)
        if spec.targets is not None:
            spec.targets(**split.targets)  # ValueError naming a bad setting
        if spec.name == "opd_full_rkl" and inputs.teacher_logprob_rows is not None:
            extra = [key for key in options if key not in _EXACT_RKL_OPTIONS]
            if extra:
                raise ValueError(
                    f"option(s) {extra} apply only to the union-of-top-k form of 'opd_full_rkl'"
                )
        if spec.advantage is not None and inputs.advantages is None:
            inputs = _advantage_inputs(spec, inputs, split)
        return spec.run(inputs, **split.loss)

    objective.__name__ = f"objective_{spec.name}"
    objective.__doc__ = f"{spec.summary}. Needs: {', '.join(spec.requires)}."
    return objective
