"""TVDF and difficulty samplers: selection, determinism by seed, refresh policies, exact resume,
and the factory / config the driver uses."""

from __future__ import annotations

import numpy as np
import pytest

from curriculum.difficulty import DifficultySampler
from curriculum.factory import build_sampler
from curriculum.refresh import RefreshPolicy
from curriculum.rules import TVDFRule, difficulty_weights
from curriculum.tvdf import TVDFSampler
from curriculum.uniform import UniformSampler
from launch.config import ConfigError, CurriculumConfig, load_config

# Eight samples; teacher k = 2. Reliable (mean >= 0.5): all but 1 and 6.
TEACHER = np.array(
    [
        [0.9, 0.9],
        [0.2, 0.2],
        [0.8, 1.0],
        [0.6, 0.6],
        [1.0, 1.0],
        [0.7, 0.5],
        [0.1, 0.3],
        [0.75, 0.75],
    ]
)
STUDENT_0 = np.array([0.1, 0.0, 0.9, 0.0, 0.5, 0.6, 0.0, 0.25])
# delta_0 = [0.8, 0.2, 0.0, 0.6, 0.5, 0.0, 0.2, 0.5] -> top 4 reliable: 0, 3, 4, 7 (tie: lowest)
STUDENT_1 = np.array([0.9, 0.0, 0.1, 0.6, 0.9, 0.0, 0.0, 0.75])
# delta_1 = [0.0, 0.2, 0.8, 0.0, 0.1, 0.6, 0.2, 0.0] -> top 4 reliable: 2, 5, 4, 0 (tie: lowest)


def _tvdf(stub_scorer, policy: RefreshPolicy | None = None, seed: int = 0, rule: str = "top_k"):
    scorer = stub_scorer(TEACHER, [STUDENT_0, STUDENT_1])
    return TVDFSampler(8, scorer, TVDFRule(rule=rule, size=4, tau=0.5), policy, seed), scorer


def test_tvdf_draws_only_the_selected_subset_each_epoch_a_permutation(stub_scorer) -> None:
    sampler, scorer = _tvdf(stub_scorer)
    assert sampler.needs_refresh(0)
    with pytest.raises(RuntimeError, match="no selection"):
        sampler.next_indices(2)
    summary = sampler.refresh("the-rollout-group", step=0)
    assert scorer.predictors == ["the-rollout-group"]  # the student is the run's current engines
    assert sampler.subset == [0, 3, 4, 7]
    assert summary["selected"] == 4 and summary["reliable"] == 6 and summary["round"] == 0
    drawn = sampler.next_indices(12)
    for epoch in range(3):
        assert sorted(drawn[4 * epoch : 4 * epoch + 4]) == [0, 3, 4, 7]
    assert not sampler.needs_refresh(3)  # refresh "none": one selection for the whole run


def test_tvdf_is_deterministic_by_seed(stub_scorer) -> None:
    for rule in ("top_k", "uniform", "bucket", "gaussian"):
        a, _ = _tvdf(stub_scorer, seed=4, rule=rule)
        b, _ = _tvdf(stub_scorer, seed=4, rule=rule)
        a.refresh(None, 0)
        b.refresh(None, 0)
        assert a.subset == b.subset and a.next_indices(10) == b.next_indices(10)
    orders = set()
    for seed in range(6):
        c, _ = _tvdf(stub_scorer, seed=seed)
        c.refresh(None, 0)
        assert sorted(c.subset) == [0, 3, 4, 7]  # top_k's subset does not depend on the seed
        orders.add(tuple(c.next_indices(4)))
    assert len(orders) > 1  # the order within a round does


def test_rounds_refresh_recomputes_delta_with_the_current_student(stub_scorer) -> None:
    sampler, scorer = _tvdf(stub_scorer, RefreshPolicy("rounds"))
    sampler.refresh(None, 0)
    sampler.next_indices(3)
    assert not sampler.needs_refresh(1)
    sampler.next_indices(1)  # the round's 4 samples have all been seen
    assert sampler.needs_refresh(2)
    summary = sampler.refresh(None, 2)
    assert sampler.subset == [2, 5, 4, 0] and summary["round"] == 1
    assert scorer.student_calls == 2
    assert set(sampler.next_indices(4)) == {0, 2, 4, 5}


def test_online_refresh_every_k_steps(stub_scorer) -> None:
    sampler, scorer = _tvdf(stub_scorer, RefreshPolicy("online", every=3))
    due = []
    for step in range(10):
        if sampler.needs_refresh(step):
            sampler.refresh(None, step)
            due.append(step)
        sampler.next_indices(2)
    assert due == [0, 3, 6, 9]
    assert scorer.student_calls == 4 and sampler.round == 3
    assert not sampler.needs_refresh(9)  # not twice at one step
    with pytest.raises(ValueError, match="K >= 1"):
        RefreshPolicy("online", every=0)
    with pytest.raises(ValueError, match="refresh mode"):
        RefreshPolicy("sometimes")


def test_tvdf_resumes_exactly_without_rescoring(stub_scorer) -> None:
    full, _ = _tvdf(stub_scorer, RefreshPolicy("rounds"), seed=2)
    full.refresh(None, 0)
    expected = full.next_indices(3)
    full.refresh(None, 1)
    expected += full.next_indices(6)

    part, _ = _tvdf(stub_scorer, RefreshPolicy("rounds"), seed=2)
    part.refresh(None, 0)
    head = part.next_indices(3)
    part.refresh(None, 1)
    head += part.next_indices(2)
    resumed, scorer = _tvdf(stub_scorer, RefreshPolicy("rounds"), seed=2)
    resumed.load_state_dict(part.state_dict())
    assert not resumed.needs_refresh(2) and scorer.student_calls == 0
    assert head + resumed.next_indices(4) == expected
    with pytest.raises(ValueError, match="kind/size/seed"):
        _tvdf(stub_scorer, seed=3)[0].load_state_dict(part.state_dict())


def test_tvdf_with_no_reliable_sample_says_what_to_change(stub_scorer) -> None:
    scorer = stub_scorer(np.zeros((3, 2)), [np.zeros(3)])
    sampler = TVDFSampler(3, scorer, TVDFRule(tau=0.5), seed=0)
    with pytest.raises(ValueError, match="tau_teacher"):
        sampler.refresh(None, 0)


def test_difficulty_sampler_draws_by_the_timelens_weights(stub_scorer) -> None:
    ious = np.array([0.0, 0.05, 0.1, 0.5, 0.9, 0.95])
    probs = difficulty_weights(ious)
    sampler = DifficultySampler(6, stub_scorer(None, [ious]), seed=1)
    sampler.refresh(None, 0)
    drawn = sampler.next_indices(30_000)
    assert np.bincount(drawn, minlength=6) / 30_000 == pytest.approx(probs, abs=0.01)
    again = DifficultySampler(6, stub_scorer(None, [ious]), seed=1)
    again.refresh(None, 0)
    assert again.next_indices(50) == drawn[:50]
    part = DifficultySampler(6, stub_scorer(None, [ious]), seed=1)
    part.refresh(None, 0)
    part.next_indices(20)
    resumed = DifficultySampler(6, stub_scorer(None, [ious]), seed=1)
    resumed.load_state_dict(part.state_dict())
    assert resumed.next_indices(30) == drawn[20:50]


def test_factory_builds_the_configured_sampler(make_prompts, tmp_path) -> None:
    prompts = make_prompts(5)
    assert isinstance(build_sampler(CurriculumConfig(), prompts, seed=0), UniformSampler)
    config = CurriculumConfig(kind="tvdf", rule="bucket", subset_size=3, tau_teacher=0.4)
    config.cache_dir = str(tmp_path)
    sampler = build_sampler(config, prompts, seed=7)
    assert isinstance(sampler, TVDFSampler) and sampler.seed == 7
    assert sampler.rule == TVDFRule(rule="bucket", size=3, tau=0.4)
    assert sampler.scorer.teacher.k == 4 and sampler.scorer.student.k == 1
    config.kind, config.refresh, config.refresh_every = "difficulty", "online", 5
    sampler = build_sampler(config, prompts, seed=7)
    assert isinstance(sampler, DifficultySampler) and sampler.policy.every == 5
    assert (sampler.mean, sampler.sigma, sampler.bins) == (0.05, 0.2, 20)


def test_config_validates_the_curriculum_section() -> None:
    config = load_config(None, ["curriculum.kind=tvdf", "curriculum.rule=gaussian"])
    assert config.curriculum.kind == "tvdf" and config.curriculum.gaussian_center == 0.9
    for bad in (
        "curriculum.kind=hardest",
        "curriculum.rule=best",
        "curriculum.tau_teacher=1.5",
        "curriculum.refresh=online",  # without K
        "curriculum.teacher_temperature=0",
    ):
        with pytest.raises(ConfigError, match="curriculum"):
            load_config(None, [bad])
