"""Seeded label noise (tvg/label_noise.py): counts, determinism, each kind, validity, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tvg.errors import DataError
from tvg.formats import load_samples
from tvg.label_noise import (
    KINDS,
    LabelNoiseError,
    corrupt_file,
    corrupt_samples,
    n_corrupted,
    parse_kinds,
    random_swap_span,
    shift_span,
    shrink_span,
    sidecar_path,
)
from tvg.rewards import temporal_iou
from tvg.sample import Sample

DATA = Path(__file__).resolve().parents[1] / "data"
WRITABLE = {
    "timelens_bench": "timelens_bench.json",
    "activitynet": "activitynet.json",
    "timelens_100k": "timelens_100k.jsonl",
    "qvhighlights": "qvhighlights.jsonl",
}
STEP = 0.01 + 1e-9  # what rounding to 2 decimals may move a time by


def make_samples(n_videos: int = 60, per_video: int = 1, seed: int = 0) -> list[Sample]:
    """Random valid samples: durations 8-120 s, spans of 0.5 s up to 90 % of the video."""
    rng = np.random.default_rng(seed)
    samples = []
    for v in range(n_videos):
        duration = float(rng.integers(8, 121))
        for q in range(per_video):
            length = float(rng.uniform(0.5, 0.9 * duration))
            start = round(float(rng.uniform(0, duration - length)), 2)
            end = min(duration, round(start + length, 2))
            samples.append(
                Sample(
                    id=f"v{v}#{q}",
                    video=f"v{v}.mp4",
                    duration=duration,
                    query=f"event {q}",
                    spans=((start, end),),
                    video_id=f"v{v}",
                )
            )
    return samples


def one(span: tuple[float, float], duration: float, vid: str = "v") -> Sample:
    """A single-query sample."""
    return Sample(id=f"{vid}#0", video=f"{vid}.mp4", duration=duration, query="q", spans=(span,))


# --- count and seeds -----------------------------------------------------------------------------


@pytest.mark.parametrize(("share", "expected"), [(0.0, 0), (0.25, 25), (0.5, 50), (1.0, 100)])
def test_exact_count(share: float, expected: int) -> None:
    samples = make_samples(100)
    result = corrupt_samples(samples, share, seed=3)
    assert len(result.corruptions) == expected
    assert result.share_realised == expected / 100
    changed = [i for i, (a, b) in enumerate(zip(samples, result.samples, strict=True)) if a != b]
    assert changed == [c.index for c in result.corruptions]  # every chosen record really changed


def test_count_rounds_half_up() -> None:
    assert [n_corrupted(s, 10) for s in (0.0, 0.25, 0.5, 0.35, 0.04, 1.0)] == [0, 3, 5, 4, 0, 10]
    assert n_corrupted(0.25, 7) == 2  # 1.75
    assert len(corrupt_samples(make_samples(10), 0.25, seed=0).corruptions) == 3


def test_same_seed_same_output_other_seed_different() -> None:
    samples = make_samples(100, per_video=2)
    a, b = (corrupt_samples(samples, 0.25, seed=11) for _ in range(2))
    assert a.samples == b.samples and a.summary() == b.summary()
    c = corrupt_samples(samples, 0.25, seed=12)
    assert [x.index for x in c.corruptions] != [x.index for x in a.corruptions]
    assert c.samples != a.samples


def test_noise_levels_are_nested() -> None:
    samples = make_samples(100)
    low = {c.index: c for c in corrupt_samples(samples, 0.25, seed=5).corruptions}
    high = {c.index: c for c in corrupt_samples(samples, 0.5, seed=5).corruptions}
    assert set(low) < set(high)
    assert all(low[i] == high[i] for i in low)


def test_kinds_are_drawn_from_the_allowed_list() -> None:
    samples = make_samples(300)
    counts = corrupt_samples(samples, 1.0, seed=0).summary()["by_kind"]
    assert set(counts) == set(KINDS) and all(70 <= n <= 130 for n in counts.values())
    only = corrupt_samples(samples, 1.0, seed=0, kinds="shrink,shift")
    assert {c.kind for c in only.corruptions} == {"shift", "shrink"}


# --- each kind -----------------------------------------------------------------------------------


def test_shift_moves_by_half_a_length_and_keeps_it() -> None:
    result = corrupt_samples(make_samples(200), 1.0, seed=1, kinds=["shift"])
    kept = 0
    for c in result.corruptions:
        (s, e), (ns, ne) = c.original[0], c.corrupted[0]
        length, duration = e - s, result.samples[c.index].duration
        assert max(abs(ns - s), abs(ne - e)) >= length / 2 - 1e-9
        room = s >= length / 2 or duration - e >= length / 2
        if room:  # the length is kept (up to rounding) and the start moved by >= L / 2
            kept += 1
            assert abs((ne - ns) - length) <= STEP and abs(ns - s) >= length / 2 - 1e-9
        else:  # half a length toward the roomier side, clipped
            assert (ns, ne) in {(s + length / 2, duration), (0.0, e - length / 2)}
    assert kept > 100


def test_shift_without_room_goes_half_a_length_and_clips() -> None:
    rng = np.random.default_rng(0)
    assert shift_span((1.0, 29.0), 30.0, rng) == (15.0, 30.0)
    assert shift_span((2.0, 29.5), 30.0, rng) == (0.0, 15.75)
    assert shift_span((0.0, 30.0), 30.0, rng) in {(15.0, 30.0), (0.0, 15.0)}
    for _ in range(100):
        ns, ne = shift_span((10.0, 14.0), 30.0, rng)
        assert ne - ns == pytest.approx(4.0) and abs(ns - 10.0) >= 2.0 and 0 <= ns < ne <= 30


def test_shrink_covers_10_to_50_percent() -> None:
    result = corrupt_samples(make_samples(200), 1.0, seed=2, kinds=["shrink"])
    coverages = []
    for c in result.corruptions:
        (s, e), (ns, ne) = c.original[0], c.corrupted[0]
        assert s <= ns < ne <= e
        coverages.append((ne - ns) / (e - s))
        assert c.iou == pytest.approx(coverages[-1])  # a sub-span's IoU is its coverage
    assert 0.1 - 1e-9 <= min(coverages) < 0.15 and 0.45 < max(coverages) <= 0.5 + 1e-9
    rng = np.random.default_rng(0)
    for _ in range(200):  # a span too short for 2-decimal rounding stays exact
        ns, ne = shrink_span((3.0, 3.05), rng)
        assert 3.0 <= ns < ne <= 3.05 and 0.1 - 1e-6 <= (ne - ns) / 0.05 <= 0.5 + 1e-6


def test_swap_takes_another_query_of_the_same_video() -> None:
    samples = make_samples(50, per_video=3)
    result = corrupt_samples(samples, 1.0, seed=4, kinds=["swap"])
    by_id = {s.id: s for s in samples}
    for c in result.corruptions:
        assert c.swapped_with is not None
        other = by_id[c.swapped_with]
        assert other.video_id == c.video_id and other.id != c.id
        assert c.corrupted == other.spans  # the other query's original span, not its noisy one


def test_swap_without_another_query_is_a_distant_span_of_similar_length() -> None:
    result = corrupt_samples(make_samples(200), 1.0, seed=6, kinds=["swap"])
    similar = 0
    for c in result.corruptions:
        assert c.swapped_with is None and len(c.corrupted) == 1
        assert temporal_iou(c.corrupted[0], c.original[0]) < 0.3
        ratio = (c.corrupted[0][1] - c.corrupted[0][0]) / (c.original[0][1] - c.original[0][0])
        similar += 0.75 - 0.01 <= ratio <= 1.25 + 0.01
    assert similar > 120  # the rest: spans covering most of the video (fallbacks)


@pytest.mark.parametrize(
    "spans",
    [((0.0, 30.0),), ((2.0, 29.0),), ((0.0, 15.0), (15.0, 30.0)), ((0.0, 29.99),), ((5.0, 5.001),)],
)
def test_swap_fallbacks_keep_iou_below_0_3(spans: tuple[tuple[float, float], ...]) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        s, e = random_swap_span(spans, 30.0, rng)
        assert 0 <= s < e <= 30.0
        assert max(temporal_iou((s, e), o) for o in spans) < 0.3


def test_swap_skips_other_queries_with_the_same_span() -> None:
    base = dict(video="v.mp4", duration=20.0, video_id="v")
    twins = [Sample(id=f"v#{i}", query=f"q{i}", spans=((2.0, 6.0),), **base) for i in range(2)]
    result = corrupt_samples(twins, 1.0, seed=0, kinds=["swap"])
    for c in result.corruptions:
        assert c.swapped_with is None and temporal_iou(c.corrupted[0], (2.0, 6.0)) < 0.3


# --- validity ------------------------------------------------------------------------------------


def test_every_corrupted_span_is_valid() -> None:
    samples = make_samples(150, per_video=2, seed=9)
    edge = [
        one((0.0, 8.0), 8.0, "full"),
        one((0.0, 0.02), 8.0, "tiny_start"),
        one((7.99, 8.0), 8.0, "tiny_end"),
        one((0.0, 7.0), 8.0, "left"),
        one((1.0, 8.0), 8.0, "right"),
        one((3.333333, 4.777777), 9.123456, "offgrid"),
    ]
    for seed in range(5):
        result = corrupt_samples([*samples, *edge], 1.0, seed=seed)
        for c in result.corruptions:
            duration = result.samples[c.index].duration
            assert all(0 <= s < e <= duration for s, e in c.corrupted), c
            assert c.corrupted != c.original
            expected = np.mean([max(temporal_iou(o, n) for n in c.corrupted) for o in c.original])
            assert c.iou == pytest.approx(expected)


def test_multi_span_queries_are_corrupted_span_by_span() -> None:
    sample = Sample(id="m", video="m.mp4", duration=100.0, query="q", spans=((10, 20), (50, 70)))
    for kind in ("shift", "shrink"):
        (c,) = corrupt_samples([sample], 1.0, seed=0, kinds=[kind]).corruptions
        assert len(c.corrupted) == 2 and c.kind == kind


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [-0.1, 1.5, math.nan, "x"])
def test_share_outside_0_1_is_an_error(share: object) -> None:
    with pytest.raises(LabelNoiseError, match="share must be"):
        corrupt_samples(make_samples(4), share, seed=0)  # type: ignore[arg-type]


def test_unknown_or_empty_kind_is_an_error() -> None:
    with pytest.raises(LabelNoiseError, match=r"unknown corruption kind\(s\) 'flip'.*shift"):
        parse_kinds("shift,flip")
    with pytest.raises(LabelNoiseError, match="no corruption kind given"):
        parse_kinds(" , ")
    assert parse_kinds("swap, SHIFT,swap") == ("shift", "swap")
    with pytest.raises(LabelNoiseError, match="unknown corruption kind"):
        corrupt_samples(make_samples(4), 0.5, seed=0, kinds=["jitter"])


def test_negative_seed_is_an_error() -> None:
    with pytest.raises(LabelNoiseError, match="seed must be an integer >= 0"):
        corrupt_samples(make_samples(4), 0.5, seed=-1)


def test_sample_without_span_is_an_error() -> None:
    bare = Sample(id="q7", video="v.mp4", duration=10.0, query="q", spans=())
    with pytest.raises(LabelNoiseError, match="record 'q7' has no span"):
        corrupt_samples([bare], 0.0, seed=0)


# --- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(WRITABLE))
def test_file_keeps_its_format_and_passes_the_check(fmt: str, tmp_path: Path) -> None:
    src = DATA / "formats" / WRITABLE[fmt]
    out = tmp_path / f"noisy{src.suffix}"
    summary = corrupt_file(src, out, share=1.0, seed=0)
    before = load_samples(src)
    after = load_samples(out)  # strict: raises on any invalid span
    assert after.format == before.format == fmt and after.clean
    assert [s.id for s in after.samples] == [s.id for s in before.samples]
    assert [s.query for s in after.samples] == [s.query for s in before.samples]
    records = {r["id"]: r for r in summary["records"]}
    assert len(records) == len(before.samples)
    for old, new in zip(before.samples, after.samples, strict=True):
        assert [list(s) for s in new.spans] == records[old.id]["corrupted"]
        assert [list(s) for s in old.spans] == records[old.id]["original"]
        assert new.spans != old.spans and new.duration == old.duration


def test_file_untouched_records_stay_as_written(tmp_path: Path) -> None:
    src = DATA / "formats" / "qvhighlights.jsonl"
    out = tmp_path / "noisy.jsonl"
    summary = corrupt_file(src, out, share=0.5, seed=0)
    (record,) = summary["records"]
    lines_in, lines_out = src.read_text().splitlines(), out.read_text().splitlines()
    changed = [i for i, (a, b) in enumerate(zip(lines_in, lines_out, strict=True)) if a != b]
    assert len(changed) == 1
    written = json.loads(lines_out[changed[0]])
    assert str(written["qid"]) == record["id"]
    assert written["relevant_windows"] == record["corrupted"]
    assert written["saliency_scores"] == json.loads(lines_in[changed[0]])["saliency_scores"]


def test_file_keeps_the_single_pair_shape(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"v": {"duration": 20.0, "spans": [[2, 6], [[8, 9], [12, 14]]],
                                     "queries": ["a", "b"]}}))  # fmt: skip
    corrupt_file(src, tmp_path / "out.json", share=1.0, seed=0, kinds="shrink")
    spans = json.loads((tmp_path / "out.json").read_text())["v"]["spans"]
    assert len(spans[0]) == 2 and not isinstance(spans[0][0], list)
    assert len(spans[1]) == 2 and all(len(p) == 2 for p in spans[1])


def test_file_same_seed_same_bytes(tmp_path: Path) -> None:
    src = DATA / "formats" / "activitynet.json"
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        corrupt_file(src, tmp_path / f"{name}.json", share=0.5, seed=seed)
    read = {n: (tmp_path / f"{n}.json").read_bytes() for n in "abc"}
    sidecars = {n: json.loads(sidecar_path(tmp_path / f"{n}.json").read_text()) for n in "abc"}
    assert read["a"] == read["b"] and read["a"] != read["c"]
    assert sidecars["a"]["records"] == sidecars["b"]["records"] != sidecars["c"]["records"]


def test_sidecar_contents(tmp_path: Path) -> None:
    src = DATA / "formats" / "activitynet.json"
    out = tmp_path / "noisy.json"
    summary = corrupt_file(src, out, share=0.5, seed=3, kinds="shift,swap")
    side = tmp_path / "noisy.noise.json"
    assert sidecar_path(out) == side and json.loads(side.read_text()) == summary
    assert summary["input"] == str(src) and summary["output"] == str(out)
    assert summary["format"] == "activitynet" and summary["seed"] == 3
    assert summary["kinds"] == ["shift", "swap"] and summary["share_requested"] == 0.5
    assert summary["n_records"] == 4 and summary["n_corrupted"] == 2
    assert summary["share_realised"] == 0.5
    records = summary["records"]
    assert {r["kind"] for r in records} <= {"shift", "swap"}
    assert sum(summary["by_kind"].values()) == 2
    assert summary["mean_iou"] == pytest.approx(np.mean([r["iou"] for r in records]), abs=1e-6)
    for r in records:
        assert set(r) == {
            "index", "id", "video_id", "kind", "original", "corrupted", "iou", "swapped_with"
        }  # fmt: skip
        iou = np.mean([max(temporal_iou(o, n) for n in r["corrupted"]) for o in r["original"]])
        assert r["iou"] == pytest.approx(iou, abs=1e-6)


def test_sidecar_of_a_clean_copy(tmp_path: Path) -> None:
    summary = corrupt_file(DATA / "formats" / "timelens_bench.json", tmp_path / "o.json", 0.0, 0)
    assert summary["n_corrupted"] == 0 and summary["mean_iou"] is None
    assert summary["records"] == [] and summary["by_kind"] == {}
    before = load_samples(DATA / "formats" / "timelens_bench.json").samples
    after = load_samples(tmp_path / "o.json").samples
    assert [(s.id, s.spans, s.query) for s in after] == [(s.id, s.spans, s.query) for s in before]


def test_sidecar_path_names() -> None:
    assert sidecar_path("d/train.json") == Path("d/train.noise.json")
    assert sidecar_path("x.jsonl") == Path("x.noise.json")
    assert sidecar_path("x") == Path("x.noise.json")


@pytest.mark.parametrize(
    ("name", "why"),
    [("charades_sta.txt", "no video durations"), ("ms_swift.json", "assistant's answer text")],
)
def test_formats_that_cannot_be_written_are_refused(name: str, why: str, tmp_path: Path) -> None:
    fmt = name.split(".")[0]
    with pytest.raises(LabelNoiseError, match=rf"format '{fmt}' cannot be written.*{why}"):
        corrupt_file(DATA / "formats" / name, tmp_path / "o", 0.5, 0)
    with pytest.raises(LabelNoiseError, match="format 'charades_sta'"):  # --format decides first
        corrupt_file(
            DATA / "bad" / "start_ge_end.txt", tmp_path / "o", 0.5, 0, format="charades_sta"
        )
    assert not (tmp_path / "o").exists()


def test_record_without_span_is_an_error_naming_file_and_record(tmp_path: Path) -> None:
    src = DATA / "formats" / "qvhighlights_test.jsonl"
    with pytest.raises(DataError, match=rf"{src}:1: qid 2579 has no relevant_windows") as info:
        corrupt_file(src, tmp_path / "o.jsonl", 0.5, 0)
    assert info.value.reason == "unlabelled"
    bench = tmp_path / "in.json"
    bench.write_text('{\n "v1": {"duration": 10, "spans": [[1, 2]], "queries": ["a"]},\n'
                     ' "v2": {"duration": 10, "spans": [[]], "queries": ["b"]}\n}\n')  # fmt: skip
    with pytest.raises(DataError, match=r"in.json:3: key \"v2\".spans\[0\]: "):
        corrupt_file(bench, tmp_path / "o.json", 0.5, 0)
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "o.noise.json").exists()


def test_output_must_not_overwrite_the_input(tmp_path: Path) -> None:
    src = tmp_path / "a.json"
    src.write_text((DATA / "formats" / "timelens_bench.json").read_text())
    with pytest.raises(LabelNoiseError, match="would overwrite the input"):
        corrupt_file(src, src, 0.5, 0)
    src.rename(tmp_path / "a.noise.json")
    with pytest.raises(LabelNoiseError, match="would overwrite the input"):
        corrupt_file(tmp_path / "a.noise.json", tmp_path / "a.json", 0.5, 0)  # the sidecar
