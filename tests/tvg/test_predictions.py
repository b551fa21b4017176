"""Prediction files (TimeLens, QVHighlights, own JSONL): reading, detection, matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvg.errors import DataError
from tvg.predictions import (
    Prediction,
    detect_prediction_format,
    load_predictions,
    read_predictions,
)
from tvg.sample import Sample


def _samples() -> list[Sample]:
    return [
        Sample("vid_a#0", "vid_a.mp4", 30.0, "a person opens the door", ((1.0, 5.5),), "bench"),
        Sample("vid_a#1", "vid_a.mp4", 30.0, "a person opens the door", ((20.0, 25.0),), "bench"),
        Sample("vid_b#0", "vid_b.mp4", 12.5, "someone laughs", ((0.0, 2.0),), "bench"),
    ]


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def _write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_timelens_format_matches_by_video_query_and_gt_hint(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "pred.json",
        {
            # the same query twice on vid_a: the GT part of the key decides
            "vid_a>>>A person opens the door.>>>[20.0, 25.0]": {
                "timestamps": [[19.0, 25.0]],
                "answers": "The event happens in 19.0 - 25.0 seconds.",
            },
            "vid_a>>>a person opens the door>>>[1.0, 5.5]": {
                "answers": "The event happens in 1.0 - 5.0 seconds."
            },
            "/videos/vid_b.mp4>>>someone laughs>>>[0.0, 2.0]": {
                "timestamps": [[2.0, 0.0]],  # numeric and reversed: used as given
                "answers": "The event happens in 0.0 - 2.0 seconds.",
            },
            "vid_z>>>unknown>>>[0, 1]": {"answers": "1 - 2"},
        },
    )
    assert detect_prediction_format(path) == "timelens"
    matched = load_predictions(path, _samples())
    assert matched.format == "timelens"
    assert matched.by_sample["vid_a#1"].span == (19.0, 25.0)
    assert matched.by_sample["vid_a#0"].span == (1.0, 5.0)  # parsed from the answer
    assert matched.by_sample["vid_b#0"].span == (2.0, 0.0)
    assert len(matched.unmatched) == 1 and "vid_z" in matched.unmatched[0]


def test_qvhighlights_submission(tmp_path: Path) -> None:
    samples = [Sample("9769", "v.mp4", 150.0, "some query", ((36.0, 42.0),), "qvh", "v")]
    path = _write_lines(
        tmp_path / "sub.jsonl",
        [
            {
                "qid": 9769,
                "query": "x",
                "vid": "v",
                "pred_relevant_windows": [[30, 40, 0.2], [36, 42, 0.9]],
            }
        ],
    )
    assert detect_prediction_format(path) == "qvhighlights"
    prediction = load_predictions(path, samples).by_sample["9769"]
    assert prediction.span == (30.0, 40.0)  # the first window is the top-1, as listed
    assert prediction.windows == ((30.0, 40.0, 0.2), (36.0, 42.0, 0.9))


def test_own_jsonl_by_id_span_windows_and_answer(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "own.jsonl",
        [
            {"id": "vid_a#0", "answer": "<answer>1.00 to 5.00</answer>"},
            {"video": "x/vid_b.mp4", "query": "Someone laughs.", "span": [0.5, 2.0]},
            {"video_id": "vid_a", "query": "a person opens the door", "windows": [[20, 24]]},
            {"id": "vid_a#0", "answer": "3 - 4"},  # duplicate
        ],
    )
    assert detect_prediction_format(path) == "jsonl"
    matched = load_predictions(path, _samples())
    assert matched.by_sample["vid_a#0"].span == (1.0, 5.0)
    assert matched.by_sample["vid_b#0"].span == (0.5, 2.0)
    assert matched.by_sample["vid_a#1"].span == (20.0, 24.0)  # the next free sample of the pair
    assert len(matched.duplicates) == 1 and matched.unmatched == []


def test_unparseable_answer_gives_no_span(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "p.jsonl", [{"id": "vid_b#0", "answer": "I don't know"}])
    prediction = load_predictions(path, _samples()).by_sample["vid_b#0"]
    assert prediction == Prediction(span=None, answer="I don't know")
    assert not prediction.parsed and prediction.ranked_windows() == ()


def test_bad_prediction_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "span": [1, 2]}\n{"id": \n')
    with pytest.raises(DataError) as info:
        read_predictions(bad)
    assert str(info.value).startswith(f"{bad}:2:")
    with pytest.raises(DataError, match="unknown prediction format"):
        read_predictions(bad, "csv")
    text = tmp_path / "p.txt"
    text.write_text("hello\n")
    with pytest.raises(DataError, match="unknown_format"):
        read_predictions(text)
