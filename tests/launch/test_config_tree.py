"""One configuration tree: the run config's rollout, teacher, learner and curriculum sections are
the packages' own types, and every value reaches the engines, pools and ranks from its one field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from curriculum.config import CurriculumConfig
from launch.config import RunConfig, load_config
from rollout.engine_config import EngineConfig, RolloutConfig
from teacher_server.config import DEFAULT_TOKEN_ENV, TeacherConfig, TeacherSettings
from trainer.config import LearnerConfig
from trainer.learner import LearnerSettings


def _driver(overrides: list[str]) -> Any:
    """A Driver holding only a loaded config (no actors, no Ray)."""
    from launch.driver import Driver

    driver = Driver.__new__(Driver)
    driver.config = load_config(None, overrides)
    return driver


def test_sections_are_the_packages_types() -> None:
    types = {f.name: f.type for f in dataclasses.fields(RunConfig)}
    assert types["rollout"] in (RolloutConfig, "RolloutConfig")
    assert types["teacher"] in (TeacherSettings, "TeacherSettings")
    assert types["learner"] in (LearnerConfig, "LearnerConfig")
    assert types["curriculum"] in (CurriculumConfig, "CurriculumConfig")
    config = load_config(None, [])
    assert isinstance(config.rollout, RolloutConfig)
    assert isinstance(config.teacher, TeacherSettings)
    assert isinstance(config.learner, LearnerConfig)
    assert isinstance(config.curriculum, CurriculumConfig)
    # The run's teacher section and a scoring pool's settings are two types with two names.
    assert TeacherSettings is not TeacherConfig


def test_learner_settings_hand_down_the_whole_section() -> None:
    driver = _driver(
        [
            "learner.lr=3e-4",
            "learner.betas=[0.8,0.9]",
            "learner.threads=2",
            "learner.zero_stage=2",
            "learner.precision=bf16",
            "learner.gradient_checkpointing=true",
            "rollout.temperature=0.7",
            "trainer.steps=5",
            "trainer.ppo_epochs=2",
        ]
    )
    started: list[LearnerSettings] = []
    import trainer.learner_group

    original = trainer.learner_group.LearnerGroup
    trainer.learner_group.LearnerGroup = lambda settings, **_: started.append(settings)
    try:
        driver._start_learners()
    finally:
        trainer.learner_group.LearnerGroup = original
    (settings,) = started
    section = driver.config.learner
    for f in dataclasses.fields(LearnerConfig):
        assert getattr(settings, f.name) == getattr(section, f.name), f.name
    assert settings.betas is not section.betas  # a copy: the ranks cannot change the config
    assert settings.temperature == 0.7 and settings.total_steps == 10
    assert settings.model_dir == driver.config.model.student


def test_one_temperature_context_and_dtype_for_every_consumer() -> None:
    driver = _driver(
        ["rollout.temperature=0.6", "rollout.max_model_len=999", "learner.precision=bf16"]
    )
    cfg = driver.config
    assert cfg.rollout.sampling(seed=3) == dataclasses.replace(cfg.rollout.sampling(), seed=3)
    assert cfg.rollout.sampling().temperature == 0.6
    pools: list[TeacherConfig] = []
    import teacher_server.pool

    original = teacher_server.pool.TeacherPool
    teacher_server.pool.TeacherPool = lambda config, **_: pools.append(config)
    try:
        driver._scoring_pool("teacher", model="t", top_k=4)
        driver._scoring_pool("reference", model="r", top_k=0, backend="hf")
    finally:
        teacher_server.pool.TeacherPool = original
    engine = driver._engine_config()
    for pool in pools:
        assert (pool.temperature, pool.max_model_len, pool.dtype) == (0.6, 999, "bfloat16")
    assert (engine.max_model_len, engine.dtype, engine.threads) == (999, "bfloat16", 1)
    assert [p.backend for p in pools] == ["vllm", "hf"]
    assert [p.top_k for p in pools] == [4, 0]


def test_colocated_engines_take_the_ranks_threads() -> None:
    driver = _driver(
        [
            "rollout.colocate=true",
            "rollout.num_workers=2",
            "learner.num_ranks=2",
            "learner.threads=3",
        ]
    )
    assert driver._engine_config().threads == 3


def test_rollout_cpu_linear_reaches_every_engine_and_is_checked() -> None:
    from launch.config import ConfigError
    from launch.driver import engine_config

    assert _driver([])._engine_config().cpu_linear == "onednn"
    driver = _driver(["rollout.cpu_linear=torch"])
    assert driver._engine_config().cpu_linear == "torch"
    assert engine_config(driver.config, "m").cpu_linear == "torch"  # teacher answers, curriculum
    with pytest.raises(ConfigError, match=r"rollout\.cpu_linear"):
        load_config("demo_opd", ["rollout.cpu_linear=mkl"])
    with pytest.raises(ValueError, match="cpu_linear"):
        EngineConfig(model="m", cpu_linear="mkl")


def test_teacher_pool_settings_from_the_section() -> None:
    section = TeacherSettings(
        backend="remote", num_workers=3, url="http://t", token_env="TOK", timeout_s=7.0
    )
    shared = dict(
        temperature=0.5, max_model_len=64, dtype="float32", seed=1, num_cpus=0.5, num_gpus=0.0
    )
    teacher = section.pool_config(model="m", top_k=2, **shared)
    assert (teacher.backend, teacher.model, teacher.url, teacher.token_env) == (
        "remote",
        "",
        "http://t",
        "TOK",
    )
    assert (teacher.num_workers, teacher.timeout_s, teacher.num_cpus) == (3, 7.0, 0.5)
    reference = section.pool_config(model="m", top_k=0, backend="hf", **shared)
    assert (reference.backend, reference.model, reference.url) == ("hf", "m", "")
    assert reference.token_env == DEFAULT_TOKEN_ENV
    local = TeacherSettings().pool_config(model="m", top_k=0, **shared)
    assert local.token_env == DEFAULT_TOKEN_ENV and local.url == ""


def test_rollout_group_settings_from_the_section() -> None:
    section = RolloutConfig(
        num_workers=3, weight_bucket_mb=2, weight_transport="collective", timeout_s=9.0
    )
    group = section.group_config(1.0, 0.5)
    assert (group.num_workers, group.cpus_per_worker, group.gpus_per_worker) == (3, 1.0, 0.5)
    assert (group.bucket_bytes, group.transport, group.sample_timeout_s) == (
        2 * 1024 * 1024,
        "collective",
        9.0,
    )
    helper = section.group_config(1.0, 0.5, num_workers=5)
    default = dataclasses.replace(helper, bucket_bytes=group.bucket_bytes)
    assert helper.num_workers == 5 and helper.transport == "object_store"
    assert default.sample_timeout_s == 9.0


@pytest.mark.parametrize("precision, dtype", [("fp32", "float32"), ("bf16", "bfloat16")])
def test_inference_dtype_follows_the_learners_precision(precision: str, dtype: str) -> None:
    assert LearnerConfig(precision=precision).inference_dtype == dtype


def test_the_data_section_makes_the_video_settings_with_every_field() -> None:
    """The driver and the single-process peer sample videos with the settings of `data:` (the
    peer used to drop min_pixels)."""
    from tvg.video import VideoSettings

    data = load_config(
        None, ["data.fps=2.0", "data.max_frames=8", "data.max_pixels=4096", "data.min_pixels=2048"]
    ).data
    assert data.video_settings() == VideoSettings(
        fps=2.0, max_frames=8, max_pixels=4096, min_pixels=2048
    )


def test_the_shared_frame_cache_dir_reaches_every_process_that_decodes(tmp_path) -> None:
    """data.frame_cache_dir: the rollout engines (and the helper engines), the teacher and
    reference pools and the learner ranks all get the one resolved directory; a relative one lies
    under out_dir and is run-scoped."""
    out = tmp_path / "run"
    driver = _driver([f"out_dir={out}", "data.frame_cache_dir=frames"])
    shared = str(out / "frames")
    assert driver.config.frame_cache_path() == shared
    assert driver.config.frame_cache_is_run_scoped()
    from launch.driver import engine_config

    assert driver._engine_config().frame_cache_dir == shared
    assert engine_config(driver.config, "m").frame_cache_dir == shared
    pools: list[TeacherConfig] = []
    started: list[LearnerSettings] = []
    import teacher_server.pool
    import trainer.learner_group

    originals = (teacher_server.pool.TeacherPool, trainer.learner_group.LearnerGroup)
    teacher_server.pool.TeacherPool = lambda config, **_: pools.append(config)
    trainer.learner_group.LearnerGroup = lambda settings, **_: started.append(settings)
    try:
        driver._scoring_pool("teacher", model="t", top_k=4)
        driver._scoring_pool("reference", model="r", top_k=0, backend="hf")
        driver._start_learners()
    finally:
        teacher_server.pool.TeacherPool, trainer.learner_group.LearnerGroup = originals
    assert [p.frame_cache_dir for p in pools] == [shared, shared]
    assert started[0].frame_cache_dir == shared
    # Elsewhere: kept (not run-scoped); unset: nobody shares.
    elsewhere = _driver([f"out_dir={out}", f"data.frame_cache_dir={tmp_path / 'frames'}"])
    assert not elsewhere.config.frame_cache_is_run_scoped()
    assert elsewhere._engine_config().frame_cache_dir == str(tmp_path / "frames")
    beside = _driver([f"out_dir={out}", "data.frame_cache_dir=../frames"]).config
    assert beside.frame_cache_path() == str(tmp_path / "frames")
    assert not beside.frame_cache_is_run_scoped()
    none = _driver([f"out_dir={out}"])
    assert none.config.frame_cache_path() is None and none._engine_config().frame_cache_dir is None


@pytest.mark.parametrize("value", ["''", ".", "..", "./"])
def test_a_frame_cache_dir_that_is_or_holds_out_dir_is_refused(tmp_path, value: str) -> None:
    from launch.config import ConfigError

    with pytest.raises(ConfigError, match=r"data\.frame_cache_dir"):
        load_config(None, [f"out_dir={tmp_path / 'run'}", f"data.frame_cache_dir={value}"])


def test_processes_sharing_a_frame_cache_dir_decode_each_video_once(tmp_path) -> None:
    """What data.frame_cache_dir buys: a second cache on the same directory (another process)
    reads the frames the first one decoded instead of decoding them again."""
    import numpy as np

    from tvg.frame_cache import FrameCache
    from tvg.synth_render import encode_video
    from tvg.video import VideoSettings, build_vision_inputs

    video = tmp_path / "clip.mp4"
    encode_video(np.full((8, 32, 32, 3), 120, np.uint8), video, fps=2)
    settings = VideoSettings(fps=1.0, max_frames=4)
    shared = tmp_path / "frames"
    first, second = FrameCache(disk_dir=shared), FrameCache(disk_dir=shared)
    a = build_vision_inputs(video, settings, first)
    b = build_vision_inputs(video, settings, second)
    assert first.stats().misses == 1 and second.stats().misses == 0
    assert second.stats().disk_hits == 1
    assert np.array_equal(a.frames, b.frames)
    alone = FrameCache()
    build_vision_inputs(video, settings, alone)
    assert alone.stats().misses == 1  # without the directory: decoded again
