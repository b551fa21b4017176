"""The Sample type and query normalisation."""

from __future__ import annotations

import dataclasses

import pytest

from tvg.sample import Sample, normalize_query, video_id_from_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a person opens the door.", "a person opens the door"),
        ("  a  person\topens\nthe door .  ", "a person opens the door"),
        ("no period", "no period"),
        ("Mr. Smith waves.", "Mr. Smith waves"),
        (".", ""),
        ("", ""),
    ],
)
def test_normalize_query(raw: str, expected: str) -> None:
    assert normalize_query(raw) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/videos/abc.mp4", "abc"),
        ("abc.MKV", "abc"),
        ("j7rJstUseKg_360.0_510.0", "j7rJstUseKg_360.0_510.0"),
        ("dir/j7rJstUseKg_360.0_510.0.mp4", "j7rJstUseKg_360.0_510.0"),
    ],
)
def test_video_id_from_path(path: str, expected: str) -> None:
    assert video_id_from_path(path) == expected


def test_sample_is_frozen_and_normalises_spans() -> None:
    sample = Sample(id="x", video="v/x.mp4", duration=10.0, query="q", spans=[[1, 2]])  # type: ignore[arg-type]
    assert sample.spans == ((1.0, 2.0),)
    assert isinstance(sample.spans[0][0], float)
    assert sample.video_id == "x" and sample.span == (1.0, 2.0) and sample.labelled
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.query = "other"  # type: ignore[misc]
    assert hash(sample) == hash(dataclasses.replace(sample, extra={"k": 1}))
