"""The transformers reference engine: the same interface as `VLLMEngine`, on `generate`.

Used for parity tests (vLLM against an independent implementation), as the fallback when vLLM
is unavailable (`EngineConfig(engine="hf")`), and in the colocated layout on small models, where
it samples with the learner rank's own module (below). Prompts are built by the same functions as
vLLM's (vision inputs from `tvg.video.build_vision_inputs`, chat text from `runtime.prompting`),
through the model's processor once per prompt (`runtime.processed_prompts`), left-padded.

- Vision placeholder tokens are banned while generating (`suppress_tokens`), and so are the unused
  ids of a padded vocabulary (config.vocab_size > len(tokenizer)), as vLLM's `allowed_token_ids`.
- Behaviour log-probs are recorded while `generate` samples (`rollout.hf_behaviour`): each step's
  scores with placeholders banned, divided by the temperature (temperature 1 for greedy). Unlike
  vLLM's processed log-probs they ignore top-k / top-p truncation. (They equal a second forward
  pass over prompt + completion, `runtime.hf_scoring`, to float tolerance: tested.)
- Shared weights: built with `model=` (a colocated learner rank's own module, `trainer.hybrid`),
  the engine samples with that module itself. A weight update then loads nothing (every tensor
  of a bucket already is the module's own: same storage) and only records the version and the
  digests; a tensor that is not the module's own is copied in as usual. The module is put in eval
  mode while it samples and restored after.
- Sampling is seeded once per engine (`torch.manual_seed(config.seed)` at start-up).
- A prompt whose expanded length exceeds `max_model_len` becomes a `SkippedPrompt`.
- Weight buckets load with `load_state_dict(strict=False)` into the live model; unknown names are
  an error.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig

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
from rollout.hf_behaviour import BehaviourLogProbs
from rollout.weight_sync import (
    WeightBucket,
    WeightTracker,
    WeightUpdateResult,
)
from runtime.hf_compat import inference_device, load_hf_model
from runtime.hf_scoring import inputs_on_model_device
from runtime.processed_prompts import PromptCache, left_padded
from runtime.prompting import prompt_text, vision_placeholder_ids
from tvg.frame_cache import FrameCache

# Prompts per `generate` call (each expanded n times).
CHUNK_PROMPTS = 256

# (prompt, sample index, completion ids, finish reason, expanded prompt length, behaviour
# log-probs of the completion: "logprobs" (T,), with top-k "topk_ids" / "topk_logprobs" (T, k))
Generated = tuple[PreparedPrompt, int, list[int], str, int, dict[str, torch.Tensor]]


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """`model` in eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def same_storage(a: torch.Tensor | None, b: torch.Tensor) -> bool:
    """Whether `a` is `b`'s memory: same data pointer, shape, strides and dtype."""
    return (
        a is not None
        and a.data_ptr() == b.data_ptr()
        and a.shape == b.shape
        and a.stride() == b.stride()
        and a.dtype == b.dtype
    )


class HFEngine(TrackedWeights):
    """transformers generate + hf_scoring log-probs behind the rollout engine interface."""

    name = "hf"

    def __init__(
        self,
        config: EngineConfig,
        frame_cache: FrameCache | None = None,
        model: Any = None,
        prompt_cache: PromptCache | None = None,
    ) -> None:
        """Load the model (or sample with `model`, shared: module docstring) and processor; set
        threads and the seed. prompt_cache: processed prompts shared with the process's other
        transformers users (a colocated rank's learner), else the engine's own."""
        from transformers import AutoProcessor

        self.config = config
        self.threads = configure_threads(config.threads)
        torch.manual_seed(config.seed)
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.shares_weights = model is not None
        # A shared module's parameters by name (their storage is read at each update).
        self._own = dict(model.named_parameters()) if model is not None else {}
        if model is None:
            # On the process's GPU when it has one (a Ray actor with num_gpus sees its own).
            model = load_hf_model(
                config.model, dtype=getattr(torch, config.dtype), device=inference_device()
            ).eval()
        self.model = model
        self.banned_ids = sorted(vision_placeholder_ids(self.tokenizer))
        rows = self.model.get_output_embeddings().weight.shape[0]
        self.suppress_ids = self.banned_ids + list(range(len(self.tokenizer), rows))
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or [self.tokenizer.eos_token_id])
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.frame_cache = (
            frame_cache if frame_cache is not None else FrameCache(disk_dir=config.frame_cache_dir)
        )
        self.prompt_cache = prompt_cache if prompt_cache is not None else PromptCache()
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
        trajectories = [self._trajectory(g, sampling) for g in generated]
        t_gen = time.perf_counter()
        trajectories.sort(key=lambda t: (t.prompt_index, t.sample_index))
        skipped.sort(key=lambda s: s.prompt_index)
        batch = RolloutBatch(prompts=list(prompts), trajectories=trajectories, skipped=skipped)
        batch.timings = {
            "prepare_s": t_prep - t0,
            "generate_s": t_gen - t_prep,
            "sample_s": t_gen - t0,
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
        behaviour = BehaviourLogProbs(
            1.0 if sampling.greedy else sampling.temperature, sampling.logprobs_topk
        )
        # A generation config of our own: without one, every call first rebuilds the model's
        # config class to check it for generation settings (~4 ms per call on the demo model).
        config = GenerationConfig(**kwargs, use_cache=True)
        with torch.no_grad(), eval_mode(self.model):
            sequences = self.model.generate(
                **inputs, generation_config=config, logits_processor=[behaviour]
            )
        recorded = {k: v.cpu() for k, v in behaviour.finish(sequences).items()}
        generated = sequences[:, inputs["input_ids"].shape[1] :].tolist()
        out: list[Generated] = []
        for row in range(len(kept) * n):
            # Greedy: one generated row per prompt, repeated n times.
            at = row // n if copies == 1 else row
            tokens = generated[at]
            item, sample_index = kept[row // n], row % n
            limit = sampling.tokens_for(item.index)
            completion: list[int] = []
            reason = "length"
            for tok in tokens[:limit]:
                completion.append(tok)
                if tok in self.eos_ids and not sampling.ignore_eos:
                    reason = "stop"
                    break
            steps = len(completion)
            scores = {k: v[at, :steps] for k, v in recorded.items()}
            out.append((item, sample_index, completion, reason, encoded_lengths[row // n], scores))
        return out

    def _encode(self, items: list[PreparedPrompt]) -> dict[str, Any]:
        """Left-padded processor inputs for a list of prompts (processed once per prompt:
        `runtime.processed_prompts`)."""
        texts = [prompt_text(self.tokenizer, i.spec.query, i.spec.prompt_style) for i in items]
        entries = self.prompt_cache.get(self.processor, texts, [i.vision for i in items])
        return left_padded(entries, self.pad_id)

    def _trajectory(self, generated: Generated, sampling: SamplingConfig) -> Trajectory:
        """One generated completion as a `Trajectory` (its behaviour log-probs as recorded)."""
        item, sample_index, tokens, reason, length, scores = generated
        topk_ids = topk_lp = None
        if sampling.logprobs_topk > 0:
            topk_ids = scores["topk_ids"].numpy().astype(np.int32)
            topk_lp = scores["topk_logprobs"].numpy()
        return Trajectory(
            prompt_index=item.index,
            sample_index=sample_index,
            prompt_ids=np.asarray(item.prompt_ids, dtype=np.int32),
            completion_ids=np.asarray(tokens, dtype=np.int32),
            logprobs=scores["logprobs"].numpy(),
            finish_reason=reason,
            text=self.tokenizer.decode(tokens, skip_special_tokens=True),
            num_prompt_tokens=length,
            weights_version=self.weights_version,
            topk_ids=topk_ids,
            topk_logprobs=topk_lp,
        )

    def update_weights(self, bucket: WeightBucket) -> WeightUpdateResult | None:
        """Copy one bucket into the live model; on the last bucket return the result."""
        self.tracker.accept(bucket)
        if bucket.is_first:
            self._update_started = time.perf_counter()
        # A shared module's own tensors are already in place (module docstring).
        incoming = {n: t for n, t in bucket.items() if not same_storage(self._own.get(n), t)}
        if incoming:
            result = self.model.load_state_dict(incoming, strict=False)
            if result.unexpected_keys:
                self.tracker.abort()
                raise RuntimeError(
                    f"weight bucket {bucket.index} names parameters the model does not have: "
                    f"{result.unexpected_keys[:5]}"
                )
        if not bucket.is_last:
            return None
        return self._finished_update()
