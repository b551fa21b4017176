"""Tiny models: built deterministically, loaded by transformers and vLLM, which agree exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from launch.tiny_models import ModelSpec, build_tiny_model
from launch.tiny_models.build import count_parameters
from launch.tiny_models.tokenizer import SPECIAL_TOKENS, build_tokenizer
from runtime.hf_compat import load_hf_model

MODEL_NAMES = ("qwen3_vl-student", "qwen3_vl-teacher", "qwen2_5_vl-student", "qwen2_5_vl-teacher")
QUERY = "When is the red square visible in the video? Give the start and end time in seconds."


def synthetic_clip(num_frames: int = 8, size: int = 32) -> tuple[np.ndarray, dict]:
    """A red square on grey during frames 2-5, at 1 fps, with the metadata vLLM needs."""
    frames = np.full((num_frames, size, size, 3), 128, np.uint8)
    frames[2:6, 4:16, 4:16] = (220, 30, 30)
    metadata = {
        "fps": 1.0,
        "duration": float(num_frames),
        "total_num_frames": num_frames,
        "frames_indices": list(range(num_frames)),
        "video_backend": "decord",
        "do_sample_frames": False,
    }
    return frames, metadata


def hf_inputs(processor, frames: np.ndarray, metadata: dict):
    """Processor inputs for the one-video grounding prompt (HF's metadata has no sampling flag)."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUERY}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    hf_metadata = {k: v for k, v in metadata.items() if k != "do_sample_frames"}
    inputs = processor(
        text=[text],
        videos=[frames],
        video_metadata=[hf_metadata],
        do_sample_frames=False,
        return_tensors="pt",
    )
    return text, inputs


def test_tokenizer_is_deterministic_and_splits_digits() -> None:
    a, b = build_tokenizer(), build_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    assert 300 <= len(a) <= 512
    for token in SPECIAL_TOKENS:
        assert len(a.encode(token, add_special_tokens=False)) == 1, token
    pieces = a.convert_ids_to_tokens(a.encode("in 12.5 - 30.0 seconds", add_special_tokens=False))
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert all(len(p.strip("Ġ")) == 1 for p in digits), digits
    text = "The event happens in 12.5 - 30.0 seconds."
    assert a.decode(a.encode(text, add_special_tokens=False)) == text


def test_chat_template_places_one_video_placeholder() -> None:
    tok = build_tokenizer()
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>hi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_build_is_deterministic_by_seed(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    first = build_tiny_model(tmp_path / "a", ModelSpec("qwen3_vl", "student", seed=3))
    second = build_tiny_model(tmp_path / "b", ModelSpec("qwen3_vl", "student", seed=3))
    other = build_tiny_model(tmp_path / "c", ModelSpec("qwen3_vl", "student", seed=4))
    wa, wb, wc = (load_file(str(p / "model.safetensors")) for p in (first, second, other))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert (first / "tokenizer.json").read_text() == (other / "tokenizer.json").read_text()


def test_build_rejects_unknown_spec(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model family 'llama'"):
        build_tiny_model(tmp_path, ModelSpec("llama", "student"))
    with pytest.raises(ValueError, match="unknown model size 'huge'"):
        build_tiny_model(tmp_path, ModelSpec("qwen3_vl", "huge"))


def test_all_models_share_one_tokenizer_and_differ_in_size(tiny_models_dir: Path) -> None:
    tokenizers = {n: (tiny_models_dir / n / "tokenizer.json").read_text() for n in MODEL_NAMES}
    assert len(set(tokenizers.values())) == 1
    for family in ("qwen3_vl", "qwen2_5_vl"):
        student = count_parameters(tiny_models_dir / f"{family}-student")
        teacher = count_parameters(tiny_models_dir / f"{family}-teacher")
        assert 300_000 < student < teacher < 2_000_000
        config = json.loads((tiny_models_dir / f"{family}-student" / "config.json").read_text())
        assert config["model_type"] == family


@pytest.mark.e2e
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_vllm_greedy_and_prompt_logprobs_match_transformers(
    name: str, tiny_models_dir: Path, vllm_engines
) -> None:
    from transformers import AutoProcessor
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    model_dir = tiny_models_dir / name
    processor = AutoProcessor.from_pretrained(model_dir)
    model = load_hf_model(model_dir).eval()
    frames, metadata = synthetic_clip()
    text, inputs = hf_inputs(processor, frames, metadata)
    prompt_ids = inputs["input_ids"][0].tolist()
    video_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert prompt_ids.count(video_id) == 4  # 4 frame groups x 1 merged token at 32 px

    # Greedy decoding: token for token.
    max_new = 12
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=max_new, do_sample=False)
    hf_tokens = generated[0, len(prompt_ids) :].tolist()
    llm = vllm_engines(name)
    out = llm.generate(
        [{"prompt": text, "multi_modal_data": {"video": (frames, metadata)}}],
        SamplingParams(max_tokens=max_new, temperature=0.0),
        use_tqdm=False,
    )[0]
    assert list(out.prompt_token_ids) == prompt_ids
    assert list(out.outputs[0].token_ids) == hf_tokens

    # prompt_logprobs on a fixed sequence (prompt + greedy continuation) vs HF log_softmax.
    # vLLM takes the chat text's token ids with ONE <|video_pad|> per video and expands it itself.
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
    hf_lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(full[1:])[:, None])[:, 0]
    diff = (vllm_lp - hf_lp).abs()
    assert torch.allclose(vllm_lp, hf_lp, atol=1e-4), [
        (i + 1, full[i + 1], float(d)) for i, d in enumerate(diff) if d > 1e-5
    ][:10]
