"""The exact-KL cost benchmark times every kind at every vocabulary size and writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.exact_kl_cost import KINDS, main


def test_writes_seconds_per_kind_and_the_exact_terms_cost(tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    args = ["--vocab", "50,300", "--rows", "2", "--tokens", "3", "--repeats", "1"]
    assert main([*args, "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["positions"] == 6 and "--repeats 1" in payload["command"]
    assert set(payload["results"]) == {"50", "300"}
    for row in payload["results"].values():
        assert set(row["seconds"]) == set(KINDS)
        assert all(s > 0 for s in row["seconds"].values())
        assert isinstance(row["exact_minus_topk_ms_per_position"], float)
    assert [p.name for p in tmp_path.iterdir()] == ["cost.json"]  # no temporary file left


@pytest.mark.parametrize("bad", [["--vocab", "1"], ["--rows", "0"], ["--vocab", ","]])
def test_rejects_bad_sizes(bad: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([*bad, "--out", str(tmp_path / "x.json")])
