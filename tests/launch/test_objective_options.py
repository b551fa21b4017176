"""Every objective, every alias and every option, walked through config -> step -> loss.

Each option an objective's spec accepts is loaded through `load_config` (as a user would set it),
applied by the driver's step logic (`assign_advantages`: advantages and dynamic filtering) and by
the learner's loss (`step_loss`, with its gradient), and must change what that step computes —
or be a `ConfigError` naming it where it would change nothing. A new option without a case here
fails `test_every_option_has_a_case`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from launch.config import ConfigError, load_config
from launch.step_logic import assign_advantages
from rollout.batch import RolloutBatch, Trajectory
from trainer.objectives.registry import (
    ALIASES,
    OPTION_CONDITIONS,
    UNION_ONLY_OPTIONS,
    get_objective_spec,
    list_objectives,
)
from trainer.step_loss import StepTotals, step_loss

VOCAB, TOPK = 6, 3
# (prompt, sampled rewards): group 0 varies; group 1's sampled rows all failed alike (its
# ground-truth row, for TempSamp-R1, scores 1.0: the group's only signal); group 2's rows all
# scored alike; group 3's rows all scored 1.0, like its ground-truth row (no signal at all).
GROUPS = ((0, (0.1, 0.5, 0.9, 0.2)), (1, (0.0, 0.0)), (2, (0.3, 0.3, 0.3)), (3, (1.0, 1.0)))

# option -> (value to set, the other options it needs to act). The value differs from the
# objective's default; `_value` flips booleans and picks another aggregation.
CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "aggregation": (None, {}),
    "kl_coef": (None, {}),
    "discount": (0.9, {}),
    "reward_clip": (0.3, {}),
    "baseline": ("batch_mean", {}),
    "student_k": (1, {}),
    "renormalize": (True, {}),
    "renormalize_teacher": (None, {}),
    "constant_normalizer": (2.0, {"aggregation": "seq_mean_token_sum_norm"}),
    "eps": (0.5, {}),
    "scale_by_std": (False, {}),
    "unbiased_std": (False, {}),
    "filter_zero_variance": (True, {}),
    "eps_low": (0.001, {}),
    "eps_high": (0.001, {}),
    "kl_estimator": ("k1", {"kl_coef": 0.5}),
    "variant": ("anchor", {}),
    "downscale_cap": (0.3, {"variant": "downscale"}),
    "downscale_max_reward": (2.0, {"variant": "downscale"}),
    "anchor_factor": (3.0, {"variant": "anchor"}),
    # Sequence-level KD's target options act on the teacher's answers (test_target_options_...).
    "teacher_samples": (3, {"teacher_temperature": 1.0}),
    "teacher_temperature": (0.7, {}),
    "regenerate_every": (2, {}),
}
TARGET_OPTIONS = ("teacher_samples", "teacher_temperature", "regenerate_every")


def _value(objective: str, option: str) -> Any:
    """A value of `option` that differs from the objective's default."""
    value = CASES[option][0]
    if value is not None:
        return value
    default = get_objective_spec(objective).option_default(option)
    if option == "aggregation":
        return "seq_mean_token_mean" if default != "seq_mean_token_mean" else "token_mean"
    if option == "kl_coef":
        return 2.0 * default if default else 0.5
    return not default


def _config(objective: str, options: dict[str, Any], top_k: int = 0):
    text = "{" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}"
    return load_config(
        None,
        [
            f"trainer.objective={objective}",
            "rollout.n=3",
            f"teacher.top_k={top_k}",
            f"trainer.objective_kwargs={text}",
        ],
    )


def _step(objective: str, options: dict[str, Any], top_k: int) -> dict[str, Any]:
    """One synthetic step through the driver's step logic and the learner's loss."""
    spec = get_objective_spec(objective)
    gen = torch.Generator().manual_seed(0)
    trajectories, logits = [], {}
    for prompt, rewards in GROUPS:
        rows = list(rewards) + ([1.0] if spec.ground_truth == "per_group" else [])
        for sample, reward in enumerate(rows):
            is_gt = sample >= len(rewards)
            n = 2 + (sample + prompt) % 3
            ids = torch.randint(0, VOCAB, (n,), generator=gen)
            teacher = torch.log_softmax(torch.randn(n, VOCAB, generator=gen), -1)
            student = torch.randn(n, VOCAB, generator=gen)
            current = torch.log_softmax(student, -1).gather(1, ids[:, None])[:, 0]
            # Behaviour log-probs near the current ones: ratios on both sides of 1.
            behaviour = current + 0.1 * torch.randn(n, generator=gen)
            top_lp, top_ids = teacher.topk(top_k or VOCAB, -1)
            traj = Trajectory(
                prompt_index=prompt,
                sample_index=sample,
                prompt_ids=np.array([1, 2]),
                completion_ids=ids.numpy(),
                logprobs=np.zeros(n, np.float32) if is_gt else behaviour.numpy(),
                finish_reason="stop",
                is_ground_truth=is_gt,
                teacher_logprobs=teacher.gather(1, ids[:, None])[:, 0].numpy(),
                teacher_topk_ids=top_ids.numpy(),
                teacher_topk_logprobs=top_lp.numpy(),
                ref_logprobs=None if is_gt else (behaviour - 0.4).numpy(),
                rewards={"total": reward},
            )
            trajectories.append(traj)
            logits[id(traj)] = student.requires_grad_()
    batch = RolloutBatch(prompts=[None] * len(GROUPS), trajectories=trajectories)
    stats = assign_advantages(batch, objective, options)
    kept = batch.trajectories
    scores = []
    for traj in kept:
        rows = torch.log_softmax(logits[id(traj)], -1)
        ids = torch.as_tensor(traj.completion_ids).long()
        score = {"logprobs": rows.gather(1, ids[:, None])[:, 0]}
        if spec.needs_rows:
            score["rows"] = rows
        scores.append(score)
    loss, metrics = step_loss(objective, kept, scores, options, StepTotals.of(kept))
    loss.backward()
    grads = torch.cat([logits[id(t)].grad.flatten() for t in kept])
    return {
        "kept": len(kept),
        "advantages": [t.rewards.get("advantage", 0.0) for t in kept],
        "loss": float(loss.detach()),
        "grads": grads,
        "stats": stats,
        "metrics": metrics,
    }


def _differs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["kept"] != b["kept"]:
        return True
    if not np.allclose(a["advantages"], b["advantages"], atol=1e-9):
        return True
    if abs(a["loss"] - b["loss"]) > 1e-7:
        return True
    return not torch.allclose(a["grads"], b["grads"], atol=1e-8)


def _top_k(objective: str, option: str) -> int:
    """The teacher's list length the option needs: shorter than the vocabulary for the
    union-of-top-k options of the exact reverse KL."""
    spec = get_objective_spec(objective)
    if option in UNION_ONLY_OPTIONS or spec.teacher == "topk":
        return TOPK
    return 0


def test_every_option_has_a_case() -> None:
    for name in list_objectives():
        missing = set(get_objective_spec(name).options()) - set(CASES)
        assert not missing, f"{name}: options without a case in this test: {missing}"


@pytest.mark.parametrize("name", [*list_objectives(), *ALIASES])
def test_names_and_aliases_resolve_once_in_the_config(name: str) -> None:
    config = _config(name, {})
    canonical = ALIASES.get(name, name)
    assert config.trainer.objective == canonical
    spec = get_objective_spec(canonical)
    # Everything downstream reads the canonical spec: an alias starts what its objective needs.
    assert spec.needs_teacher == (canonical.startswith("opd") or canonical == "seqkd")
    if name == "opd_exact_rkl":
        assert spec.teacher == "full" and spec.needs_rows
        assert spec.teacher_top_k(vocab_size=400, configured=0) == 400


@pytest.mark.parametrize(
    ("objective", "option"),
    [
        (name, option)
        for name in list_objectives()
        for option in get_objective_spec(name).options()
        if option not in TARGET_OPTIONS
    ],
)
def test_each_option_changes_the_step(objective: str, option: str) -> None:
    context = dict(CASES[option][1])
    top_k = _top_k(objective, option)
    base = _config(objective, context, top_k).trainer.objective_kwargs
    changed = _config(
        objective, {**context, option: _value(objective, option)}, top_k
    ).trainer.objective_kwargs
    a, b = _step(objective, base, top_k), _step(objective, changed, top_k)
    assert _differs(a, b), f"{objective}: {option}={changed[option]} changed nothing"


@pytest.mark.parametrize(
    ("objective", "option"),
    [
        (name, option)
        for name in list_objectives()
        for option in get_objective_spec(name).options()
        if option in OPTION_CONDITIONS
        or (option in UNION_ONLY_OPTIONS and get_objective_spec(name).teacher == "full")
    ],
)
def test_an_option_that_would_change_nothing_is_a_config_error(objective: str, option: str) -> None:
    # The setting each needs, turned off where the objective's default turns it on.
    off = {"eps": {"scale_by_std": False}, "unbiased_std": {"scale_by_std": False}}
    with pytest.raises(ConfigError, match=option):
        _config(objective, {**off.get(option, {}), option: _value(objective, option)}, top_k=0)


def test_bad_values_and_moved_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="variant"):
        _config("tempsamp", {"variant": "nope"})
    with pytest.raises(ConfigError, match="aggregation"):
        _config("grpo", {"aggregation": "mean_of_everything"})
    with pytest.raises(ConfigError, match="kl_estimator"):
        _config("grpo", {"kl_coef": 0.1, "kl_estimator": "k9"})
    with pytest.raises(ConfigError, match="unknown option"):
        _config("opd", {"filter_zero_variance": True})
    with pytest.raises(ConfigError, match="groups of >= 2"):
        load_config(None, ["trainer.objective=grpo", "rollout.n=1"])
    for old, new in (
        ("reward.dynamic_filtering=true", "filter_zero_variance"),
        ("reward.tempsamp_variant=anchor", "objective_kwargs.variant"),
    ):
        with pytest.raises(ConfigError, match=new):
            load_config(None, [old])


def test_dynamic_filtering_keeps_a_group_whose_ground_truth_row_carries_signal() -> None:
    on = {"filter_zero_variance": True}
    tempsamp = _step("tempsamp", on, 0)
    # Groups 1 and 2: the sampled rows scored alike but the ground-truth row (1.0) stands apart:
    # kept. Group 3: every row, the GT one included, scored 1.0: dropped.
    assert tempsamp["stats"]["zero_variance_groups"] == 3
    assert tempsamp["stats"]["dropped_groups"] == 1
    assert tempsamp["kept"] == (4 + 1) + (2 + 1) + (3 + 1)
    grpo = _step("grpo", on, 0)
    assert grpo["stats"]["dropped_groups"] == 3 and grpo["kept"] == 4
    assert grpo["stats"]["zero_variance_share"] == pytest.approx(3 / 4)


def test_the_reference_kl_covers_sampled_rows_only() -> None:
    # TempSamp-R1's injected rows carry no reference log-probs: the KL term must not count them
    # (a zero-filled reference there would be a huge, meaningless k3 value).
    run = _step("tempsamp", {"kl_coef": 0.5}, 0)
    assert np.isfinite(run["loss"])
    sampled = _step("grpo", {"kl_coef": 0.5}, 0)
    assert run["metrics"]["kl"] == pytest.approx(sampled["metrics"]["kl"], rel=0.5)


def test_a_micro_batch_of_ground_truth_rows_only_trains_with_a_kl_coefficient() -> None:
    # PPO mini-batches can hold only injected rows, which the reference never scores.
    options = {"kl_coef": 0.5}
    trajectories = []
    gen = torch.Generator().manual_seed(1)
    for prompt in range(2):
        ids = torch.randint(0, VOCAB, (3,), generator=gen)
        trajectories.append(
            Trajectory(
                prompt_index=prompt,
                sample_index=0,
                prompt_ids=np.array([1, 2]),
                completion_ids=ids.numpy(),
                logprobs=np.zeros(3, np.float32),
                finish_reason="stop",
                is_ground_truth=True,
                rewards={"total": 1.0, "advantage": 0.7},
            )
        )
    logits = torch.randn(2, 3, VOCAB, generator=gen, requires_grad=True)
    rows = torch.log_softmax(logits, -1)
    scores = [
        {"logprobs": rows[i].gather(1, torch.as_tensor(t.completion_ids).long()[:, None])[:, 0]}
        for i, t in enumerate(trajectories)
    ]
    totals = StepTotals.of(trajectories)
    loss, metrics = step_loss("tempsamp", trajectories, scores, options, totals)
    loss.backward()
    assert torch.isfinite(loss) and metrics["kl"] == 0.0


def test_adding_an_objective_is_one_function_and_its_registration(monkeypatch) -> None:
    # The worked example of docs/ARCHITECTURE.md: a leave-one-out baseline, registered once,
    # validates, computes its advantages in the step logic and trains through the loss.
    from trainer.objectives import grpo_loss, registry

    def rloo_advantages(rewards, group_ids, *, scale: float = 1.0):
        """Each row's reward minus the mean of the other rows of its group, times `scale`."""
        same = group_ids[:, None] == group_ids[None, :]
        others = same.sum(1) - 1
        total = (same * rewards[None, :]).sum(1) - rewards
        baseline = torch.where(others > 0, total / others.clamp_min(1), rewards)
        return scale * (rewards - baseline)

    spec = registry.ObjectiveSpec(
        "rloo",
        registry._policy_gradient("rloo", ground_truth_rows=False),
        (grpo_loss,),
        ("logprobs", "mask", "advantages"),
        "REINFORCE with a leave-one-out baseline",
        advantage=rloo_advantages,
        min_group_size=2,
        needs_labels=True,
    )
    monkeypatch.setitem(registry.OBJECTIVES, "rloo", spec)
    assert "scale" in spec.options() and "eps_low" in spec.options()
    with pytest.raises(ConfigError, match="groups of >= 2"):
        load_config(None, ["trainer.objective=rloo", "rollout.n=1"])
    with pytest.raises(ConfigError, match="unknown option"):
        _config("rloo", {"variant": "anchor"})
    base = _step("rloo", _config("rloo", {}).trainer.objective_kwargs, 0)
    scaled = _step("rloo", _config("rloo", {"scale": 2.0}).trainer.objective_kwargs, 0)
    assert base["advantages"][0] == pytest.approx(0.1 - (0.5 + 0.9 + 0.2) / 3)
    assert _differs(base, scaled) and np.isfinite(base["loss"])


class _FakeTeacherEngines:
    """Records what the teacher's generation engines are asked (a unit test of the cache logic;
    the real engines run in tests/launch/test_driver.py)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int, float, int | None]] = []

    def sample(self, prompts, n, sampling):
        self.calls.append(([p.sample_id for p in prompts], n, sampling.temperature, sampling.seed))
        trajectories = [
            Trajectory(
                prompt_index=i,
                sample_index=k,
                prompt_ids=np.array([1]),
                completion_ids=np.array([5, 6]),
                logprobs=np.zeros(2, np.float32),
                finish_reason="stop",
                text=f"{p.sample_id}:{k}:{len(self.calls)}",
            )
            for i, p in enumerate(prompts)
            for k in range(n)
        ]
        return RolloutBatch(prompts=list(prompts), trajectories=trajectories)


def _answers(options: dict[str, Any]) -> tuple[list[list[list[str]]], _FakeTeacherEngines]:
    """Three steps of teacher answers for prompts a, b, then b, c, then a, c."""
    from types import SimpleNamespace

    from launch.teacher_answers import TeacherAnswers

    spec = get_objective_spec("seqkd")
    kwargs = _config("seqkd", options).trainer.objective_kwargs
    engines = _FakeTeacherEngines()
    cache = TeacherAnswers(
        engines, spec.targets(**spec.split_options(kwargs).targets), max_tokens=8, seed=0
    )
    steps = [["a", "b"], ["b", "c"], ["a", "c"]]
    out = [
        cache.answers_for([SimpleNamespace(sample_id=i) for i in ids], step)
        for step, ids in enumerate(steps)
    ]
    return out, engines


@pytest.mark.parametrize("option", TARGET_OPTIONS)
def test_target_options_change_the_teachers_answers(option: str) -> None:
    context = dict(CASES[option][1])
    base, base_engines = _answers(context)
    changed, engines = _answers({**context, option: _value("seqkd", option)})
    assert (base, base_engines.calls) != (changed, engines.calls)
    if option == "teacher_samples":
        assert all(len(a) == 3 for step in changed for a in step)
    if option == "teacher_temperature":
        assert {c[2] for c in engines.calls} == {0.7}
    if option == "regenerate_every":
        # Prompt a (answered at step 0) is asked again at step 2; by default it never is.
        assert [c[0] for c in engines.calls] == [["a", "b"], ["c"], ["a"]]
        assert [c[0] for c in base_engines.calls] == [["a", "b"], ["c"]]


def test_teacher_answers_are_cached_and_greedy_by_default() -> None:
    answers, engines = _answers({})
    assert [c[1:3] for c in engines.calls] == [(1, 0.0), (1, 0.0)]  # one greedy answer each
    assert answers[2][0] == answers[0][0]  # a's answer reused at step 2
    with pytest.raises(ConfigError, match="teacher_temperature"):
        _config("seqkd", {"teacher_samples": 4})  # greedy answers would all be equal
