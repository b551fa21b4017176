"""`vopd data check`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from launch.cli import COMMAND_MODULES
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


def test_commands_are_registered() -> None:
    assert "data" in COMMAND_MODULES and "score" in COMMAND_MODULES


def test_command_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, launch.commands.data, launch.commands.score; "
        "heavy = [m for m in ('numpy', 'torch', 'tvg.formats') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_check_clean_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_vopd(
        ["data", "check", str(DATA / "formats" / "timelens_bench.json")], capsys
    )
    assert code == 0
    assert "format:    timelens_bench" in out
    assert "samples:   3 (videos 2)" in out
    assert "skipped:   0" in out
    assert "clamped spans (within tolerance): 1" in out


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "formats" / "qvhighlights.jsonl"
    code, out, _ = run_vopd(["data", "check", str(path), "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["ok"] is True
    assert summary["format"] == "qvhighlights" and summary["samples"] == 2
    assert summary["stats"]["spans_per_query_max"] == 2
    assert summary["stats"]["duration_s"]["max"] == 150.0
    assert summary["stats"]["span_s"]["min"] == 4.0


def test_check_strict_error_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "bad" / "start_ge_end.txt"
    code, out, err = run_vopd(["data", "check", str(path)], capsys)
    assert code == 1
    assert f"error: {path}:2: span start 6.1 >= end 6.1 [empty_span]" in err
    assert "Traceback" not in err + out
    assert "--lenient" in err


def test_check_lenient_counts_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "bad" / "start_ge_end.txt"
    code, out, _ = run_vopd(["data", "check", str(path), "--lenient"], capsys)
    assert code == 1
    assert "skipped:   2" in out and "  empty_span: 2" in out
    assert f"e.g. {path}:3:" in out
    code, out, _ = run_vopd(["data", "check", str(path), "--lenient", "--json"], capsys)
    summary = json.loads(out)
    assert code == 1 and summary["skipped"] == {"empty_span": 2} and summary["samples"] == 1


def test_check_strict_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "bad" / "missing_field.json"
    code, out, _ = run_vopd(["data", "check", str(path), "--json"], capsys)
    error = json.loads(out)["error"]
    assert code == 1
    assert error["reason"] == "missing_field" and error["line"] == 3 and error["key"] == '"vid_bad"'


def test_check_format_override_and_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "formats" / "activitynet.json"
    code, out, _ = run_vopd(["data", "check", str(path), "--format", "activitynet"], capsys)
    assert code == 0 and "format:    activitynet" in out
    code, _, err = run_vopd(["data", "check", str(path), "--format", "csv"], capsys)
    assert code == 1 and "unknown format 'csv'" in err


def test_check_video_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "present.avi").write_bytes(b"")
    path = DATA / "bad" / "missing_video.json"
    argv = ["data", "check", str(path), "--video-root", str(tmp_path), "--lenient"]
    code, out, _ = run_vopd([*argv, "--video-ext", "avi"], capsys)
    assert code == 1 and "missing_video: 2" in out


def test_check_unlabelled_flag(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "formats" / "qvhighlights_test.jsonl"
    code, _, _ = run_vopd(["data", "check", str(path)], capsys)
    assert code == 1
    code, out, _ = run_vopd(["data", "check", str(path), "--allow-unlabelled"], capsys)
    assert code == 0 and "unlabelled queries: 2" in out


def test_data_without_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_vopd(["data"], capsys)
    assert code == 2 and "check" in out


def test_help_documents_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_vopd(["data", "check", "--help"], capsys)
    out = capsys.readouterr().out
    assert "exit status" in out and "--lenient" in out
