"""Frame selection and frame size rules (tvg.video_sampling, tvg.video_settings)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvg.video_sampling import fit_frame_size, frame_size_for, sample_frame_indices
from tvg.video_settings import VideoSettings


def test_indices_at_target_fps_are_slice_centres():
    # 30 frames at 10 fps, sampled at 2 fps: 6 frames, one per 0.5 s slice (5 source frames).
    assert sample_frame_indices(30, 10.0, 2.0, 768) == [2, 7, 12, 17, 22, 27]


def test_target_fps_above_source_takes_every_frame_once():
    assert sample_frame_indices(8, 1.0, 2.0, 768) == list(range(8))


def test_odd_count_repeats_the_last_index():
    assert sample_frame_indices(9, 1.0, 2.0, 768) == [*range(9), 8]
    assert sample_frame_indices(1, 25.0, 2.0, 768) == [0, 0]


def test_odd_cap_drops_the_last_index():
    indices = sample_frame_indices(100, 1.0, 1.0, 5)
    assert len(indices) == 4


def test_frame_cap_spreads_over_the_whole_video():
    indices = sample_frame_indices(9000, 30.0, 2.0, 16)
    assert len(indices) == 16
    assert indices == sorted(indices)
    assert indices[0] < 9000 / 16 and indices[-1] > 9000 * 15 / 16


@given(
    total=st.integers(1, 5000),
    source_fps=st.floats(0.5, 120.0),
    fps=st.floats(0.1, 10.0),
    cap=st.integers(2, 800),
)
@settings(max_examples=200, deadline=None)
def test_indices_properties(total, source_fps, fps, cap):
    indices = sample_frame_indices(total, source_fps, fps, cap)
    assert len(indices) % 2 == 0 and 2 <= len(indices) <= cap
    assert all(0 <= i < total for i in indices)
    assert indices == sorted(indices)
    assert len(set(indices)) >= len(indices) - 1  # at most the one repeated last index


@pytest.mark.parametrize("bad", [(0, 1.0, 1.0, 8), (5, 0.0, 1.0, 8), (5, 1.0, 1.0, 1)])
def test_indices_reject_bad_arguments(bad):
    with pytest.raises(ValueError):
        sample_frame_indices(*bad)


def test_size_within_budget_and_multiple_of_factor():
    h, w = fit_frame_size(360, 640, max_pixels=128 * 32 * 32, min_pixels=1024, size_factor=32)
    assert (h % 32, w % 32) == (0, 0)
    assert h * w <= 128 * 32 * 32
    assert abs(w / h - 640 / 360) < 0.15


def test_size_never_upsamples_small_frames():
    assert fit_frame_size(100, 100, max_pixels=10**6, min_pixels=1024, size_factor=32) == (96, 96)
    assert fit_frame_size(32, 32, max_pixels=10**6, min_pixels=1024, size_factor=32) == (32, 32)


def test_size_grows_only_to_reach_the_minimum():
    assert fit_frame_size(20, 20, max_pixels=10**6, min_pixels=1024, size_factor=32) == (32, 32)
    h, w = fit_frame_size(40, 40, max_pixels=10**6, min_pixels=64 * 64, size_factor=32)
    assert (h, w) == (64, 64)


def test_size_factor_is_configurable():
    h, w = fit_frame_size(480, 640, max_pixels=200_000, min_pixels=784, size_factor=28)
    assert (h % 28, w % 28) == (0, 0) and h * w <= 200_000


@given(
    height=st.integers(8, 2000),
    aspect=st.floats(0.25, 4.0),
    tokens=st.integers(4, 1000),
    factor=st.sampled_from([14, 16, 28, 32]),
)
@settings(max_examples=200, deadline=None)
def test_size_properties(height, aspect, tokens, factor):
    width = max(1, round(height * aspect))
    budget = tokens * factor * factor
    h, w = fit_frame_size(
        height, width, max_pixels=budget, min_pixels=factor**2, size_factor=factor
    )
    assert h % factor == 0 and w % factor == 0
    assert h * w <= budget
    assert h <= max(height, factor) and w <= max(width, factor)


def test_total_pixel_budget_shrinks_frames():
    per_frame = VideoSettings()
    total = VideoSettings(max_total_pixels=64 * 32 * 32 * 10)
    big = frame_size_for(720, 1280, 10, per_frame)
    small = frame_size_for(720, 1280, 10, total)
    assert small[0] * small[1] <= 64 * 32 * 32 < big[0] * big[1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0},
        {"max_frames": 1},
        {"min_pixels": 10, "max_pixels": 5},
        {"max_pixels": 100},
        {"backend": "opencv"},
        {"max_total_pixels": 0},
    ],
)
def test_settings_reject_bad_values(kwargs):
    with pytest.raises(ValueError):
        VideoSettings(**kwargs)
