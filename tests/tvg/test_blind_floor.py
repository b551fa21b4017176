"""The duration-only baseline (tvg.blind_floor)."""

from __future__ import annotations

import numpy as np
import pytest

from tvg.blind_floor import blind_miou, fit_blind_answer


def test_recovers_a_fixed_relative_span():
    durations = [10.0, 20.0, 40.0]
    spans = [[0.25 * d, 0.75 * d] for d in durations]
    fitted = fit_blind_answer(durations, spans, grid_step=0.05)
    assert (fitted.a, fitted.b) == (0.25, 0.75)
    assert fitted.miou == pytest.approx(100.0)
    assert blind_miou(durations, spans, 0.25, 0.75) == pytest.approx(100.0)
    near = fit_blind_answer(durations, spans)  # default grid step 0.02: the nearest grid pair
    assert (near.a, near.b) in {(0.24, 0.76), (0.26, 0.74), (0.24, 0.74), (0.26, 0.76)}


def test_fitted_miou_matches_scalar_iou_and_is_the_grid_optimum():
    rng = np.random.default_rng(0)
    durations = rng.uniform(10, 60, 200)
    starts = rng.uniform(0, 0.7, 200) * durations
    spans = np.stack([starts, starts + rng.uniform(0.05, 0.3, 200) * durations], axis=1)
    fitted = fit_blind_answer(durations, spans, grid_step=0.05)
    assert fitted.miou == pytest.approx(blind_miou(durations, spans, fitted.a, fitted.b))
    for a, b in [(0.0, 1.0), (0.2, 0.6), (0.3, 0.7), (0.1, 0.5)]:
        assert blind_miou(durations, spans, a, b) <= fitted.miou + 1e-9


def test_bad_arguments():
    with pytest.raises(ValueError):
        fit_blind_answer([], [])
    with pytest.raises(ValueError):
        fit_blind_answer([10.0], [[1.0, 2.0]], grid_step=0.3)
    assert np.isnan(blind_miou([], [], 0.2, 0.8))
