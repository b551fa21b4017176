"""`write_report`: per-sample scores, the subset in rank order, a PNG and a summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curriculum.difficulty import DifficultySampler
from curriculum.report import write_report
from curriculum.rules import TVDFRule
from curriculum.tvdf import TVDFSampler

TEACHER = np.array([[0.9, 0.7], [0.2, 0.4], [1.0, 1.0], [0.6, 0.4], [0.8, 0.8]])
STUDENT = np.array([0.1, 0.0, 0.9, 0.5, 0.2])  # delta = [0.7, 0.3, 0.1, 0.0, 0.6]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_tvdf_report(tmp_path: Path, stub_scorer) -> None:
    sampler = TVDFSampler(5, stub_scorer(TEACHER, [STUDENT]), TVDFRule(size=2, tau=0.5))
    sampler.refresh(None, 0)
    paths = write_report(tmp_path, sampler, [f"s{i}" for i in range(5)])
    scores = _lines(Path(paths["scores.jsonl"]))
    subset = _lines(Path(paths["subset.jsonl"]))
    assert [r["id"] for r in subset] == ["s0", "s4"] and [r["rank"] for r in subset] == [0, 1]
    assert subset[0]["teacher_ious"] == [0.9, 0.7] and subset[0]["teacher_iou"] == 0.8
    assert subset[0]["student_iou"] == 0.1 and subset[0]["delta"] == 0.7
    assert [r["reliable"] for r in scores] == [True, False, True, True, True]
    assert scores[1]["selected"] is False and scores[1]["rank"] is None
    assert Path(paths["histogram.png"]).read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(Path(paths["summary.json"]).read_text())
    assert summary["kind"] == "tvdf" and summary["rounds"][0]["selected"] == 2
    assert not list(tmp_path.glob(".*tmp*"))


def test_difficulty_report(tmp_path: Path, stub_scorer) -> None:
    sampler = DifficultySampler(5, stub_scorer(None, [STUDENT]))
    sampler.refresh(None, 0)
    paths = write_report(tmp_path, sampler, [f"s{i}" for i in range(5)])
    rows = _lines(Path(paths["subset.jsonl"]))
    assert sum(r["probability"] for r in rows) == pytest.approx(1.0)
    assert [r["bin"] for r in rows] == [2, 0, 18, 10, 4]
    assert Path(paths["histogram.png"]).stat().st_size > 1000
