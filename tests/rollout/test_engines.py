"""The vLLM rollout engine against transformers: log-probs, placeholder ban, bad inputs, and
in-place bucketed weight updates (text and vision tower) against fresh engines."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rollout.engine_config import EngineConfig, SamplingConfig
from rollout.weight_sync import bucket_state_dict
from runtime.checksums import state_checksum
from runtime.hf_compat import load_hf_model
from runtime.hf_scoring import ScoringItem, completion_log_probs
from runtime.prompting import vision_placeholder_ids
from tvg.video import build_vision_inputs

STUDENT = "qwen3_vl-student"
GREEDY = SamplingConfig(temperature=0.0, max_tokens=12, logprobs_topk=0)

pytestmark = pytest.mark.e2e

# Engines built by a test stay alive until the session ends: tearing down an in-process vLLM
# engine destroys vLLM's process-global parallel state and breaks the other engines.
_KEEP_ALIVE: list = []


def _load_state(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _perturbed_copy(src: Path, dst: Path, state: dict[str, torch.Tensor]) -> Path:
    """A copy of a model directory holding other weights."""
    from safetensors.torch import save_file

    shutil.copytree(src, dst)
    save_file({k: v.contiguous() for k, v in state.items()}, str(dst / "model.safetensors"))
    return dst


def _perturb(state: dict[str, torch.Tensor], prefix: str, scale: float) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    out = dict(state)
    for name, tensor in state.items():
        if name.startswith(prefix):
            noise = torch.randn(tensor.shape, generator=gen) * scale * (tensor.std() + 1e-3)
            out[name] = tensor + noise
    return out


def _greedy(engine, specs):
    batch = engine.sample(specs, 1, GREEDY)
    assert not batch.skipped
    return (
        [t.completion_ids.tolist() for t in batch.trajectories],
        [t.logprobs for t in batch.trajectories],
        batch,
    )


def test_vllm_sampled_logprobs_match_transformers(
    student_engine, synth_specs, tiny_models_dir: Path
) -> None:
    from transformers import AutoProcessor

    model_dir = tiny_models_dir / STUDENT
    specs = synth_specs[:3]
    sampling = SamplingConfig(temperature=1.0, max_tokens=12, logprobs_topk=3)
    batch = student_engine.sample(specs, n=2, sampling=sampling)
    assert not batch.skipped
    assert [(t.prompt_index, t.sample_index) for t in batch.trajectories] == [
        (p, s) for p in range(3) for s in range(2)
    ]
    processor = AutoProcessor.from_pretrained(model_dir)
    model = load_hf_model(model_dir).eval()
    banned = set(vision_placeholder_ids(processor.tokenizer))
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    items = [
        ScoringItem(
            specs[t.prompt_index].query,
            "timelens",
            build_vision_inputs(specs[t.prompt_index].video, specs[t.prompt_index].video_settings),
            t.completion_ids.tolist(),
        )
        for t in batch.trajectories
    ]
    with torch.no_grad():
        masked = completion_log_probs(model, processor, items, temperature=1.0, top_k=3)
        logits_free = [
            torch.log_softmax(model_logits, dim=-1)
            for model_logits in _raw_step_logits(model, processor, items)
        ]
    unmasked_gap = []
    for traj, score, free in zip(batch.trajectories, masked, logits_free, strict=True):
        assert traj.prompt_ids.tolist().count(video_pad) == 1
        assert traj.num_prompt_tokens > len(traj.prompt_ids)  # vLLM expanded the video
        assert traj.finish_reason in ("stop", "length")
        assert not set(traj.completion_ids.tolist()) & banned
        assert not set(traj.topk_ids.flatten().tolist()) & banned
        np.testing.assert_allclose(traj.logprobs, score["logprobs"].numpy(), atol=1e-3)
        np.testing.assert_allclose(traj.topk_logprobs, score["topk_logprobs"].numpy(), atol=1e-3)
        ids = torch.as_tensor(traj.completion_ids, dtype=torch.long)
        unmasked = free.gather(1, ids[:, None])[:, 0].numpy()
        unmasked_gap.append(np.abs(traj.logprobs - unmasked).mean())
    # The sampled distribution excludes the placeholders: scoring WITHOUT the ban is off.
    assert min(unmasked_gap) > 3e-3, unmasked_gap
    # Samples of one prompt differ (seeded engine, not seeded requests).
    assert (
        batch.trajectories[0].completion_ids.tolist()
        != batch.trajectories[1].completion_ids.tolist()
    )


def _raw_step_logits(model, processor, items):
    """Unmasked logits at each completion position (to show the ban matters)."""
    from runtime.hf_scoring import build_hf_batch

    batch = build_hf_batch(processor, items)
    logits = model(**batch.inputs).logits.float()
    return [
        logits[i, p - 1 : p - 1 + c]
        for i, (p, c) in enumerate(zip(batch.prompt_lengths, batch.completion_lengths, strict=True))
    ]


def test_hf_engine_has_the_same_interface_and_greedy_output(
    student_engine, synth_specs, tiny_models_dir: Path
) -> None:
    from rollout.engine_hf import HFEngine

    hf = HFEngine(EngineConfig(model=str(tiny_models_dir / STUDENT), engine="hf"))
    specs = synth_specs[:3]
    vllm_tokens, _vllm_lps, vllm_batch = _greedy(student_engine, specs)
    hf_batch = hf.sample(specs, n=2, sampling=GREEDY)
    assert [t.completion_ids.tolist() for t in hf_batch.trajectories[::2]] == vllm_tokens
    assert [t.sample_index for t in hf_batch.trajectories] == [0, 1] * 3
    for a, b in zip(hf_batch.trajectories[::2], vllm_batch.trajectories, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-3)
        assert a.num_prompt_tokens == b.num_prompt_tokens
    assert hf.checksum() == state_checksum(_load_state(tiny_models_dir / STUDENT))


def test_bad_inputs_become_counted_skips_and_the_engine_lives(student_engine, synth_specs) -> None:
    good = synth_specs[0]
    missing = dataclasses.replace(good, sample_id="missing", video="/nowhere/clip.mp4")
    too_long = dataclasses.replace(good, sample_id="too_long", query="red " * 3000)
    sampling = SamplingConfig(temperature=1.0, max_tokens=6)
    batch = student_engine.sample([missing, good, too_long], n=2, sampling=sampling)
    assert [(s.prompt_index, s.sample_id) for s in batch.skipped] == [
        (0, "missing"),
        (2, "too_long"),
    ]
    assert "/nowhere/clip.mp4" in batch.skipped[0].reason
    assert "file not found" in batch.skipped[0].reason
    assert "maximum context length" in batch.skipped[1].reason
    assert [(t.prompt_index, t.sample_index) for t in batch.trajectories] == [(1, 0), (1, 1)]
    again = student_engine.sample([good], n=1, sampling=sampling)
    assert len(again.trajectories) == 1 and not again.skipped


def test_bucketed_update_equals_a_fresh_engine_and_restores(
    updatable_engine, synth_specs, tiny_models_dir: Path, tmp_path: Path
) -> None:
    from rollout.engine_vllm import VLLMEngine

    student_engine = updatable_engine

    src = tiny_models_dir / STUDENT
    specs = synth_specs[:3]
    original = _load_state(src)
    before_tokens, before_lps, _ = _greedy(student_engine, specs)
    perturbed = _perturb(original, "model.language_model.", 0.5)
    perturbed["lm_head.weight"] = perturbed["lm_head.weight"] * 1.5
    perturbed_dir = _perturbed_copy(src, tmp_path / "perturbed", perturbed)

    buckets = bucket_state_dict(perturbed, student_engine.weights_version + 1, bucket_bytes=64_000)
    assert len(buckets) >= 4  # a real multi-bucket update, buckets split inside layers
    results = [student_engine.update_weights(b) for b in buckets]
    assert all(r is None for r in results[:-1])
    result = results[-1]
    assert result.version == buckets[0].version
    assert result.checksum == state_checksum(perturbed) != state_checksum(original)
    after_tokens, after_lps, after_batch = _greedy(student_engine, specs)
    assert {t.weights_version for t in after_batch.trajectories} == {result.version}
    assert after_tokens != before_tokens

    fresh = VLLMEngine(EngineConfig(model=str(perturbed_dir), threads=2))
    fresh_tokens, fresh_lps, _ = _greedy(fresh, specs)
    _KEEP_ALIVE.append(fresh)
    assert after_tokens == fresh_tokens
    for a, b in zip(after_lps, fresh_lps, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)

    restored = student_engine.load_state_dict(original)
    assert restored.checksum == state_checksum(original)
    back_tokens, back_lps, _ = _greedy(student_engine, specs)
    assert back_tokens == before_tokens
    for a, b in zip(back_lps, before_lps, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_vision_tower_update_is_picked_up_and_frozen_skip_keeps_it(
    updatable_engine, synth_specs, tiny_models_dir: Path, tmp_path: Path
) -> None:
    from rollout.engine_vllm import VLLMEngine

    student_engine = updatable_engine

    src = tiny_models_dir / STUDENT
    specs = synth_specs[:3]
    original = _load_state(src)
    # Same prompts (same videos) before and after: a stale encoder or prefix cache would
    # replay the old vision embeddings.
    before_tokens, before_lps, _ = _greedy(student_engine, specs)
    vision = _perturb(original, "model.visual.", 1.0)
    vision_dir = _perturbed_copy(src, tmp_path / "vision", vision)

    skipped = student_engine.load_state_dict(vision, skip_prefixes=("model.visual.",))
    assert skipped.num_tensors == sum(1 for n in original if not n.startswith("model.visual."))
    frozen_tokens, frozen_lps, _ = _greedy(student_engine, specs)
    assert frozen_tokens == before_tokens
    for a, b in zip(frozen_lps, before_lps, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)

    only_vision = {k: v for k, v in vision.items() if k.startswith("model.visual.")}
    result = student_engine.load_state_dict(only_vision)
    assert result.checksum == state_checksum(vision)
    after_tokens, after_lps, _ = _greedy(student_engine, specs)
    gap = max(np.abs(a - b).max() for a, b in zip(after_lps, before_lps, strict=True))
    assert after_tokens != before_tokens or gap > 1e-3

    fresh = VLLMEngine(EngineConfig(model=str(vision_dir), threads=2))
    fresh_tokens, fresh_lps, _ = _greedy(fresh, specs)
    _KEEP_ALIVE.append(fresh)
    assert after_tokens == fresh_tokens
    for a, b in zip(after_lps, fresh_lps, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)

    student_engine.load_state_dict(original)
    assert student_engine.checksum() == state_checksum(original)
    assert _greedy(student_engine, specs)[0] == before_tokens


def test_cpu_linear_chooses_the_kernels_and_how_updates_load(student_engines, synth_specs) -> None:
    """ "onednn" packs the linear layers and keeps their weights (updates are copies + repacks),
    "torch" keeps plain weights on torch's linear (copies), "vllm" is vLLM's own packing without
    the weights (updates through its layer-wise reload); the same greedy tokens from all."""
    import torch

    from rollout.vllm_cpu_linear import _is_packed_here, in_place_blockers

    def kernels(worker) -> list[str]:
        model = worker.model_runner.get_model()
        found = [getattr(m, "cpu_linear", None) for m in model.modules()]
        return sorted(
            {
                "packed here" if _is_packed_here(k) else "torch" if k is F.linear else "other"
                for k in found
                if k is not None
            }
        )

    F = torch.nn.functional
    engines = {kind: student_engines(kind) for kind in ("onednn", "torch", "vllm")}
    assert {k: e.updates_in_place for k, e in engines.items()} == {
        "onednn": True,
        "torch": True,
        "vllm": False,
    }
    assert engines["onednn"].llm.collective_rpc(kernels) == [["packed here"]]
    assert engines["torch"].llm.collective_rpc(kernels) == [["torch"]]
    assert engines["vllm"].llm.collective_rpc(kernels) == [["other"]]
    assert engines["onednn"].llm.collective_rpc(in_place_blockers) == [[]]
    assert engines["torch"].llm.collective_rpc(in_place_blockers) == [[]]
    (blockers,) = engines["vllm"].llm.collective_rpc(in_place_blockers)
    assert any("weight not held as a tensor" in b for b in blockers)
    specs = synth_specs[:3]
    tokens = {kind: _greedy(engine, specs)[:2] for kind, engine in engines.items()}
    assert tokens["onednn"][0] == tokens["torch"][0] == tokens["vllm"][0]
    for kind in ("torch", "vllm"):
        for a, b in zip(tokens["onednn"][1], tokens[kind][1], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.e2e
def test_seeded_calls_repeat_exactly_whatever_came_before(student_engine, synth_specs) -> None:
    """SamplingConfig.seed re-seeds the engine per call: the basis of an exact resume."""
    specs = synth_specs[:3]
    seeded = SamplingConfig(temperature=1.0, max_tokens=12, seed=7)

    def tokens(batch):
        return [t.completion_ids.tolist() for t in batch.trajectories]

    first = tokens(student_engine.sample(specs, n=2, sampling=seeded))
    student_engine.sample(specs, n=2, sampling=SamplingConfig(temperature=1.0, max_tokens=12))
    again = tokens(student_engine.sample(specs, n=2, sampling=seeded))
    other = tokens(student_engine.sample(specs, n=2, sampling=dataclasses.replace(seeded, seed=8)))
    assert again == first
    assert other != first
    assert len({tuple(t) for t in first}) > 1  # samples within the call still differ


def test_the_kv_cache_is_the_size_asked_for(student_engine, tiny_models_dir: Path) -> None:
    """`EngineConfig.kv_cache_bytes` sets vLLM's KV cache exactly (the shared engines ask for
    256 MiB), although VLLM_CPU_KVCACHE_SPACE (whole GiB) is set in this process."""
    import json
    import os

    text = json.loads((tiny_models_dir / STUDENT / "config.json").read_text())["text_config"]
    per_token = 2 * text["num_hidden_layers"] * text["num_key_value_heads"] * text["head_dim"] * 4
    cache = student_engine.llm.llm_engine.vllm_config.cache_config
    asked = student_engine.config.kv_cache_bytes
    assert asked is not None and asked < 1024**3
    assert cache.num_gpu_blocks * cache.block_size * per_token == asked
    assert os.environ.get("VLLM_CPU_KVCACHE_SPACE") == "1"  # restored after the build
    with pytest.raises(ValueError, match="kv_cache_bytes must be >= 1 MiB"):
        EngineConfig(model="m", kv_cache_bytes=1024)


def test_completion_text_equals_vllm_s_own_detokenisation(
    student_engine, synth_specs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine samples without vLLM's per-token detokenisation and decodes each completion
    once: the texts equal what vLLM's detokeniser gives for the same seeded samples, except that
    bytes of a character cut off by the end of a completion show as U+FFFD (as in the
    transformers engine's texts) where vLLM's streaming detokeniser leaves them out."""
    specs = synth_specs[:4]
    seeded = SamplingConfig(temperature=1.0, max_tokens=16, seed=5)
    ours = student_engine.sample(specs, n=2, sampling=seeded)
    params, wait = student_engine._params, student_engine.llm.wait_for_completion
    assert params(seeded, 1, 16).detokenize is False

    def detokenized(*args):
        p = params(*args)
        p.detokenize = True
        return p

    raw: list = []
    monkeypatch.setattr(student_engine, "_params", detokenized)
    monkeypatch.setattr(
        student_engine.llm, "wait_for_completion", lambda **kw: raw.extend(wait(**kw)) or raw
    )
    student_engine.sample(specs, n=2, sampling=seeded)
    theirs = sorted((tuple(c.token_ids), c.text) for out in raw for c in out.outputs)
    mine = sorted(
        (tuple(t.completion_ids.tolist()), t.text.rstrip("\ufffd")) for t in ours.trajectories
    )
    assert len(mine) == 8 and mine == theirs
    assert sum(bool(text.strip()) for _, text in mine) >= 4
