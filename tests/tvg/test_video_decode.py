"""Decoding videos into model inputs (tvg.video.build_vision_inputs) with decord and PyAV."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from video_test_helpers import LEVEL_STEP, frame_levels, index_video

from tvg import video_backends
from tvg.video import VideoError, VideoSettings, build_vision_inputs
from tvg.vision_inputs import METADATA_KEYS

BACKENDS = ["decord", "pyav"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """30 frames at 10 fps (3 s), 96 x 64 px, frame k flat grey 8 * k."""
    return index_video(tmp_path_factory.mktemp("videos") / "clip.mp4", n_frames=30, fps=10)


@pytest.fixture(scope="module")
def odd_clip(tmp_path_factory):
    """9 frames at 1 fps, 32 x 32 px."""
    path = tmp_path_factory.mktemp("videos") / "odd.mp4"
    return index_video(path, n_frames=9, fps=1, height=32, width=32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_at_target_fps(clip, backend):
    inputs = build_vision_inputs(clip, VideoSettings(fps=2.0, backend=backend))
    expected = [2, 7, 12, 17, 22, 27]
    assert inputs.metadata["frames_indices"] == expected
    np.testing.assert_allclose(inputs.timestamps, np.array(expected) / 10.0)
    np.testing.assert_allclose(frame_levels(inputs.frames), np.array(expected) * LEVEL_STEP, atol=3)
    assert inputs.frames.dtype == np.uint8 and inputs.frames.shape == (6, 64, 96, 3)
    assert inputs.metadata == {
        "fps": 10.0,
        "duration": 3.0,
        "total_num_frames": 30,
        "frames_indices": expected,
        "video_backend": backend,
        "do_sample_frames": False,
    }
    assert tuple(inputs.metadata) == METADATA_KEYS


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_cap(clip, backend):
    inputs = build_vision_inputs(clip, VideoSettings(fps=10.0, max_frames=4, backend=backend))
    assert inputs.num_frames == 4
    assert inputs.metadata["frames_indices"] == [3, 11, 18, 26]
    np.testing.assert_allclose(frame_levels(inputs.frames), np.array([3, 11, 18, 26]) * 8, atol=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pixel_budget_and_size_factor(clip, backend):
    settings = VideoSettings(max_pixels=2 * 32 * 32, size_factor=32, backend=backend)
    inputs = build_vision_inputs(clip, settings)
    h, w = inputs.frame_size
    assert (h % 32, w % 32) == (0, 0) and h * w <= 2 * 32 * 32
    assert (h, w) == (32, 64)  # 64 x 96 scaled into the budget, aspect kept as far as possible
    settings16 = VideoSettings(max_pixels=4 * 16 * 16, min_pixels=256, size_factor=16)
    assert build_vision_inputs(clip, settings16).frame_size == (32, 32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_even_frame_count_repeats_last(odd_clip, backend):
    inputs = build_vision_inputs(odd_clip, VideoSettings(backend=backend))
    assert inputs.metadata["frames_indices"] == [*range(9), 8]
    assert inputs.num_frames == 10
    np.testing.assert_array_equal(inputs.frames[-1], inputs.frames[-2])
    assert inputs.qwen3_vl_group_timestamps() == [0.5, 2.5, 4.5, 6.5, 8.0]


def test_backends_agree(clip):
    settings = VideoSettings(fps=4.0, max_pixels=32 * 64)
    a = build_vision_inputs(clip, VideoSettings(**{**settings.to_dict(), "backend": "decord"}))
    b = build_vision_inputs(clip, VideoSettings(**{**settings.to_dict(), "backend": "pyav"}))
    assert a.frames.shape == b.frames.shape
    assert a.metadata["frames_indices"] == b.metadata["frames_indices"]
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 3


def test_auto_falls_back_to_pyav_when_decord_fails(clip, monkeypatch):
    def broken(path, settings):
        raise VideoError(path, "simulated decord failure")

    monkeypatch.setitem(video_backends._DECODERS, "decord", broken)
    inputs = build_vision_inputs(clip, VideoSettings(backend="auto"))
    assert inputs.metadata["video_backend"] == "pyav"


def test_auto_falls_back_to_pyav_when_decord_is_missing(clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` raise ImportError
    assert build_vision_inputs(clip).metadata["video_backend"] == "pyav"
    with pytest.raises(VideoError, match="decord is not installed"):
        build_vision_inputs(clip, VideoSettings(backend="decord"))


def test_model_input_helpers(clip):
    inputs = build_vision_inputs(clip)
    frames, meta = inputs.vllm_mm_data()["video"]
    assert frames is inputs.frames and meta == inputs.metadata and meta is not inputs.metadata
    meta["frames_indices"].append(99)  # editing the copy leaves the inputs untouched
    assert 99 not in inputs.metadata["frames_indices"]
    kwargs = inputs.hf_processor_kwargs()
    assert kwargs["do_sample_frames"] is False
    assert kwargs["videos"][0] is inputs.frames
    assert "do_sample_frames" not in kwargs["video_metadata"][0]
    assert kwargs["video_metadata"][0]["frames_indices"] == inputs.metadata["frames_indices"]


def _garbage(path):
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return path


def _truncated(path, clip):
    data = clip.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _no_frames(path):
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height = 32, 32
    return path


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated", "no_frames"])
def test_bad_files_raise_video_error(tmp_path, clip, backend, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        _garbage(path)
    elif kind == "truncated":
        _truncated(path, clip)
    elif kind == "no_frames":
        _no_frames(path)
    with pytest.raises(VideoError) as info:
        build_vision_inputs(path, VideoSettings(backend=backend))
    assert str(path) in str(info.value)
    assert isinstance(info.value, RuntimeError)
    if kind in ("missing", "empty"):
        assert ("not found" if kind == "missing" else "empty") in str(info.value)


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(VideoError, match="not a regular file"):
        build_vision_inputs(tmp_path)


def test_hf_qwen3_vl_video_processor_accepts_the_inputs(odd_clip):
    transformers = pytest.importorskip("transformers")
    try:
        processor = transformers.Qwen3VLVideoProcessor(
            size={"shortest_edge": 32 * 32, "longest_edge": 256 * 32 * 32}
        )
    except Exception as exc:  # torchvision not importable in this environment
        pytest.skip(f"Qwen3VLVideoProcessor unavailable: {exc}")
    inputs = build_vision_inputs(odd_clip)
    out = processor(**inputs.hf_processor_kwargs(), return_metadata=True)
    # 10 frames of 32 x 32: 5 temporal groups of 2 x 2 patches (16 px) = one merged token each.
    assert out["video_grid_thw"].tolist() == [[5, 2, 2]]
    assert out["video_metadata"][0].frames_indices == inputs.metadata["frames_indices"]


def test_video_error_pickles_with_path_and_problem():
    import pickle

    error = pickle.loads(pickle.dumps(VideoError("/x/y.mp4", "the file is empty (0 bytes)")))
    assert (error.path, error.problem) == ("/x/y.mp4", "the file is empty (0 bytes)")
    assert str(error) == "cannot decode video '/x/y.mp4': the file is empty (0 bytes)"
