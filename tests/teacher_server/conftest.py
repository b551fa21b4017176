"""Fixtures of the teacher tests: videos and one student-sampled batch, shared by the modules."""

from __future__ import annotations

from pathlib import Path

import pytest
from teacher_test_helpers import sample_batch, write_videos


@pytest.fixture(scope="session")
def teacher_videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small mp4 clips."""
    return write_videos(tmp_path_factory.mktemp("teacher_videos"))


@pytest.fixture(scope="session")
def student_batch(tiny_models_dir: Path, vllm_engines, teacher_videos):
    """A RolloutBatch sampled by the qwen3_vl student (3 prompts x 2 samples), fresh per use."""
    import copy

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    batch = sample_batch(vllm_engines("qwen3_vl-student"), tokenizer, teacher_videos)

    def fresh():
        return copy.deepcopy(batch)

    return fresh


@pytest.fixture(scope="session")
def vllm_scorers():
    """In-process vLLM teacher scorers by config, kept for the whole session.

    Tearing down one in-process vLLM engine breaks vLLM's process-global state for the others
    (docs/ARCHITECTURE.md), so engines live as long as the test process.
    """
    from teacher_server.backend_vllm import VLLMScorer

    scorers: dict = {}

    def get(config):
        key = (config.model, config.top_k, config.temperature, config.max_model_len, config.dtype)
        if key not in scorers:
            scorers[key] = VLLMScorer(config)
        return scorers[key]

    return get
