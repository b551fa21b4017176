"""FLOPs accounting: the estimate's arithmetic and a sane measured peak."""

from __future__ import annotations

import math

from launch.flops import learner_flops, measure_matmul_peak, mfu


def test_flops_estimate_and_mfu() -> None:
    assert learner_flops(1000, 10) == 60_000
    assert learner_flops(1000, 10, extra_forward_tokens=5) == 70_000
    # The LM head counts only at the positions with logits (the completions).
    assert learner_flops(1000, 10, 0, head_params=100, trained_head_tokens=4) == 60_000 + 2_400
    assert learner_flops(1000, 10, 5, 100, 4, extra_head_tokens=4) == 70_000 + 2_400 + 800
    assert mfu(1e9, 2.0, 1e9, 2) == 0.25
    assert math.isnan(mfu(1.0, 0.0, 1e9, 1))


def test_measured_peak_is_plausible() -> None:
    peak = measure_matmul_peak(size=256, repeats=5)
    assert 1e8 < peak < 1e13
