"""A fresh run refuses a directory that already holds a run (no mixed ledgers or checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch.cli import main
from launch.config import ConfigError, load_config
from launch.driver import Driver, refuse_earlier_run


def test_empty_or_new_directory_is_accepted(tmp_path: Path) -> None:
    refuse_earlier_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("")  # an empty ledger holds no run
    (tmp_path / "checkpoints").mkdir()
    refuse_earlier_run(tmp_path)


@pytest.mark.parametrize("leftover", ["ledger", "checkpoint"])
def test_fresh_run_into_an_earlier_run_is_refused(tmp_path: Path, leftover: str) -> None:
    if leftover == "ledger":
        (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    else:
        (tmp_path / "checkpoints" / "step_00000002").mkdir(parents=True)
    config = load_config("opd", [f"out_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"already holds a run.*--resume"):
        Driver(config)  # refused before Ray or any actor starts


def test_cli_names_the_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    assert main(["train", "opd", f"out_dir={tmp_path}"]) == 2
    out = capsys.readouterr().out
    assert f"out_dir {tmp_path} already holds a run (metrics.jsonl)" in out
