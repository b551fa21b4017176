"""Micro-batch weighting: split losses add up to the whole-batch loss, for every objective."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rollout.batch import Trajectory
from trainer.step_loss import StepTotals, aggregation_of, step_loss

LENGTHS = (3, 5, 2, 4)


def _batch(seed: int = 0, vocab: int = 6):
    gen = torch.Generator().manual_seed(seed)
    trajectories, scores = [], []
    for i, n in enumerate(LENGTHS):
        rows = torch.log_softmax(torch.randn(n, vocab, generator=gen), -1)
        ids = torch.randint(0, vocab, (n,), generator=gen)
        teacher_rows = torch.log_softmax(torch.randn(n, vocab, generator=gen), -1)
        old = rows.gather(1, ids[:, None])[:, 0] + 0.05 * torch.randn(n, generator=gen)
        trajectories.append(
            Trajectory(
                prompt_index=i // 2,
                sample_index=i % 2,
                prompt_ids=np.array([1, 2]),
                completion_ids=ids.numpy(),
                logprobs=old.numpy(),
                finish_reason="stop",
                teacher_logprobs=teacher_rows.gather(1, ids[:, None])[:, 0].numpy(),
                teacher_topk_ids=torch.arange(vocab).expand(n, vocab).numpy(),
                teacher_topk_logprobs=teacher_rows.numpy(),
                rewards={"total": float(i), "advantage": float(i) - 1.5},
            )
        )
        scores.append({"logprobs": rows.gather(1, ids[:, None])[:, 0], "rows": rows})
    return trajectories, scores


@pytest.mark.parametrize(
    "objective", ["opd", "opd_full_rkl", "opd_topk_fkl", "opd_topk_rkl", "sft", "grpo", "tempsamp"]
)
@pytest.mark.parametrize("aggregation", [None, "token_mean", "seq_mean_token_mean", "sum"])
def test_micro_batches_add_up_to_the_whole_batch(objective: str, aggregation: str | None) -> None:
    trajectories, scores = _batch()
    options = {} if aggregation is None else {"aggregation": aggregation}
    totals = StepTotals.of(trajectories)
    whole, _ = step_loss(objective, trajectories, scores, options, totals)
    parts = [
        step_loss(objective, trajectories[a:b], scores[a:b], options, totals)[0]
        for a, b in ((0, 1), (1, 3), (3, 4))
    ]
    assert torch.allclose(sum(parts), whole, atol=1e-5), (
        objective,
        float(sum(parts)),
        float(whole),
    )


def test_default_aggregations() -> None:
    assert aggregation_of("opd", {}) == "seq_mean_token_sum"
    assert aggregation_of("sft", {}) == "token_mean"
    assert aggregation_of("grpo", {"aggregation": "seq_mean"}) == "seq_mean_token_mean"


def test_advantage_objectives_need_driver_advantages() -> None:
    trajectories, scores = _batch()
    trajectories[0].rewards.pop("advantage")
    with pytest.raises(ValueError, match="no 'advantage'"):
        step_loss("grpo", trajectories, scores, {}, StepTotals.of(trajectories))


def test_read_only_arrays_from_ray_give_no_warning() -> None:
    """Trajectories arrive through Ray's object store with read-only arrays: building the loss
    inputs copies them without torch's "NumPy array is not writable" warning."""
    import warnings

    trajectories, scores = _batch()
    for traj in trajectories:
        for value in vars(traj).values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
    totals = StepTotals.of(trajectories)
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch gives this warning once per process otherwise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for objective in ("opd", "opd_full_rkl", "opd_topk_fkl", "sft", "grpo", "tempsamp"):
                step_loss(objective, trajectories, scores, {}, totals)
    finally:
        torch.set_warn_always(warn_always)


@pytest.mark.parametrize("objective", ["opd", "opd_full_rkl", "opd_topk_fkl", "opd_topk_tail_rkl"])
def test_teacher_values_computed_on_the_rank_equal_shipped_ones(objective: str) -> None:
    # A co-located teacher puts its values in the scores instead of the trajectories.
    trajectories, scores = _batch()
    totals = StepTotals.of(trajectories)
    shipped, _ = step_loss(objective, trajectories, scores, {}, totals)
    local_scores = []
    for traj, score in zip(trajectories, scores, strict=True):
        rows = torch.as_tensor(traj.teacher_topk_logprobs)  # the whole distribution, id order
        local = dict(score)
        local["teacher_logprobs"] = torch.as_tensor(traj.teacher_logprobs)
        local["teacher_rows"] = rows
        top_lp, top_ids = rows.topk(rows.shape[-1], -1)
        local["teacher_topk_ids"], local["teacher_topk_logprobs"] = top_ids, top_lp
        local_scores.append(local)
    bare = [
        dataclasses.replace(
            t, teacher_logprobs=None, teacher_topk_ids=None, teacher_topk_logprobs=None
        )
        for t in trajectories
    ]
    local_loss, _ = step_loss(objective, bare, local_scores, {}, totals)
    assert local_loss.item() == pytest.approx(shipped.item(), rel=1e-5)


def test_inputs_stay_on_the_device_of_the_learner_scores() -> None:
    """A GPU learner's log-probs (and a co-located teacher's rows) are padded on their own
    device: no CPU tensor meets them (the meta device stands in for CUDA here; a CPU pad raised
    "Expected all tensors to be on the same device" on the first GPU run)."""
    from trainer.step_loss import objective_inputs

    trajectories = [
        Trajectory(
            prompt_index=0,
            sample_index=i,
            prompt_ids=np.zeros(3, np.int32),
            completion_ids=np.zeros(n, np.int32),
            logprobs=np.zeros(n, np.float32),
            finish_reason="stop",
        )
        for i, n in enumerate((3, 5))
    ]
    scores = [
        {
            "logprobs": torch.zeros(n, device="meta", requires_grad=True),
            "teacher_logprobs": torch.zeros(n, device="meta"),
            "teacher_rows": torch.zeros(n, 7, device="meta"),
        }
        for n in (3, 5)
    ]
    inputs = objective_inputs(trajectories, scores)
    assert inputs.logprobs.shape == (2, 5)
    tensors = [getattr(inputs, f.name) for f in dataclasses.fields(inputs)]
    assert all(t.device.type == "meta" for t in tensors if isinstance(t, torch.Tensor))
