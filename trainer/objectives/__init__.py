"""Training objectives as pure tensor functions (OPD and its variants, SFT, GRPO, TempSamp-R1).

Formulas, options, defaults and sources: docs/OBJECTIVES.md and each function's docstring. The
math modules import only torch; `trainer.objectives.rewards` (reward composition and the
TempSamp-R1 ground-truth completion text) is the one that imports tvg, and is not imported here.
"""

from trainer.objectives._common import (
    AGGREGATIONS,
    LossOutput,
    aggregate,
    resolve_aggregation,
)
from trainer.objectives.grpo import (
    GroupFilter,
    filter_zero_variance_groups,
    group_advantages,
    group_stats,
    grpo_loss,
    grpo_objective,
    kl_estimate,
)
from trainer.objectives.opd import (
    discounted_future_sum,
    gather_logprobs,
    k1,
    k2,
    k3,
    lookup_logprobs,
    opd_full_rkl_loss,
    opd_k1_loss,
    opd_k3_loss,
    opd_loss,
    opd_sampled_token_loss,
    opd_token_rewards,
    opd_topk_fkl_loss,
    opd_topk_rkl_loss,
    opd_union_topk_rkl_loss,
    reverse_kl_rows,
    rows_from_topk,
    union_topk_support,
)
from trainer.objectives.registry import (
    OBJECTIVES,
    ObjectiveInputs,
    ObjectiveSpec,
    get_objective,
    get_objective_spec,
    list_objectives,
)
from trainer.objectives.sft import sft_loss
from trainer.objectives.tempsamp import (
    CoTPhase,
    anchored_advantages,
    downscale_ground_truth_rewards,
    ground_truth_old_logprobs,
    hybrid_cot_phase,
    on_policy_reward_stats,
    tempsamp_advantages,
    tempsamp_loss,
)

__all__ = [
    "AGGREGATIONS",
    "OBJECTIVES",
    "CoTPhase",
    "GroupFilter",
    "LossOutput",
    "ObjectiveInputs",
    "ObjectiveSpec",
    "aggregate",
    "anchored_advantages",
    "discounted_future_sum",
    "downscale_ground_truth_rewards",
    "filter_zero_variance_groups",
    "gather_logprobs",
    "get_objective",
    "get_objective_spec",
    "ground_truth_old_logprobs",
    "group_advantages",
    "group_stats",
    "grpo_loss",
    "grpo_objective",
    "hybrid_cot_phase",
    "k1",
    "k2",
    "k3",
    "kl_estimate",
    "list_objectives",
    "lookup_logprobs",
    "on_policy_reward_stats",
    "opd_full_rkl_loss",
    "opd_k1_loss",
    "opd_k3_loss",
    "opd_loss",
    "opd_sampled_token_loss",
    "opd_token_rewards",
    "opd_topk_fkl_loss",
    "opd_topk_rkl_loss",
    "opd_union_topk_rkl_loss",
    "resolve_aggregation",
    "reverse_kl_rows",
    "rows_from_topk",
    "sft_loss",
    "tempsamp_advantages",
    "tempsamp_loss",
    "union_topk_support",
]
