"""Tiny models with Qwen's real vocabulary size: 151,936 embedding / LM-head rows, small tokenizer.

The ids past the tokenizer are unused padding, as in Qwen2.5-VL / Qwen3-VL's checkpoints. The build
pads the unpadded model of the same seed with zero rows; vLLM and transformers agree on the padded
model (raw, full-width distribution); every sampler and scorer masks the padding ids, so inside the
system the padded model is the same policy as the unpadded one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_tiny_models import hf_inputs, synthetic_clip

from launch.cli import main
from launch.tiny_models import ModelSpec, build_tiny_model
from launch.tiny_models.build import _manifest_for, count_head_parameters, count_parameters
from launch.tiny_models.tokenizer import build_tokenizer
from runtime.hf_compat import load_hf_model

PADDED = 151_936  # Qwen2.5-VL / Qwen3-VL's config.vocab_size
STUDENT = "qwen3_vl-student"
PADDED_TENSORS = ("model.language_model.embed_tokens.weight", "lm_head.weight")

# Engines built here stay alive until the session ends: tearing down an in-process vLLM engine
# destroys vLLM's process-global parallel state and breaks the other engines.
_KEEP_ALIVE: list = []


def _build_args(out: Path, vocab_size: int) -> list[str]:
    return [
        "models",
        "build",
        "--out",
        str(out),
        "--family",
        "qwen3_vl",
        "--size",
        "student",
        "--vocab-size",
        str(vocab_size),
    ]


def test_cli_builds_a_padded_model_with_the_small_tokenizer(
    tmp_path: Path, tiny_models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    assert main(_build_args(tmp_path, PADDED)) == 0
    padded, plain = tmp_path / STUDENT, tiny_models_dir / STUDENT  # both seed 0
    assert str(padded) in capsys.readouterr().out
    tokens = len(build_tokenizer())
    assert tokens < 512

    config = json.loads((padded / "config.json").read_text())
    assert config["text_config"]["vocab_size"] == PADDED
    assert json.loads((plain / "config.json").read_text())["text_config"]["vocab_size"] == tokens
    # The tokenizer is unchanged: same files, same length.
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (padded / name).read_text() == (plain / name).read_text(), name
    assert len(AutoTokenizer.from_pretrained(padded)) == tokens

    # Embedding and LM head have PADDED rows: the unpadded model's, then zeros; the rest is equal.
    wp, wu = (
        load_file(str(padded / "model.safetensors")),
        load_file(str(plain / "model.safetensors")),
    )
    assert wp.keys() == wu.keys()
    for key in wp:
        if key in PADDED_TENSORS:
            assert wp[key].shape == (PADDED, wu[key].shape[1]), key
            assert torch.equal(wp[key][:tokens], wu[key]), key
            assert not wp[key][tokens:].any(), key
        else:
            assert torch.equal(wp[key], wu[key]), key
    hidden = wu["lm_head.weight"].shape[1]
    assert count_parameters(padded) - count_parameters(plain) == 2 * (PADDED - tokens) * hidden
    # The FLOPs model's N leaves out the input embedding (a lookup), keeps the LM head.
    embedding = [k for k in wp if k.endswith("embed_tokens.weight")]
    assert len(embedding) == 1
    assert count_parameters(padded, matmul_only=True) == count_parameters(padded) - (
        wp[embedding[0]].numel()
    )
    # The LM head apart: it counts only at the positions with logits (launch.flops).
    assert count_head_parameters(padded) == PADDED * hidden
    assert count_head_parameters(plain) == tokens * hidden

    manifest = json.loads((padded / "vopd_build.json").read_text())
    assert manifest["vocab_size"] == PADDED
    # Unpadded builds keep their manifest, so caches built before the option are reused.
    assert "vocab_size" not in json.loads((plain / "vopd_build.json").read_text())
    assert "vocab_size" not in _manifest_for(ModelSpec())

    assert main(["models", "info", str(padded)]) == 0
    info = capsys.readouterr().out
    padding = PADDED - tokens
    assert f"vocab           {PADDED} (tokenizer {tokens}; {padding} unused padding ids)" in info
    assert main(["models", "info", str(plain)]) == 0
    assert f"vocab           {tokens} (= tokenizer)" in capsys.readouterr().out


def test_vocab_size_below_the_tokenizer_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = len(build_tokenizer())
    assert main(_build_args(tmp_path / "out", 100)) == 2
    err = capsys.readouterr().err
    assert f"vocab_size 100 is smaller than the tokenizer's {tokens} tokens" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=f"vocab_size {tokens - 1} is smaller than the tokenizer"):
        build_tiny_model(tmp_path, ModelSpec("qwen3_vl", "student", vocab_size=tokens - 1))
    with pytest.raises(ValueError, match="vocab_size must be an integer"):
        build_tiny_model(tmp_path, ModelSpec("qwen3_vl", "student", vocab_size="151936"))  # type: ignore[arg-type]


def test_pad_copies_a_model_with_the_rows_a_padded_build_has(
    tmp_path: Path, tiny_models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vopd models pad` on a (trained or built) model gives the weights a padded build of the
    same model has; the tokenizer files are copied unchanged; bad requests are clear errors."""
    from safetensors.torch import load_file

    plain = tiny_models_dir / STUDENT
    out = tmp_path / "padded_copy"
    assert main(["models", "pad", str(plain), "--out", str(out), "--vocab-size", "1024"]) == 0
    assert str(out) in capsys.readouterr().out
    built = build_tiny_model(tmp_path / "built", ModelSpec("qwen3_vl", "student", vocab_size=1024))
    wp, wb = load_file(str(out / "model.safetensors")), load_file(str(built / "model.safetensors"))
    assert wp.keys() == wb.keys()
    for key in wp:
        assert torch.equal(wp[key], wb[key]), key
    assert json.loads((out / "config.json").read_text())["text_config"]["vocab_size"] == 1024
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (out / name).read_text() == (plain / name).read_text(), name
    manifest = json.loads((out / "vopd_build.json").read_text())
    assert manifest["vocab_size"] == 1024 and manifest["padded_from"] == str(plain)

    tokens = len(build_tokenizer())
    assert main(["models", "pad", str(plain), "--out", str(out), "--vocab-size", "1024"]) == 2
    assert "exists" in capsys.readouterr().err
    bad = ["models", "pad", str(plain), "--out", str(tmp_path / "x"), "--vocab-size", "10"]
    assert main(bad) == 2
    assert f"smaller than the tokenizer's {tokens} tokens" in capsys.readouterr().err

    def pad(src: Path, dst: str, rows: int) -> int:
        out_arg = str(tmp_path / dst)
        return main(["models", "pad", str(src), "--out", out_arg, "--vocab-size", f"{rows}"])

    assert pad(out, "y", 512) == 2
    assert "already has 1024 embedding rows" in capsys.readouterr().err
    assert pad(tmp_path, "z", 512) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("x", "y", "z"))


# ----------------------------------------------------------------------------------------------
# End to end: vLLM (CPU build) and transformers on a padded model.


@pytest.fixture(scope="module")
def padded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The qwen3_vl student (seed 0) with 151,936 embedding rows."""
    out = tmp_path_factory.mktemp("padded_models")
    return build_tiny_model(out, ModelSpec("qwen3_vl", "student", seed=0, vocab_size=PADDED))


@pytest.fixture(scope="module")
def padded_engine(padded_dir: Path):
    """The rollout engine (vLLM, float32) on the padded student."""
    from rollout.engine_config import EngineConfig
    from rollout.engine_vllm import VLLMEngine

    engine = VLLMEngine(EngineConfig(model=str(padded_dir), threads=2))
    _KEEP_ALIVE.append(engine)
    return engine


@pytest.fixture(scope="module")
def padded_specs(tmp_path_factory: pytest.TempPathFactory) -> list:
    """Two prompts on real mp4 files (level-1 synthetic videos)."""
    from rollout.batch import PromptSpec
    from tvg.formats import read_samples
    from tvg.synth import write_dataset
    from tvg.video import VideoSettings

    out = tmp_path_factory.mktemp("padded_synth")
    write_dataset(out, n_train=0, n_val=0, n_test=2, seed=1, level=1)
    samples = read_samples(out / "test.json", video_root=out / "videos")
    settings = VideoSettings(fps=1.0, max_frames=64)
    return [PromptSpec.from_sample(s, video_settings=settings) for s in samples]


@pytest.mark.e2e
def test_vllm_greedy_and_prompt_logprobs_match_transformers_with_padding(
    padded_dir: Path, padded_engine
) -> None:
    """The existing parity test's checks, on the raw (unmasked) 151,936-wide distribution."""
    from transformers import AutoProcessor
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    processor = AutoProcessor.from_pretrained(padded_dir)
    model = load_hf_model(padded_dir).eval()
    llm = padded_engine.llm
    frames, metadata = synthetic_clip()
    text, inputs = hf_inputs(processor, frames, metadata)
    prompt_ids = inputs["input_ids"][0].tolist()

    max_new = 12
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=max_new, do_sample=False)
    hf_tokens = generated[0, len(prompt_ids) :].tolist()
    out = llm.generate(
        [{"prompt": text, "multi_modal_data": {"video": (frames, metadata)}}],
        SamplingParams(max_tokens=max_new, temperature=0.0),
        use_tqdm=False,
    )[0]
    assert list(out.prompt_token_ids) == prompt_ids
    assert list(out.outputs[0].token_ids) == hf_tokens

    full = prompt_ids + hf_tokens
    unexpanded = processor.tokenizer(text, add_special_tokens=False)["input_ids"] + hf_tokens
    scored = llm.generate(
        [TokensPrompt(prompt_token_ids=unexpanded, multi_modal_data={"video": (frames, metadata)})],
        SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0),
        use_tqdm=False,
    )[0]
    assert list(scored.prompt_token_ids) == full
    vllm_lp = torch.tensor(
        [scored.prompt_logprobs[i][full[i]].logprob for i in range(1, len(full))]
    )
    hf_full = dict(inputs)
    hf_full["input_ids"] = torch.tensor([full])
    hf_full["attention_mask"] = torch.ones(1, len(full), dtype=torch.long)
    if "mm_token_type_ids" in hf_full:
        pad = torch.zeros(1, len(hf_tokens), dtype=hf_full["mm_token_type_ids"].dtype)
        hf_full["mm_token_type_ids"] = torch.cat([hf_full["mm_token_type_ids"], pad], dim=1)
    with torch.no_grad():
        logits = model(**hf_full).logits[0, :-1].float()
    assert logits.shape[-1] == PADDED
    hf_lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(full[1:])[:, None])[:, 0]
    assert torch.allclose(vllm_lp, hf_lp, atol=1e-4), float((vllm_lp - hf_lp).abs().max())
    # The padding ids carry most of the raw mass (151k zero logits): the mask below matters.
    assert float(hf_lp.mean()) < -10.0


@pytest.mark.e2e
def test_samplers_and_scorers_mask_the_padding_ids(
    padded_dir: Path, padded_engine, padded_specs: list, tiny_models_dir: Path
) -> None:
    """vLLM sampler, transformers scoring (learner / hf teacher) and the transformers engine see
    the tokenizer's vocabulary only: the padded model is then the unpadded model's policy."""
    from transformers import AutoProcessor

    from rollout.engine_config import EngineConfig, SamplingConfig
    from rollout.engine_hf import HFEngine
    from runtime.hf_scoring import ScoringItem, completion_log_probs
    from tvg.video import build_vision_inputs

    tokens = len(build_tokenizer())
    sampling = SamplingConfig(temperature=1.0, max_tokens=12, logprobs_topk=3)
    batch = padded_engine.sample(padded_specs, n=2, sampling=sampling)
    assert not batch.skipped and len(batch.trajectories) == 4
    for traj in batch.trajectories:
        assert traj.completion_ids.max() < tokens and traj.topk_ids.max() < tokens

    items = [
        ScoringItem(
            padded_specs[t.prompt_index].query,
            padded_specs[t.prompt_index].prompt_style,
            build_vision_inputs(
                padded_specs[t.prompt_index].video, padded_specs[t.prompt_index].video_settings
            ),
            t.completion_ids.tolist(),
        )
        for t in batch.trajectories
    ]
    scores = {}
    for name, path in (("padded", padded_dir), ("plain", tiny_models_dir / STUDENT)):
        model = load_hf_model(path).eval()
        with torch.no_grad():
            scores[name] = completion_log_probs(
                model, AutoProcessor.from_pretrained(path), items, temperature=1.0, top_k=3
            )
    for traj, padded, plain in zip(
        batch.trajectories, scores["padded"], scores["plain"], strict=True
    ):
        np.testing.assert_allclose(traj.logprobs, padded["logprobs"].numpy(), atol=1e-3)
        np.testing.assert_allclose(traj.topk_logprobs, padded["topk_logprobs"].numpy(), atol=1e-3)
        np.testing.assert_allclose(padded["logprobs"], plain["logprobs"], atol=1e-5)
        assert torch.equal(padded["topk_ids"], plain["topk_ids"])

    # The transformers engine: sampled ids stay inside the tokenizer; greedy = vLLM's = unpadded.
    hf = HFEngine(EngineConfig(model=str(padded_dir), engine="hf"))
    sampled = hf.sample(padded_specs, n=2, sampling=SamplingConfig(temperature=1.0, max_tokens=8))
    assert max(int(t.completion_ids.max()) for t in sampled.trajectories) < tokens
    greedy = SamplingConfig(temperature=0.0, max_tokens=12)
    vllm_greedy = padded_engine.sample(padded_specs, n=1, sampling=greedy)
    plain_greedy = HFEngine(EngineConfig(model=str(tiny_models_dir / STUDENT), engine="hf")).sample(
        padded_specs, n=1, sampling=greedy
    )
    hf_greedy = hf.sample(padded_specs, n=1, sampling=greedy)
    ids = [[t.completion_ids.tolist() for t in b.trajectories] for b in (vllm_greedy, hf_greedy)]
    assert ids[0] == ids[1] == [t.completion_ids.tolist() for t in plain_greedy.trajectories]
    for a, b in zip(vllm_greedy.trajectories, plain_greedy.trajectories, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-3)


@pytest.mark.e2e
def test_vllm_teacher_lists_the_whole_tokenizer_vocabulary_with_padding(
    padded_dir: Path, padded_engine, padded_specs: list, tiny_models_dir: Path
) -> None:
    """The vLLM teacher masks the padding ids: top-k = len(tokenizer) (what the driver asks for
    the exact reverse KL) holds its whole distribution, equal to the unpadded model's."""
    from transformers import AutoProcessor

    from rollout.engine_config import SamplingConfig
    from runtime.hf_scoring import ScoringItem, completion_log_probs
    from teacher_server.backend_vllm import VLLMScorer
    from teacher_server.config import TeacherConfig
    from teacher_server.items import items_from_batch
    from tvg.video import build_vision_inputs

    tokens = len(build_tokenizer())
    batch = padded_engine.sample(
        padded_specs[:1], n=2, sampling=SamplingConfig(temperature=1.0, max_tokens=8)
    )
    items = items_from_batch(batch)
    config = TeacherConfig(
        backend="vllm", model=str(padded_dir), top_k=tokens, temperature=0.7, max_model_len=2048
    )
    scorer = VLLMScorer(config)
    _KEEP_ALIVE.append(scorer)
    results = scorer.score(items)

    plain = tiny_models_dir / STUDENT
    model = load_hf_model(plain).eval()
    hf_items = [
        ScoringItem(
            i.prompt.query,
            i.prompt.prompt_style,
            build_vision_inputs(i.prompt.video, i.prompt.video_settings),
            i.completion_ids.tolist(),
        )
        for i in items
    ]
    with torch.no_grad():
        reference = completion_log_probs(
            model, AutoProcessor.from_pretrained(plain), hf_items, temperature=0.7
        )
    for got, ref in zip(results, reference, strict=True):
        np.testing.assert_allclose(got.logprobs, ref["logprobs"].numpy(), atol=1e-3)
        finite = np.isfinite(got.topk_logprobs)
        assert np.all(got.topk_ids[finite] < tokens)
        # The list is the whole distribution: its finite entries sum to one.
        total = torch.logsumexp(torch.as_tensor(got.topk_logprobs, dtype=torch.float64), dim=-1)
        np.testing.assert_allclose(total.numpy(), 0.0, atol=1e-4)
