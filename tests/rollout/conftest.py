"""Fixtures of the rollout tests: a small synthetic video set, one shared vLLM engine, and a
capture of one logger's records (for the log-filter tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.batch import PromptSpec
from tvg.video import VideoSettings

VIDEO_SETTINGS = VideoSettings(fps=1.0, max_frames=64)


STUDENT_KV_CACHE_BYTES = 256 * 1024 * 1024


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A level-1 synthetic dataset (real mp4 files): 8 train, 6 test videos."""
    from tvg.synth import write_dataset

    out = tmp_path_factory.mktemp("rollout_synth")
    write_dataset(out, n_train=8, n_val=0, n_test=6, seed=1, level=1)
    return out


@pytest.fixture(scope="session")
def synth_specs(synth_dir: Path) -> list[PromptSpec]:
    """The test split as prompt specs (videos of different lengths)."""
    from tvg.formats import read_samples

    samples = read_samples(synth_dir / "test.json", video_root=synth_dir / "videos")
    return [PromptSpec.from_sample(s, video_settings=VIDEO_SETTINGS) for s in samples]


@pytest.fixture(scope="session")
def student_engines(tiny_models_dir: Path):
    """In-process VLLMEngines on the tiny Qwen3-VL student, one per `cpu_linear` kind, built on
    first use and shared by the rollout tests (a getter: kind -> engine).

    Tests that push weights into one must restore the original weights before they end.
    """
    from rollout.engine_config import EngineConfig
    from rollout.engine_vllm import VLLMEngine

    engines: dict[str, VLLMEngine] = {}
    model = str(tiny_models_dir / "qwen3_vl-student")

    def get(kind: str) -> VLLMEngine:
        if kind not in engines:
            # 256 MiB of KV cache each (~500k tokens of the tiny model) rather than 1 GiB: the
            # engines live for the whole session.
            config = EngineConfig(
                model=model, threads=2, cpu_linear=kind, kv_cache_bytes=STUDENT_KV_CACHE_BYTES
            )
            engines[kind] = VLLMEngine(config)
        return engines[kind]

    return get


@pytest.fixture(scope="session")
def student_engine(student_engines):
    """The shared student engine with the default kernels (cpu_linear "onednn")."""
    return student_engines("onednn")


@pytest.fixture(params=["onednn", "torch", "vllm"])
def updatable_engine(request: pytest.FixtureRequest, student_engines):
    """The shared student engine of each `cpu_linear` kind, for the weight-update tests."""
    return student_engines(request.param)
