"""The synthetic grounding dataset (tvg.synth) and the `vopd synth` command."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from tvg.synth import LEVELS, annotations, generate_split, render_frames, write_dataset
from tvg.synth_levels import BACKGROUND, COLOURS, SHAPES
from tvg.synth_render import encode_video, shape_mask
from tvg.video import VideoSettings, build_vision_inputs

QUERY = "When is the {} square visible in the video? Give the start and end time in seconds."


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small level-1 dataset written twice with the same seed, and once with another."""
    root = tmp_path_factory.mktemp("synth")
    stats = [write_dataset(root / name, 6, 3, 3, seed=s) for name, s in (("a", 7), ("b", 7))]
    return root, stats


def test_level_1_scenes_follow_the_design():
    samples = generate_split(1, 300, seed=0, split="train")
    colours = set()
    for s in samples:
        assert s.fps == 1 and s.frame_size == 32 and len(s.objects) == 1
        assert 8 <= s.duration <= 32 and s.duration % 2 == 0
        start, end = s.span
        assert 0 <= start < end <= s.duration
        assert start % 2 == 0 and end % 2 == 0  # aligned to 2-frame groups
        assert end - start <= max(2, 2 * round(0.4 * s.duration / 2))
        obj = s.objects[0]
        assert obj.shape == "square" and obj.size == 12
        assert s.query == QUERY.format(obj.colour)
        cell_top, cell_left = (obj.top // 16) * 16, (obj.left // 16) * 16
        assert abs(obj.top - cell_top - 2) <= 2 and abs(obj.left - cell_left - 2) <= 2
        colours.add(obj.colour)
    assert colours == set(COLOURS)


def test_generation_is_deterministic_and_splits_are_independent():
    a = generate_split(1, 20, seed=1, split="val")
    assert a == generate_split(1, 20, seed=1, split="val")
    assert generate_split(1, 30, seed=1, split="val")[:20] == a
    assert a != generate_split(1, 20, seed=2, split="val")
    assert a != generate_split(1, 20, seed=1, split="test")


def test_rendered_frames_show_the_square_only_in_span():
    for s in generate_split(1, 30, seed=3, split="train"):
        frames = render_frames(s)
        obj = s.objects[0]
        for k, frame in enumerate(frames):
            inside = obj.start <= k < obj.end
            patch = frame[obj.top : obj.top + 12, obj.left : obj.left + 12]
            if inside:
                assert (patch == COLOURS[obj.colour]).all()
                assert (frame != BACKGROUND).any(axis=-1).sum() == 144
            else:
                assert (frame == BACKGROUND).all()


def test_written_files_are_deterministic(dataset):
    root, stats = dataset
    for split in ("train", "val", "test"):
        assert (root / "a" / f"{split}.json").read_text() == (
            root / "b" / f"{split}.json"
        ).read_text()
    assert stats[0] == stats[1]
    ids = json.loads((root / "a" / "train.json").read_text())
    for video_id in list(ids)[:3]:
        fa = build_vision_inputs(root / "a" / "videos" / f"{video_id}.mp4").frames
        fb = build_vision_inputs(root / "b" / "videos" / f"{video_id}.mp4").frames
        np.testing.assert_array_equal(fa, fb)


def test_annotations_are_timelens_bench_format(dataset):
    root, _ = dataset
    data = json.loads((root / "a" / "val.json").read_text())
    assert len(data) == 3
    for video_id, record in data.items():
        assert set(record) == {"duration", "spans", "queries"}
        (start, end), query = record["spans"][0], record["queries"][0]
        assert 0 <= start < end <= record["duration"]
        assert (
            query.startswith("When is the ")
            and (root / "a" / "videos" / f"{video_id}.mp4").exists()
        )
    assert annotations(generate_split(1, 3, 7, "val")) == data


def test_decoded_videos_show_the_square_in_span(dataset):
    root, _ = dataset
    for s in generate_split(1, 6, seed=7, split="train"):
        inputs = build_vision_inputs(root / "a" / "videos" / f"{s.video_id}.mp4", VideoSettings())
        assert inputs.frame_size == (32, 32)
        assert inputs.metadata["frames_indices"] == list(range(s.duration))
        assert inputs.metadata["fps"] == 1.0 and inputs.metadata["total_num_frames"] == s.duration
        obj = s.objects[0]
        colour = np.array(COLOURS[obj.colour])
        for k, frame in enumerate(inputs.frames.astype(int)):
            centre = frame[obj.top + 3 : obj.top + 9, obj.left + 3 : obj.left + 9]
            if obj.start <= k < obj.end:
                assert np.abs(centre - colour).max() <= 12, (s.video_id, k)
            else:
                assert np.abs(frame - 128).max() <= 4, (s.video_id, k)


def test_stats_json_reports_the_blind_floor(dataset):
    root, stats = dataset
    on_disk = json.loads((root / "a" / "stats.json").read_text())
    assert on_disk == stats[0]
    stats = stats[0]
    assert stats["blind_floor"]["chosen_on"] == "train"
    a, b = stats["blind_floor"]["a"], stats["blind_floor"]["b"]
    assert 0 <= a < b <= 1
    for split in ("train", "val", "test"):
        info = stats["splits"][split]
        assert info["blind_answer"] == [a, b] and 0 <= info["blind_floor_miou"] <= 100
        assert {"n", "duration_s", "span_length_s", "span_fraction"} <= set(info)


def test_level_1_blind_floor_is_near_30():
    from tvg.synth import blind_floor_report, split_stats

    train = generate_split(1, 400, seed=0, split="train")
    test = generate_split(1, 400, seed=0, split="test")
    blind, chosen_on = blind_floor_report({"train": train, "test": test})
    assert chosen_on == "train" and 0.05 <= blind.a <= 0.35 and 0.65 <= blind.b <= 0.95
    assert 25 <= blind.miou <= 34
    assert 23 <= split_stats(test, blind)["blind_floor_miou"] <= 35


@pytest.mark.parametrize("level", sorted(set(LEVELS) - {1}))
def test_harder_levels(level):
    spec = LEVELS[level]
    for s in generate_split(level, 20, seed=0, split="train"):
        assert spec.min_objects <= len(s.objects) <= spec.max_objects
        assert spec.min_duration <= s.duration <= spec.max_duration
        start, end = s.span
        assert 0 <= start < end <= s.duration and start % spec.span_unit == 0
        target = s.objects[0]
        looks = [(o.colour, o.shape) for o in s.objects]
        assert looks.count((target.colour, target.shape)) == 1  # the query names a unique object
        if not spec.shared_attributes:
            assert len({o.colour for o in s.objects}) == len(s.objects)
        assert target.colour in s.query and target.shape in s.query
        frames = render_frames(s)
        assert frames.shape == (s.duration, spec.frame_size, spec.frame_size, 3)
        if spec.motion:  # objects always visible; the target moves only inside its span
            for k in range(1, s.duration):
                moving = (frames[k] != frames[k - 1]).any()
                any_active = any(
                    o.start <= k < o.end or o.start <= k - 1 < o.end for o in s.objects
                )
                assert moving == any_active


def test_shape_masks():
    masks = {shape: shape_mask(shape, 20) for shape in SHAPES}
    assert masks["square"].sum() == 400
    assert 280 < masks["circle"].sum() < 340  # pi * 10^2 ~ 314
    assert 170 < masks["triangle"].sum() < 230  # half the box
    with pytest.raises(ValueError):
        shape_mask("hexagon", 20)


def test_mpeg4_fallback_is_readable_by_decord(tmp_path):
    s = generate_split(1, 1, seed=0, split="train")[0]
    path = tmp_path / "v.mp4"
    assert encode_video(render_frames(s), path, fps=1, codec="mpeg4") == "mpeg4"
    inputs = build_vision_inputs(path, VideoSettings(backend="decord"))
    assert inputs.metadata["total_num_frames"] == s.duration and inputs.metadata["fps"] == 1.0


def test_unknown_level_and_split():
    with pytest.raises(ValueError, match="unknown synthetic level"):
        generate_split(99, 1, 0, "train")
    with pytest.raises(ValueError, match="unknown split"):
        generate_split(1, 1, 0, "dev")


def _run_cli(argv):
    from launch.commands import synth

    parser = argparse.ArgumentParser(prog="vopd")
    synth.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli(tmp_path, capsys):
    out = tmp_path / "data"
    argv = ["synth", "--out", str(out), "--n-train", "8", "--n-val", "2", "--n-test", "0"]
    assert _run_cli([*argv, "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "blind floor" in printed and "train: n 8" in printed
    assert len(list((out / "videos").glob("*.mp4"))) == 10
    assert json.loads((out / "test.json").read_text()) == {}
    assert _run_cli([*argv, "--level", "42"]) == 2
