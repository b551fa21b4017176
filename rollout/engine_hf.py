"""The transformers reference engine: the same interface as `VLLMEngine`, on `generate`.

Used for parity tests (vLLM against an independent implementation) and as the fallback when vLLM
is unavailable (`EngineConfig(engine="hf")`). Prompts are built by the same functions as vLLM's
(vision inputs from `tvg.video.build_vision_inputs`, chat text from `runtime.prompting`), batched
with left padding through the model's processor.

- Vision placeholder tokens are banned while generating (`suppress_tokens`), and so are the unused
  ids of a padded vocabulary (config.vocab_size > len(tokenizer)), as vLLM's `allowed_token_ids`.
- Behaviour log-probs come from `runtime.hf_scoring.completion_log_probs` (one forward pass over
  prompt + completion, placeholders masked, divided by the temperature; temperature 1 for greedy).
  Unlike vLLM's processed log-probs they ignore top-k / top-p truncation.
- Sampling is seeded once per engine (`torch.manual_seed(config.seed)` at start-up).
- A prompt whose expanded length exceeds `max_model_len` becomes a `SkippedPrompt`.
- Weight buckets load with `load_state_dict(strict=False)` into the live model; unknown names are
  an error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rollout.batch import PromptSpec, RolloutBatch, SkippedPrompt, Trajectory
from rollout.engine_common import (
    PreparedPrompt,
    TrackedWeights,
    call_seed,
    configure_threads,
    prepare_prompts,
    reseed_torch,
)
from rollout.engine_config import EngineConfig, SamplingConfig
from rollout.weight_sync import (
    WeightBucket,
    WeightTracker,
    WeightUpdateResult,
)
from runtime.hf_compat import inference_device, load_hf_model
from runtime.hf_scoring import ScoringItem, completion_log_probs, inputs_on_model_device
from runtime.prompting import prompt_text, vision_placeholder_ids
from tvg.frame_cache import FrameCache

# Prompts per `generate` call (each expanded n times).
CHUNK_PROMPTS = 256

# (prompt, sample index, completion ids, finish reason, expanded prompt length)
Generated = tuple[PreparedPrompt, int, list[int], str, int]


class HFEngine(TrackedWeights):
    """transformers generate + hf_scoring log-probs behind the rollout engine interface."""

    name = "hf"

    def __init__(self, config: EngineConfig, frame_cache: FrameCache | None = None) -> None:
        """Load the model and processor; set threads and the seed."""
        from transformers import AutoProcessor

        self.config = config
        self.threads = configure_threads(config.threads)
        torch.manual_seed(config.seed)
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        # On the process's GPU when it has one (a Ray actor with num_gpus sees its own).
        self.model = load_hf_model(
            config.model, dtype=getattr(torch, config.dtype), device=inference_device()
        ).eval()
        self.banned_ids = sorted(vision_placeholder_ids(self.tokenizer))
        rows = self.model.get_output_embeddings().weight.shape[0]
        self.suppress_ids = self.banned_ids + list(range(len(self.tokenizer), rows))
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or [self.tokenizer.eos_token_id])
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.frame_cache = (
            frame_cache if frame_cache is not None else FrameCache(disk_dir=config.frame_cache_dir)
        )
        self.tracker = WeightTracker(config.model, config.track_checksum)
        self._update_started = 0.0

    def sample(
        self,
        prompts: Sequence[PromptSpec],
        n: int = 1,
        sampling: SamplingConfig | None = None,
        prompt_indices: Sequence[int] | None = None,
    ) -> RolloutBatch:
        """Sample n completions per prompt with `generate`; log-probs from `hf_scoring`."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        sampling = sampling or SamplingConfig()
        t0 = time.perf_counter()
        seed = call_seed(sampling, prompt_indices)
        if seed is not None:
            reseed_torch(seed)
        prepared, skipped = prepare_prompts(
            prompts, self.tokenizer, self.frame_cache, prompt_indices
        )
        t_prep = time.perf_counter()
        generated: list[Generated] = []
        for start in range(0, len(prepared), CHUNK_PROMPTS):
            chunk = prepared[start : start + CHUNK_PROMPTS]
            generated.extend(self._generate(chunk, n, sampling, skipped))
        t_gen = time.perf_counter()
        trajectories = self._score(generated, sampling)
        t_score = time.perf_counter()
        trajectories.sort(key=lambda t: (t.prompt_index, t.sample_index))
        skipped.sort(key=lambda s: s.prompt_index)
        batch = RolloutBatch(prompts=list(prompts), trajectories=trajectories, skipped=skipped)
        batch.timings = {
            "prepare_s": t_prep - t0,
            "generate_s": t_gen - t_prep,
            "score_s": t_score - t_gen,
            "sample_s": t_score - t0,
        }
        return batch

    def _generate(
        self,
        chunk: list[PreparedPrompt],
        n: int,
        sampling: SamplingConfig,
        skipped: list[SkippedPrompt],
    ) -> list[Generated]:
        """Generate n completions for each prompt of a chunk (over-long prompts are skipped)."""
        inputs = self._encode(chunk)
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        kept: list[PreparedPrompt] = []
        encoded_lengths: list[int] = []
        for item, length in zip(chunk, lengths, strict=True):
            if length + 1 > self.config.max_model_len:
                reason = (
                    f"prompt of {length} tokens exceeds max_model_len {self.config.max_model_len}"
                )
                skipped.append(SkippedPrompt(item.index, item.spec.sample_id, reason))
                continue
            kept.append(item)
            encoded_lengths.append(int(length))
        if not kept:
            return []
        if len(kept) < len(chunk):
            inputs = self._encode(kept)
        max_new = max(sampling.tokens_for(item.index) for item in kept)
        max_new = min(max_new, self.config.max_model_len - max(encoded_lengths))
        # Greedy completions are identical: generate one and repeat it n times.
        copies = 1 if sampling.greedy else n
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "num_return_sequences": copies,
            "suppress_tokens": self.suppress_ids,
            "pad_token_id": self.pad_id,
            "do_sample": not sampling.greedy,
        }
        if not sampling.greedy:
            kwargs.update(
                temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p
            )
        if sampling.ignore_eos:
            kwargs["min_new_tokens"] = max_new
        inputs = inputs_on_model_device(self.model, inputs)
        with torch.no_grad():
            sequences = self.model.generate(**inputs, **kwargs)
        new_tokens = sequences[:, inputs["input_ids"].shape[1] :].tolist()
        if copies == 1 and n > 1:
            new_tokens = [row for row in new_tokens for _ in range(n)]
        out: list[Generated] = []
        for row, tokens in enumerate(new_tokens):
            item, sample_index = kept[row // n], row % n
            limit = sampling.tokens_for(item.index)
            completion: list[int] = []
            reason = "length"
            for tok in tokens[:limit]:
                completion.append(tok)
                if tok in self.eos_ids and not sampling.ignore_eos:
                    reason = "stop"
                    break
            out.append((item, sample_index, completion, reason, encoded_lengths[row // n]))
        return out

    def _encode(self, items: list[PreparedPrompt]) -> dict[str, Any]:
        """Left-padded processor inputs for a list of prompts."""
        texts = [prompt_text(self.tokenizer, i.spec.query, i.spec.prompt_style) for i in items]
        videos, metadata = [], []
        for item in items:
            kwargs = item.vision.hf_processor_kwargs()
            videos.extend(kwargs["videos"])
            metadata.extend(kwargs["video_metadata"])
        return dict(
            self.processor(
                text=texts,
                videos=videos,
                video_metadata=metadata,
                do_sample_frames=False,
                padding=True,
                return_tensors="pt",
            )
        )

    def _score(
        self,
        generated: list[Generated],
        sampling: SamplingConfig,
    ) -> list[Trajectory]:
        """Behaviour log-probs (and top-k) of the generated tokens via `hf_scoring`."""
        temperature = 1.0 if sampling.greedy else sampling.temperature
        trajectories: list[Trajectory] = []
        for start in range(0, len(generated), CHUNK_PROMPTS):
            part = generated[start : start + CHUNK_PROMPTS]
            items = [
                ScoringItem(item.spec.query, item.spec.prompt_style, item.vision, tokens)
                for item, _, tokens, _, _ in part
            ]
            with torch.no_grad():
                scores = completion_log_probs(
                    self.model, self.processor, items, temperature, sampling.logprobs_topk
                )
            for (item, sample_index, tokens, reason, length), score in zip(
                part, scores, strict=True
            ):
                topk_ids = topk_lp = None
                if sampling.logprobs_topk > 0:
                    topk_ids = score["topk_ids"].cpu().numpy().astype(np.int32)
                    topk_lp = score["topk_logprobs"].float().cpu().numpy()
                trajectories.append(
                    Trajectory(
                        prompt_index=item.index,
                        sample_index=sample_index,
                        prompt_ids=np.asarray(item.prompt_ids, dtype=np.int32),
                        completion_ids=np.asarray(tokens, dtype=np.int32),
                        logprobs=score["logprobs"].float().cpu().numpy(),
                        finish_reason=reason,
                        text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                        num_prompt_tokens=length,
                        weights_version=self.weights_version,
                        topk_ids=topk_ids,
                        topk_logprobs=topk_lp,
                    )
                )
        return trajectories

    def update_weights(self, bucket: WeightBucket) -> WeightUpdateResult | None:
        """Copy one bucket into the live model; on the last bucket return the result."""
        self.tracker.accept(bucket)
        if bucket.is_first:
            self._update_started = time.perf_counter()
        if bucket.names:
            result = self.model.load_state_dict(dict(bucket.items()), strict=False)
            if result.unexpected_keys:
                self.tracker.abort()
                raise RuntimeError(
                    f"weight bucket {bucket.index} names parameters the model does not have: "
                    f"{result.unexpected_keys[:5]}"
                )
        if not bucket.is_last:
            return None
        return self._finished_update()
