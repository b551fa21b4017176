"""The TRL peer's pure parts: time to a share of the teacher's gain from eval points, the ledger
medians and the comparison table (benchmarks/summarize_runs.py, benchmarks/compare_peer.py), and,
where TRL is installed, that its loss on masked logits is our exact reverse KL.

Synthetic records and tensors only: no model is loaded, nothing is timed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


summ = _load("summarize_runs.py")


def _records() -> list[dict]:
    return [
        {"step": 0, "train_seconds": 0.0, "val": {"mIoU": 20.0}, "time": {"eval": 2.0}},
        {"step": 1, "train_seconds": 1.0, "time": {"generate": 0.5, "learner": 0.5, "step": 1.0}},
        {
            "step": 2,
            "train_seconds": 3.0,
            "val": {"mIoU": 65.0},
            "time": {"generate": 1.0, "learner": 1.0, "step": 4.0, "eval": 2.0},
        },
        {"step": 3, "train_seconds": 4.0, "time": {"generate": 0.5, "learner": 0.5, "step": 1.0}},
        {"step": 4, "train_seconds": 5.0, "val": {"mIoU": 92.0}, "time": {"step": 1.0}},
    ]


def test_eval_points_keep_records_with_a_val_mIoU() -> None:
    assert summ.eval_points(_records()) == [(0.0, 20.0), (3.0, 65.0), (5.0, 92.0)]
    assert summ.eval_points([{"step": 1, "train_seconds": 1.0, "val": {}}]) == []


def test_time_to_gain_is_the_first_point_at_each_level() -> None:
    # start 20, teacher 100: levels 60, 84, 92.
    points = [(5.0, 92.0), (0.0, 20.0), (3.0, 65.0)]
    assert summ.time_to_gain(points, 20.0, 100.0) == {"50%": 3.0, "80%": 5.0, "90%": 5.0}


def test_time_to_gain_is_none_where_never_reached_and_needs_a_gain() -> None:
    assert summ.time_to_gain([(0.0, 20.0), (9.0, 59.9)], 20.0, 100.0)["50%"] is None
    assert summ.time_to_gain([], 20.0, 100.0) == {"50%": None, "80%": None, "90%": None}
    with pytest.raises(ValueError, match="must exceed"):
        summ.time_to_gain([(0.0, 20.0)], 50.0, 50.0)


def test_a_dip_after_the_level_does_not_move_the_time() -> None:
    points = [(0.0, 0.0), (1.0, 55.0), (2.0, 10.0), (3.0, 70.0)]
    assert summ.time_to_gain(points, 0.0, 100.0, (0.5,)) == {"50%": 1.0}


def test_gain_bracket_is_the_last_point_below_and_the_first_at_each_level() -> None:
    # start 20, teacher 100: levels 60, 84, 92; the 80% level is crossed between 3 s and 5 s.
    points = [(5.0, 92.0), (0.0, 20.0), (3.0, 65.0), (4.0, 50.0)]
    assert summ.gain_bracket(points, 20.0, 100.0) == {
        "50%": [0.0, 3.0],
        "80%": [4.0, 5.0],
        "90%": [4.0, 5.0],
    }
    # reached at the first point: the lower end is the start (0 s); never reached: None.
    assert summ.gain_bracket([(2.0, 95.0)], 20.0, 100.0)["90%"] == [0.0, 2.0]
    assert summ.gain_bracket([(0.0, 20.0), (9.0, 59.9)], 20.0, 100.0)["50%"] is None


def test_median_times_over_training_steps_and_clock() -> None:
    medians = summ.median_times(_records())
    assert medians["generate"] == 0.5
    assert medians["step"] == 1.0
    assert medians["eval"] == 2.0  # only the steps that evaluated (step 0 is the start)
    assert medians["train_step"] == 1.0  # clock increments 1, 2, 1, 1


def test_compare_row_and_table() -> None:
    compare = _load("compare_peer.py")
    row = compare.compare_row(_records(), 20.0, 100.0)
    assert row["steps"] == 4 and row["train_seconds"] == 5.0
    assert row["time_to_gain"] == {"50%": 3.0, "80%": 5.0, "90%": 5.0}
    assert row["time_to_gain_bracket"]["80%"] == [3.0, 5.0]
    assert row["final_val_mIoU"] == 92.0 and row["best_val_mIoU"] == 92.0
    table = compare.format_table({"peer": row})
    assert "t50%" in table.splitlines()[0]
    assert table.splitlines()[1].startswith("peer")


def test_peer_loss_is_our_exact_reverse_kl() -> None:
    pytest.importorskip("trl")
    import torch

    from trainer.objectives.opd import opd_full_rkl_loss

    peer = _load("trl_peer.py")
    gkd = peer.import_gkd_trainer()
    torch.manual_seed(0)
    batch, length, vocab, num_tokens, banned = 3, 5, 12, 10, [1, 4]
    student_raw = torch.randn(batch, length, vocab, requires_grad=True)
    teacher_raw = torch.randn(batch, length, vocab)
    labels = torch.randint(0, num_tokens, (batch, length))
    labels[0, 3:] = -100
    labels[2, :2] = -100
    student = peer.masked_logits(student_raw, banned, num_tokens)
    teacher = peer.masked_logits(teacher_raw, banned, num_tokens)
    mask = labels != -100

    from runtime.hf_scoring import masked_log_softmax

    ours = opd_full_rkl_loss(
        masked_log_softmax(student_raw, banned, 1.0, num_tokens),
        masked_log_softmax(teacher_raw, banned, 1.0, num_tokens),
        mask,
        aggregation="seq_mean_token_sum",
    )
    seq_sum = peer.peer_loss(gkd, student, teacher, labels, "seq_sum")
    assert torch.allclose(seq_sum, ours.loss, atol=1e-5)
    token_mean = peer.peer_loss(gkd, student, teacher, labels, "batchmean")
    assert torch.allclose(token_mean, ours.metrics["reverse_kl"], atol=1e-5)
    token_mean.backward()
    assert torch.isfinite(student_raw.grad).all()
    assert student_raw.grad[..., banned].abs().max() == 0


def test_missing_trl_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    peer = _load("trl_peer.py")
    for name in ("trl", "trl.experimental", "trl.experimental.gkd"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SystemExit, match=r"\.\[bench\]"):
        peer.import_gkd_trainer()


def test_eval_grid_in_steps_or_seconds() -> None:
    """`--eval-every-steps` (our runs' grid) replaces the seconds grid; the two do not mix."""
    peer = _load("trl_peer.py")
    assert [s for s in range(1, 80) if peer.eval_due(s, 999.0, 0.0, 25)] == [25, 50, 75]
    assert not peer.eval_due(3, 19.9, 20.0, None) and peer.eval_due(4, 20.0, 20.0, None)
    assert peer.parse_args(["--out", "x", "--eval-every-steps", "25"]).eval_every_steps == 25
    assert peer.parse_args(["--out", "x"]).eval_every_steps is None
    with pytest.raises(SystemExit):
        peer.parse_args(["--out", "x", "--eval-every-steps", "25", "--eval-every-s", "9"])
