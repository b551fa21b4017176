"""`vopd data corrupt` (seeded label noise) and `vopd synth --label-noise`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from launch.commands import data, synth

DATA = Path(__file__).resolve().parents[1] / "data"
BENCH = DATA / "formats" / "activitynet.json"


def run_vopd(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run a `vopd data` / `vopd synth` command line in-process; return (code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="vopd")
    subparsers = parser.add_subparsers(dest="command")
    data.register(subparsers)
    synth.register(subparsers)
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def corrupt_argv(src: Path, out: Path, *extra: str) -> list[str]:
    """`vopd data corrupt` arguments."""
    return ["data", "corrupt", "--in", str(src), "--out", str(out), *extra]


def test_corrupt_writes_a_file_that_passes_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "noisy.json"
    code, printed, _ = run_vopd(corrupt_argv(BENCH, out, "--share", "0.5", "--seed", "4"), capsys)
    assert code == 0
    assert f"wrote {out} (activitynet, seed 4)" in printed
    assert "corrupted 2 of 4 records (share 0.5000; by kind: " in printed
    assert f"sidecar: {tmp_path / 'noisy.noise.json'}" in printed
    sidecar = json.loads((tmp_path / "noisy.noise.json").read_text())
    assert sidecar["n_corrupted"] == 2 and len(sidecar["records"]) == 2
    code, printed, _ = run_vopd(["data", "check", str(out)], capsys)
    assert code == 0 and "format:    activitynet" in printed and "skipped:   0" in printed


def test_corrupt_same_seed_same_file_and_json_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--share", "0.25", "--seed", "9", "--kinds", "shift,swap", "--format", "activitynet"]
    for name in ("a.json", "b.json"):
        code, printed, _ = run_vopd(corrupt_argv(BENCH, tmp_path / name, *argv, "--json"), capsys)
        summary = json.loads(printed)
        assert code == 0 and "records" not in summary
        assert summary["kinds"] == ["shift", "swap"] and summary["n_corrupted"] == 1
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--share", "1.5"], "share must be in [0, 1], got 1.5"),
        (["--share", "-0.25"], "share must be in [0, 1]"),
        (["--share", "0.5", "--kinds", "shift,flip"], "unknown corruption kind(s) 'flip'"),
        (["--share", "0.5", "--seed", "-3"], "seed must be an integer >= 0"),
    ],
)
def test_corrupt_usage_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_vopd(corrupt_argv(BENCH, tmp_path / "o.json", *extra), capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()


def test_corrupt_data_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = DATA / "formats" / "ms_swift.jsonl"
    code, _, err = run_vopd(corrupt_argv(src, tmp_path / "o.jsonl", "--share", "0.5"), capsys)
    assert code == 1 and "format 'ms_swift' cannot be written back" in err
    assert "supported formats: timelens_bench, activitynet, timelens_100k, qvhighlights" in err
    src = DATA / "formats" / "qvhighlights_test.jsonl"
    code, _, err = run_vopd(corrupt_argv(src, tmp_path / "o.jsonl", "--share", "0.5"), capsys)
    assert code == 1 and f"error: {src}:1: qid 2579 has no relevant_windows" in err
    src = DATA / "bad" / "missing_field.json"
    code, _, err = run_vopd(corrupt_argv(src, tmp_path / "o.json", "--share", "0.5"), capsys)
    assert code == 1 and f'error: {src}:3: key "vid_bad"' in err
    assert not list(tmp_path.iterdir())


def test_data_help_lists_corrupt(capsys: pytest.CaptureFixture[str]) -> None:
    code, printed, _ = run_vopd(["data"], capsys)
    assert code == 2 and "corrupt" in printed and "check" in printed


def test_synth_label_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    argv = ["synth", "--out", str(out), "--n-train", "8", "--n-val", "2", "--n-test", "0"]
    code, printed, _ = run_vopd([*argv, "--seed", "3", "--label-noise", "0.25"], capsys)
    assert code == 0
    assert "label noise: 2 of 8 train spans corrupted" in printed
    clean = json.loads((out / "train.clean.json").read_text())
    noisy = json.loads((out / "train.json").read_text())
    sidecar = json.loads((out / "train.noise.json").read_text())
    assert clean.keys() == noisy.keys()
    changed = {v for v in clean if clean[v]["spans"] != noisy[v]["spans"]}
    assert changed == {r["video_id"] for r in sidecar["records"]} and len(changed) == 2
    assert sidecar["seed"] == 3 and sidecar["input"] == str(out / "train.clean.json")
    assert not (out / "val.clean.json").exists()  # val and test stay clean
    code, _, _ = run_vopd(["data", "check", str(out / "train.json")], capsys)
    assert code == 0
    # The same call again gives the same noisy labels; without --label-noise the leftovers go.
    before = (out / "train.json").read_bytes()
    assert run_vopd([*argv, "--seed", "3", "--label-noise", "0.25"], capsys)[0] == 0
    assert (out / "train.json").read_bytes() == before
    assert run_vopd([*argv, "--seed", "3"], capsys)[0] == 0
    assert json.loads((out / "train.json").read_text()) == clean
    assert not (out / "train.clean.json").exists() and not (out / "train.noise.json").exists()
    code, _, err = run_vopd([*argv, "--label-noise", "2"], capsys)
    assert code == 2 and "--label-noise: share must be in [0, 1]" in err
    code, _, err = run_vopd([*argv, "--label-noise", "0.5", "--label-noise-kinds", "x"], capsys)
    assert code == 2 and "unknown corruption kind(s) 'x'" in err
