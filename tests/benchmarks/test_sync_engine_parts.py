"""The engine-side sync benchmark refuses what it cannot measure before it builds an engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.sync_engine_parts import main, measure


def test_a_single_repeat_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--repeats", "1", "--out", str(tmp_path / "x.json")])


def test_a_directory_without_weights_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=str(tmp_path)):
        measure(str(tmp_path), 2)


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--kinds", "mkl", "--out", str(tmp_path / "x.json")])
