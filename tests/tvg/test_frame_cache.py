"""The decoded-frame cache (tvg.frame_cache.FrameCache) used by build_vision_inputs."""

from __future__ import annotations

import os
import threading
import time
import warnings

import numpy as np
import pytest
from video_test_helpers import index_video

from tvg import frame_cache as frame_cache_module
from tvg.frame_cache import FrameCache, cache_key
from tvg.video import VideoError, VideoSettings, build_vision_inputs, decode_vision_inputs

SETTINGS = VideoSettings(fps=2.0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Three small distinct videos (8 frames at 4 fps, 64 x 64)."""
    root = tmp_path_factory.mktemp("cache_videos")
    return [index_video(root / f"v{i}.mp4", 8 + 2 * i, 4, 64, 64) for i in range(3)]


def test_second_request_is_a_hit_and_shares_read_only_frames(videos):
    cache = FrameCache()
    first = build_vision_inputs(videos[0], SETTINGS, cache)
    second = build_vision_inputs(videos[0], SETTINGS, cache)
    assert second is first
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.disk_hits, stats.entries) == (1, 1, 0, 1)
    assert stats.nbytes == first.nbytes
    assert not first.frames.flags.writeable
    with pytest.raises(ValueError):
        first.frames[0, 0, 0, 0] = 1


def test_libraries_get_writable_frames_and_the_cache_stays_read_only(videos):
    """transformers turns frames into tensors with torch.from_numpy, which warns on read-only
    arrays: cached frames are handed over as writable copies (uncached ones as they are)."""
    import torch

    cached = build_vision_inputs(videos[0], SETTINGS, FrameCache())
    handed = [cached.vllm_mm_data()["video"][0], cached.hf_processor_kwargs()["videos"][0]]
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch gives this warning once per process otherwise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tensors = [torch.from_numpy(frames) for frames in handed]
    finally:
        torch.set_warn_always(warn_always)
    for frames, tensor in zip(handed, tensors, strict=True):
        assert frames is not cached.frames and np.array_equal(frames, cached.frames)
        tensor.zero_()  # a write through the tensor leaves the cached frames alone
    assert not cached.frames.flags.writeable and cached.frames.any()
    fresh = build_vision_inputs(videos[0], SETTINGS)
    assert fresh.hf_processor_kwargs()["videos"][0] is fresh.frames  # no copy needed


def test_key_depends_on_settings_and_file_version(videos, tmp_path):
    path = tmp_path / "copy.mp4"
    path.write_bytes(videos[0].read_bytes())
    key = cache_key(path, SETTINGS)
    assert cache_key(path, VideoSettings(fps=1.0)) != key
    assert cache_key(path, SETTINGS) == key
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache_key(path, SETTINGS) != key
    cache = FrameCache()
    build_vision_inputs(path, SETTINGS, cache)
    build_vision_inputs(path, VideoSettings(fps=1.0), cache)
    assert cache.stats().misses == 2


def test_lru_eviction_by_bytes(videos):
    sizes = [decode_vision_inputs(v, SETTINGS).nbytes for v in videos]
    cache = FrameCache(max_bytes=sizes[0] + sizes[1] + sizes[2] - 1)
    keys = [cache_key(v, SETTINGS) for v in videos]
    build_vision_inputs(videos[0], SETTINGS, cache)
    build_vision_inputs(videos[1], SETTINGS, cache)
    build_vision_inputs(videos[0], SETTINGS, cache)  # 0 is now the most recently used
    build_vision_inputs(videos[2], SETTINGS, cache)  # over budget: evicts 1, the LRU entry
    assert keys[0] in cache and keys[2] in cache and keys[1] not in cache
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions) == (1, 3, 1)
    assert stats.nbytes == sizes[0] + sizes[2] <= cache.max_bytes


def test_entry_larger_than_budget_is_returned_not_kept(videos):
    cache = FrameCache(max_bytes=10)
    inputs = build_vision_inputs(videos[0], SETTINGS, cache)
    assert inputs.num_frames > 0 and len(cache) == 0 and cache.nbytes == 0


def test_disk_round_trip(videos, tmp_path):
    writer = FrameCache(disk_dir=tmp_path / "cache")
    original = build_vision_inputs(videos[1], SETTINGS, writer)
    files = list((tmp_path / "cache").iterdir())
    assert [f.suffix for f in files] == [".npz"]  # no temporary file left behind
    reader = FrameCache(disk_dir=tmp_path / "cache")  # a fresh process: memory empty
    loaded = build_vision_inputs(videos[1], SETTINGS, reader)
    stats = reader.stats()
    assert (stats.disk_hits, stats.misses) == (1, 0)
    np.testing.assert_array_equal(loaded.frames, original.frames)
    np.testing.assert_array_equal(loaded.timestamps, original.timestamps)
    assert loaded.metadata == original.metadata
    assert loaded.settings == original.settings and loaded.video_path == original.video_path
    assert not loaded.frames.flags.writeable
    # Decoded or read back, an entry carries the key it is kept under.
    assert loaded.cache_key == original.cache_key == cache_key(videos[1], SETTINGS)
    assert build_vision_inputs(videos[1], SETTINGS).cache_key is None  # no cache: no key
    build_vision_inputs(videos[1], SETTINGS, reader)
    assert reader.stats().hits == 1  # now served from memory


def test_corrupt_disk_entry_is_decoded_again(videos, tmp_path):
    cache_dir = tmp_path / "cache"
    build_vision_inputs(videos[0], SETTINGS, FrameCache(disk_dir=cache_dir))
    (entry,) = cache_dir.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    cache = FrameCache(disk_dir=cache_dir)
    inputs = build_vision_inputs(videos[0], SETTINGS, cache)
    assert cache.stats().misses == 1 and inputs.num_frames == 4
    assert (
        FrameCache(disk_dir=cache_dir)
        .get_or_create(cache_key(videos[0], SETTINGS), lambda: pytest.fail("should load from disk"))
        .num_frames
        == 4
    )


def test_failed_disk_write_leaves_no_file(videos, tmp_path, monkeypatch):
    def failing_savez(handle, **arrays):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(frame_cache_module.np, "savez", failing_savez)
    cache = FrameCache(disk_dir=tmp_path / "cache")
    inputs = build_vision_inputs(videos[0], SETTINGS, cache)  # still returned
    assert inputs.num_frames == 4
    assert list((tmp_path / "cache").iterdir()) == []


def test_stale_temporary_files_are_removed(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    stale, fresh = cache_dir / ".abc.1.tmp", cache_dir / ".abc.2.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    FrameCache(disk_dir=cache_dir)
    assert not stale.exists() and fresh.exists()


def test_concurrent_requests_decode_once(videos):
    cache = FrameCache()
    calls = []
    barrier = threading.Barrier(6)
    results = []

    def create():
        calls.append(1)
        time.sleep(0.05)
        return decode_vision_inputs(videos[2], SETTINGS)

    def worker():
        barrier.wait()
        results.append(cache.get_or_create("key", create))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 6 and all(r is results[0] for r in results)
    stats = cache.stats()
    assert (stats.misses, stats.hits) == (1, 5)


def test_errors_propagate_and_are_not_cached(tmp_path):
    cache = FrameCache()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    for _ in range(2):
        with pytest.raises(VideoError):
            build_vision_inputs(bad, SETTINGS, cache)
    with pytest.raises(VideoError, match="not found"):
        build_vision_inputs(tmp_path / "missing.mp4", SETTINGS, cache)
    assert len(cache) == 0


def test_clear(videos, tmp_path):
    cache = FrameCache(disk_dir=tmp_path / "cache")
    build_vision_inputs(videos[0], SETTINGS, cache)
    cache.clear(disk=True)
    assert len(cache) == 0 and list((tmp_path / "cache").iterdir()) == []
