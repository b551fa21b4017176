"""`vopd score`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from launch.commands import data, score

DATA = Path(__file__).resolve().parents[1] / "data"


def run_vopd(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run a `vopd data` / `vopd score` command line in-process; return (code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="vopd")
    subparsers = parser.add_subparsers(dest="command")
    data.register(subparsers)
    score.register(subparsers)
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BENCH = DATA / "formats" / "timelens_bench.json"
QVH = DATA / "formats" / "qvhighlights.jsonl"
BASE_KEYS = {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_rate", "n"}


def _timelens_predictions(tmp_path: Path) -> Path:
    # vid_a#0 GT [1, 5.5]: IoU 4.5 / 5.5 ... use [1, 5.5] exactly -> 1.0
    # vid_a#1 GT [10, 30]: answer unparseable -> 0
    # vid_b#0 GT [0, 2] + [4, 6]: missing
    data = {
        "vid_a>>>A person opens the door>>>[1.0, 5.5]": {
            "timestamps": [[1.0, 5.5]],
            "answers": "The event happens in 1.0 - 5.5 seconds.",
        },
        "vid_a>>>a person sits on the couch>>>[10.0, 30.0]": {"answers": "I am not sure."},
    }
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(data))
    return path


def test_score_json_keys_and_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "score",
        "--annotations",
        str(BENCH),
        "--predictions",
        str(_timelens_predictions(tmp_path)),
    ]
    code, out, _ = run_vopd([*argv, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    metrics = result["datasets"]["timelens_bench"]
    assert set(metrics) == BASE_KEYS
    assert metrics["n"] == 3
    assert metrics["R1@0.7"] == pytest.approx(100 / 3, abs=1e-3)
    assert metrics["mIoU"] == pytest.approx(100 / 3, abs=1e-3)
    assert metrics["parse_rate"] == pytest.approx(100 / 3, abs=1e-3)
    assert result["missing_predictions"] == {"timelens_bench": 1}
    assert result["unmatched_predictions"] == 0
    assert result["prediction_format"] == "timelens"


def test_score_table_reports_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "score",
        "--annotations",
        str(BENCH),
        "--predictions",
        str(_timelens_predictions(tmp_path)),
    ]
    code, out, _ = run_vopd(argv, capsys)
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == ["dataset", "n", "R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_rate"]
    assert row.split() == ["timelens_bench", "3", "33.33", "33.33", "33.33", "33.33", "33.33"]
    assert "note: 1 annotated queries of timelens_bench have no prediction" in out


def test_score_qvhighlights_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        {"qid": 9769, "pred_relevant_windows": [[96, 106, 0.9], [36, 42, 0.8], [0, 5, 0.1]]},
        {"qid": 10016, "pred_relevant_windows": [[0, 10, 0.9], [96, 100, 0.5]]},
        {"qid": 1, "pred_relevant_windows": [[0, 10, 0.9]]},
    ]
    pred = tmp_path / "sub.jsonl"
    pred.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, out, _ = run_vopd(
        ["score", "--annotations", str(QVH), "--predictions", str(pred), "--json"], capsys
    )
    assert code == 0
    result = json.loads(out)
    metrics = result["datasets"]["qvhighlights"]
    assert set(metrics) == BASE_KEYS | {"mAP@0.5", "mAP@0.75", "mAP"}
    # query 9769: both GT windows ranked first: AP 1; query 10016: right window second: AP 0.5
    assert metrics["mAP@0.5"] == pytest.approx(75.0)
    assert metrics["mAP"] == pytest.approx(75.0)
    assert metrics["R1@0.5"] == pytest.approx(50.0)  # top-1 of 10016 is wrong
    assert result["unmatched_predictions"] == 1


def test_score_several_annotation_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred = tmp_path / "own.jsonl"
    pred.write_text(
        json.dumps({"id": "9769", "span": [36, 42]})
        + "\n"
        + json.dumps({"id": "vid_b#0", "answer": "The event happens in 0.0 - 2.0 seconds."})
        + "\n"
    )
    argv = [
        "score",
        "--annotations",
        str(BENCH),
        "--annotations",
        str(QVH),
        "--predictions",
        str(pred),
    ]
    code, out, _ = run_vopd([*argv, "--json"], capsys)
    result = json.loads(out)
    assert code == 0
    assert list(result["datasets"]) == ["timelens_bench", "qvhighlights"]
    assert result["datasets"]["timelens_bench"]["R1@0.7"] == pytest.approx(100 / 3, abs=1e-3)
    assert result["datasets"]["qvhighlights"]["R1@0.7"] == pytest.approx(50.0)
    assert result["missing_predictions"] == {"timelens_bench": 2, "qvhighlights": 1}
    assert result["unmatched_predictions"] == 0


def test_score_bad_files_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred = tmp_path / "bad.jsonl"
    pred.write_text("{not json\n")
    code, out, err = run_vopd(
        ["score", "--annotations", str(BENCH), "--predictions", str(pred)], capsys
    )
    assert code == 1 and f"error: {pred}:1:" in err and "Traceback" not in err
    bad_ann = DATA / "bad" / "length_mismatch.json"
    good_pred = _timelens_predictions(tmp_path)
    code, _, err = run_vopd(
        ["score", "--annotations", str(bad_ann), "--predictions", str(good_pred)], capsys
    )
    assert code == 1 and "length_mismatch" in err
    code, out, err = run_vopd(
        ["score", "--annotations", str(bad_ann), "--predictions", str(good_pred), "--lenient"],
        capsys,
    )
    assert code == 0 and "warning:" in err and "length_mismatch 1" in err
    assert out.splitlines()[1].split()[:2] == ["length_mismatch", "1"]  # vid_b kept, unpredicted
