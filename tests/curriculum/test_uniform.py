"""The uniform sampler covers each epoch once, is seeded, and resumes exactly."""

from __future__ import annotations

import pytest

from curriculum.uniform import UniformSampler


def test_each_epoch_is_a_permutation_and_seeded() -> None:
    a, b = UniformSampler(10, seed=1), UniformSampler(10, seed=1)
    first = a.next_indices(10)
    assert sorted(first) == list(range(10))
    assert b.next_indices(10) == first
    assert UniformSampler(10, seed=2).next_indices(10) != first
    assert sorted(a.next_indices(10)) == list(range(10))


def test_resume_continues_the_same_sequence() -> None:
    full = UniformSampler(7, seed=3)
    expected = full.next_indices(20)
    part = UniformSampler(7, seed=3)
    head = part.next_indices(9)
    resumed = UniformSampler(7, seed=3)
    resumed.load_state_dict(part.state_dict())
    assert head + resumed.next_indices(11) == expected


def test_bad_state_and_empty_dataset() -> None:
    with pytest.raises(ValueError, match="empty dataset"):
        UniformSampler(0)
    with pytest.raises(ValueError, match="size 5"):
        UniformSampler(6).load_state_dict(UniformSampler(5).state_dict())
