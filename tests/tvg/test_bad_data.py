"""The bad-data corpus (tests/data/bad): strict errors name the file and record, lenient counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvg.errors import DataError
from tvg.formats import REASONS, load_samples

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"

# file, explicit format, reason, text the error must contain after the path, lenient: skipped
# count for the reason and samples kept.
CASES = [
    ("missing_field.json", None, "missing_field", ':3: key "vid_bad"', 1, 1),
    ("missing_field.jsonl", None, "missing_field", ":2:", 1, 1),
    ("non_numeric_time.txt", None, "bad_time", ":2:", 1, 1),
    ("nan_time.jsonl", None, "bad_time", ":1: key events[1].span[0]", 1, 1),
    ("inf_time.json", None, "bad_time", ':3: key "v_bad".timestamps[0]', 1, 1),
    ("start_ge_end.txt", None, "empty_span", ":2:", 2, 1),
    ("span_out_of_range.json", None, "span_out_of_range", ':2: key "vid_a".spans[1]', 1, 2),
    ("bad_duration.jsonl", None, "bad_duration", ":2: key duration", 2, 1),
    ("empty_query.txt", None, "empty_query", ":2:", 1, 1),
    ("length_mismatch.json", None, "length_mismatch", ':2: key "vid_a"', 1, 1),
    ("duplicate_id.json", None, "duplicate_id", ':4: key "vid_a"', 1, 2),
    ("duplicate_id.jsonl", None, "duplicate_id", ":3:", 1, 2),
    ("malformed_json.jsonl", None, "malformed_json", ":2:", 1, 2),
    ("malformed_line.txt", None, "malformed_line", ":2:", 1, 1),
    ("unlabelled.jsonl", None, "unlabelled", ":2:", 1, 1),
    ("unparseable_answer.jsonl", None, "unparseable_answer", ":2: key messages", 1, 1),
    ("bad_type.jsonl", None, "bad_type", ":2:", 1, 1),
]


@pytest.mark.parametrize(("name", "fmt", "reason", "where", "count", "kept"), CASES)
def test_strict_error_names_file_and_record(
    name: str, fmt: str | None, reason: str, where: str, count: int, kept: int
) -> None:
    path = BAD / name
    with pytest.raises(DataError) as info:
        load_samples(path, fmt)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.reason == reason
    assert reason in REASONS
    message = str(err)
    assert message.startswith(f"{path}{where}"), message
    assert f"[{reason}]" in message


@pytest.mark.parametrize(("name", "fmt", "reason", "where", "count", "kept"), CASES)
def test_lenient_counts_and_keeps_good_records(
    name: str, fmt: str | None, reason: str, where: str, count: int, kept: int
) -> None:
    report = load_samples(BAD / name, fmt, strict=False)
    assert dict(report.skipped) == {reason: count}
    assert len(report.samples) == kept
    assert not report.clean
    examples = report.examples[reason]
    assert examples and all(e.startswith(str(BAD / name)) for e in examples)


def test_span_within_tolerance_is_clamped() -> None:
    report = load_samples(BAD / "span_out_of_range.json", strict=False)
    assert report.clamped == 1
    spans = {s.query: s.spans for s in report.samples}
    assert spans["a person waves"] == ((0.0, 4.0),)


def test_tolerance_is_configurable() -> None:
    report = load_samples(BAD / "span_out_of_range.json", tolerance_s=1.5)
    assert len(report.samples) == 3
    assert report.samples[1].spans == ((25.0, 30.0),)
    with pytest.raises(DataError, match="span_out_of_range"):
        load_samples(BAD / "span_out_of_range.json", tolerance_s=0.1, tolerance_frac=0.0)


def test_unlabelled_accepted_on_request() -> None:
    report = load_samples(BAD / "unlabelled.jsonl", allow_unlabelled=True)
    assert [s.labelled for s in report.samples] == [True, False]
    assert report.samples[1].span is None


@pytest.mark.parametrize("strict", [True, False])
def test_malformed_json_document_fails_in_both_modes(strict: bool) -> None:
    path = BAD / "malformed_json.json"
    with pytest.raises(DataError) as info:
        load_samples(path, "timelens_bench", strict=strict)
    assert info.value.reason == "malformed_json"
    assert str(info.value).startswith(f"{path}:3:")


@pytest.mark.parametrize("strict", [True, False])
def test_unknown_format_fails_in_both_modes(strict: bool) -> None:
    path = BAD / "unknown_format.json"
    with pytest.raises(DataError) as info:
        load_samples(path, strict=strict)
    assert info.value.reason == "unknown_format"
    assert str(path) in str(info.value)
    assert "timelens_bench" in str(info.value)


def test_unknown_explicit_format_is_named() -> None:
    with pytest.raises(DataError, match="unknown format 'csv'"):
        load_samples(BAD / "missing_field.json", "csv")


def test_unreadable_file() -> None:
    with pytest.raises(DataError) as info:
        load_samples(BAD / "no_such_file.json")
    assert info.value.reason == "unreadable"


def _video_root(tmp_path: Path) -> Path:
    (tmp_path / "present.mp4").write_bytes(b"")
    return tmp_path


def test_missing_video_strict(tmp_path: Path) -> None:
    path = BAD / "missing_video.json"
    with pytest.raises(DataError) as info:
        load_samples(path, video_root=_video_root(tmp_path))
    assert info.value.reason == "missing_video"
    assert str(info.value).startswith(f'{path}:3: key "absent"')
    assert str(tmp_path / "absent.mp4") in str(info.value)


def test_missing_video_lenient_counts_each_query(tmp_path: Path) -> None:
    report = load_samples(
        BAD / "missing_video.json", video_root=_video_root(tmp_path), strict=False
    )
    assert dict(report.skipped) == {"missing_video": 2}
    assert [s.video for s in report.samples] == [str(tmp_path / "present.mp4")]


def test_videos_not_checked_without_root_or_when_disabled(tmp_path: Path) -> None:
    assert len(load_samples(BAD / "missing_video.json").samples) == 3
    report = load_samples(BAD / "missing_video.json", video_root=tmp_path, check_videos=False)
    assert len(report.samples) == 3


def test_video_extensions_tried_in_order(tmp_path: Path) -> None:
    (tmp_path / "present.mp4").write_bytes(b"")
    (tmp_path / "absent.webm").write_bytes(b"")
    report = load_samples(BAD / "missing_video.json", video_root=tmp_path)
    videos = {s.video_id: s.video for s in report.samples}
    assert videos == {
        "present": str(tmp_path / "present.mp4"),
        "absent": str(tmp_path / "absent.webm"),
    }
    with pytest.raises(DataError, match="missing_video"):
        load_samples(BAD / "missing_video.json", video_root=tmp_path, video_exts=(".mp4",))
