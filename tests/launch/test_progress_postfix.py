"""The training progress bar's postfix (launch.driver.progress_postfix): metrics the step has."""

from __future__ import annotations

from launch.driver import progress_postfix


def test_sampling_objectives_show_the_iou() -> None:
    last = {"loss": 1.23456, "iou_mean": 0.5, "val": {"mIoU": 41.26}}
    assert progress_postfix(last) == {"loss": "1.235", "iou": "0.50", "val_mIoU": "41.3"}


def test_sft_has_no_iou_to_show() -> None:
    # An SFT step samples nothing: batch_metrics gives iou_mean = nan.
    assert progress_postfix({"loss": 3.6, "iou_mean": float("nan")}) == {"loss": "3.600"}
    assert progress_postfix({"loss": 3.6}) == {"loss": "3.600"}


def test_the_step_leads_under_a_wall_clock_budget() -> None:
    postfix = progress_postfix({"loss": 1.0, "iou_mean": 0.0}, step=7)
    assert list(postfix) == ["step", "loss", "iou"] and postfix["step"] == "7"
