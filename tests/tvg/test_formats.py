"""Loading every supported annotation format (tests/data/formats) and detecting it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvg.errors import DataError
from tvg.formats import FORMAT_NAMES, detect_format, load_samples, read_samples

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("timelens_bench.json", "timelens_bench"),
        ("timelens_100k.jsonl", "timelens_100k"),
        ("charades_sta.txt", "charades_sta"),
        ("activitynet.json", "activitynet"),
        ("qvhighlights.jsonl", "qvhighlights"),
        ("qvhighlights_test.jsonl", "qvhighlights"),
        ("ms_swift.json", "ms_swift"),
        ("ms_swift.jsonl", "ms_swift"),
    ],
)
def test_detect_format(name: str, expected: str) -> None:
    assert detect_format(FORMATS / name) == expected


def test_detection_uses_content_not_extension(tmp_path: Path) -> None:
    odd = tmp_path / "annotations.data"
    odd.write_text((FORMATS / "qvhighlights.jsonl").read_text())
    assert detect_format(odd) == "qvhighlights"
    single = tmp_path / "one.json"  # a one-line JSONL file is also a valid JSON document
    single.write_text((FORMATS / "qvhighlights.jsonl").read_text().splitlines()[0])
    assert load_samples(single).format == "qvhighlights"


def test_format_override_and_aliases() -> None:
    report = load_samples(FORMATS / "timelens_bench.json", format="TimeLens-Bench")
    assert report.format == "timelens_bench"
    with pytest.raises(DataError):
        load_samples(FORMATS / "timelens_bench.json", format="activitynet")
    assert set(FORMAT_NAMES) == {
        "timelens_bench",
        "timelens_100k",
        "charades_sta",
        "activitynet",
        "qvhighlights",
        "ms_swift",
    }


def test_timelens_bench() -> None:
    report = load_samples(FORMATS / "timelens_bench.json")
    assert report.records == 2 and report.clean and report.clamped == 1
    a0, a1, b0 = report.samples
    assert a0.id == "vid_a#0" and a0.video_id == "vid_a" and a0.video == "vid_a.mp4"
    assert a0.query == "A person opens the door"  # whitespace collapsed, trailing period gone
    assert a0.spans == ((1.0, 5.5),) and a0.duration == 30.0
    assert a0.source == "timelens_bench"
    assert a1.spans == ((10.0, 30.0),)  # 30.2 clamped to the duration
    assert b0.spans == ((0.0, 2.0), (4.0, 6.0))


def test_timelens_100k() -> None:
    samples = read_samples(FORMATS / "timelens_100k.jsonl", video_root="/data", check_videos=False)
    assert [s.id for s in samples] == ["v1#0", "v1#1", "v2#0"]
    assert samples[0].spans == ((3.0, 9.5),)  # a single pair
    assert samples[1].spans == ((40.0, 50.0), (60.0, 70.0))  # a list of pairs
    assert [s.source for s in samples] == ["cosmo_cap", "cosmo_cap", "didemo"]
    assert samples[2].video == "/data/clips/v2.mkv"


def test_source_override() -> None:
    samples = read_samples(FORMATS / "timelens_100k.jsonl", source="mine")
    assert {s.source for s in samples} == {"mine"}


def test_charades_sta_with_and_without_durations() -> None:
    samples = read_samples(FORMATS / "charades_sta.txt")
    assert [s.id for s in samples] == ["3MSZA#0", "3MSZA#1", "AO8RW#0"]
    assert samples[0].duration is None
    assert samples[0].query == "person turn a light on"
    assert samples[0].spans == ((24.3, 30.4),)
    with_durations = read_samples(FORMATS / "charades_sta.txt", durations={"3MSZA": 30.0})
    assert with_durations[0].duration == 30.0 and with_durations[2].duration is None
    with pytest.raises(DataError, match="span_out_of_range"):
        read_samples(FORMATS / "charades_sta.txt", durations={"3MSZA": 20.0})


def test_activitynet() -> None:
    samples = read_samples(FORMATS / "activitynet.json")
    assert len(samples) == 4
    assert samples[1].query.startswith("The girl dances")  # leading space stripped
    assert samples[1].spans == ((17.37, 60.81),)
    assert samples[3].id == "v_ehGHCYKzyZ8#0"


def test_qvhighlights() -> None:
    samples = read_samples(FORMATS / "qvhighlights.jsonl")
    first = samples[0]
    assert first.id == "9769" and first.video_id == "j7rJstUseKg_360.0_510.0"
    assert first.video == "j7rJstUseKg_360.0_510.0.mp4"
    assert first.spans == ((36.0, 42.0), (96.0, 106.0))
    assert first.extra["saliency_scores"][0] == [4, 4, 2]


def test_qvhighlights_test_split_needs_permission() -> None:
    with pytest.raises(DataError, match="unlabelled"):
        load_samples(FORMATS / "qvhighlights_test.jsonl")
    samples = read_samples(FORMATS / "qvhighlights_test.jsonl", allow_unlabelled=True)
    assert [s.spans for s in samples] == [(), ()]


def test_ms_swift_array_and_lines() -> None:
    first, second = read_samples(FORMATS / "ms_swift.json")
    assert first.query == "A person opens the door"  # recovered from the TimeLens prompt
    assert first.spans == ((1.0, 5.5),) and first.duration == 30.0
    assert first.id == "vid_a#0" and first.video == "videos/vid_a.mp4"
    assert second.id == "s2" and second.query == "someone laughs"  # TempSamp prompt, list content
    assert second.spans == ((0.5, 2.25),) and second.duration is None
    (only,) = read_samples(FORMATS / "ms_swift.jsonl")
    assert only.query == "a cat jumps" and only.spans == ((62.0, 64.5),)


def test_ms_swift_reversed_answer_is_an_error(tmp_path: Path) -> None:
    record = {
        "videos": ["a.mp4"],
        "query": "q",
        "messages": [{"role": "assistant", "content": "The event happens in 9.0 - 3.0 seconds."}],
    }
    path = tmp_path / "swift.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(DataError, match="empty_span"):
        load_samples(path)


def test_report_to_dict_is_json() -> None:
    report = load_samples(FORMATS / "timelens_bench.json")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["format"] == "timelens_bench"
    assert data["records"] == 2 and data["samples"] == 3 and data["skipped"] == {}


def test_empty_span_list_is_an_error(tmp_path: Path) -> None:
    record = {"video_path": "a.mp4", "duration": 10, "events": [{"query": "q", "span": []}]}
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(DataError) as info:
        load_samples(path)
    assert info.value.reason == "missing_field"
    assert str(info.value).startswith(f"{path}:1: key events[0].span")
