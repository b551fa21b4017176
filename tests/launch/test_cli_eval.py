"""`vopd eval`: greedy vLLM decoding over a dataset, predictions `vopd score` reads, settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from launch.commands.score import score_prediction_file

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.slow
def test_eval_writes_scoreable_predictions_and_settings(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    from tvg.synth import write_dataset

    data = tmp_path / "data"
    write_dataset(data, n_train=4, n_val=0, n_test=3, seed=3, level=1)
    out = tmp_path / "eval" / "preds.jsonl"
    argv = [
        sys.executable, "-m", "launch.cli", "eval",
        "--model", str(tiny_models_dir / "qwen3_vl-student"),
        "--data", str(data / "test.json"),
        "--video-root", str(data / "videos"),
        "--out", str(out),
        "--fps", "1", "--max-frames", "32", "--max-tokens", "16", "--batch-size", "2",
        "--json",
    ]  # fmt: skip
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert "eval: 100%" in proc.stderr  # the progress bar
    assert '"fps": 1.0' in proc.stderr  # the settings are printed

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and {"id", "answer", "span", "query"} <= set(lines[0])
    # The same metrics as `vopd score` on the written predictions.
    scored = score_prediction_file([str(data / "test.json")], str(out), pred_format="jsonl")
    assert result["datasets"] == scored["datasets"]
    assert result["datasets"]["test"]["n"] == 3
    assert result["missing_predictions"] == {"test": 0}

    saved = json.loads((out.parent / "preds.eval.json").read_text())
    settings = saved["settings"]
    assert settings["video"]["fps"] == 1.0 and settings["video"]["max_frames"] == 32
    assert settings["decoding"]["max_tokens"] == 16 and settings["decoding"]["temperature"] == 0
    assert (
        "<|video_pad|>" in settings["prompt_template"] and "{query}" in settings["prompt_template"]
    )
    assert saved["results"]["datasets"] == result["datasets"]


def test_eval_rejects_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from launch.cli import main

    code = main(["eval", "--model", "m", "--data", str(tmp_path / "x.json"), "--batch-size", "0"])
    assert code == 2
    assert "--batch-size" in capsys.readouterr().err
    code = main(["eval", "--model", "m", "--data", str(tmp_path / "missing.json")])
    assert code == 1
    assert "cannot read the file" in capsys.readouterr().err
