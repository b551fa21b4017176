"""Settings of a rollout engine (how it is built) and of one sampling call (how it samples),
and the run configuration's `rollout:` section that both are made from (`RolloutConfig`).

EngineConfig and SamplingConfig are frozen, JSON-friendly dataclasses: they travel to Ray actors
and are saved beside every evaluation's predictions, so a run can say exactly how its tokens were
produced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ENGINE_KINDS: tuple[str, ...] = ("vllm", "hf")
# How vLLM's CPU build runs linear layers and takes weight updates (`rollout.vllm_cpu_linear`).
CPU_LINEAR_KINDS: tuple[str, ...] = ("onednn", "torch", "vllm")


@dataclass(frozen=True)
class EngineConfig:
    """How to build one rollout engine.

    model: directory of the (student) model, HF layout (config, safetensors, tokenizer, processor).
    engine: "vllm" (the sampler) or "hf" (the transformers reference engine, same interface).
    dtype: weights and compute dtype ("float32" for tiny models and parity tests).
    seed: engine seed (sampling is seeded per engine, never per request: per-request seeds gave
        near-identical samples across prompts).
    max_model_len: longest prompt + completion, in tokens; longer prompts are skipped per sample.
    threads: torch / OpenMP threads of the engine's process. On 2-core machines one thread per
        process is fastest; a multi-threaded process competing with another thrashes.
    kv_cache_gib: vLLM CPU KV cache (VLLM_CPU_KVCACHE_SPACE); ignored on GPUs and by "hf".
    kv_cache_bytes: the KV cache in bytes instead (vLLM's kv_cache_memory_bytes, which the whole
        GiB of VLLM_CPU_KVCACHE_SPACE would override: the variable is left out while the engine
        is built); None = kv_cache_gib. For engines that need less than 1 GiB.
    gpu_memory_utilization: vLLM's fraction of GPU memory (GPUs only).
    enforce_eager: skip CUDA graphs / compilation (start-up time matters more for tiny models).
    track_checksum: keep a digest of every weight tensor handed to the engine, so `checksum()`
        can prove which weights it holds (costs one hash pass over each pushed tensor).
    max_num_seqs / max_num_batched_tokens: vLLM scheduler limits (None: vLLM's defaults).
    cpu_linear: how vLLM's CPU build runs linear layers (`rollout.vllm_cpu_linear`): "onednn"
        packed kernels with the plain weights kept, so an update is a copy into them and a
        repack; "torch" plain weights and torch's linear (not batch-invariant); "vllm" vLLM's own
        kernels and layer-wise reload. Ignored on GPUs and by "hf".
    frame_cache_dir: the directory of decoded frames that the run's processes share (the frame
        cache's disk tier, `data.frame_cache_dir`); None: the engine's memory cache only.
    """

    model: str
    engine: str = "vllm"
    dtype: str = "float32"
    seed: int = 0
    max_model_len: int = 2048
    threads: int = 1
    kv_cache_gib: int = 1
    kv_cache_bytes: int | None = None
    gpu_memory_utilization: float = 0.5
    enforce_eager: bool = True
    track_checksum: bool = True
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    cpu_linear: str = "onednn"
    frame_cache_dir: str | None = None

    def __post_init__(self) -> None:
        """Reject settings that cannot build an engine."""
        if self.engine not in ENGINE_KINDS:
            raise ValueError(f"engine must be one of {ENGINE_KINDS}, got {self.engine!r}")
        if self.cpu_linear not in CPU_LINEAR_KINDS:
            raise ValueError(
                f"cpu_linear must be one of {CPU_LINEAR_KINDS}, got {self.cpu_linear!r}"
            )
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.kv_cache_bytes is not None and self.kv_cache_bytes < 1024 * 1024:
            raise ValueError(f"kv_cache_bytes must be >= 1 MiB, got {self.kv_cache_bytes}")
        if self.max_model_len < 16:
            raise ValueError(f"max_model_len must be >= 16, got {self.max_model_len}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class SamplingConfig:
    """How one `sample` call draws completions.

    temperature: 0 means greedy decoding.
    top_p / top_k: nucleus and top-k truncation (1.0 / 0 disable them). vLLM reports the
        behaviour log-probs of the *processed* distribution (after temperature, the ban of vision
        placeholder tokens AND this truncation); the transformers engine reports them after
        temperature and the ban only (no truncation). They agree when top_p = 1 and top_k = 0.
    max_tokens: cap on generated tokens per completion.
    logprobs_topk: also return the top-k of the behaviour distribution per position (0: only the
        sampled token's log-prob).
    ignore_eos: keep generating past the end token (benchmarks with fixed lengths).
    seed: when set, the engine's random generator is re-seeded before this call from (seed, the
        batch index of the shard's first prompt), so a call with the same prompts, split and seed
        draws the same samples whatever came before (exact resume); None keeps the engine's
        running generator (seeded once at start-up).
    max_tokens_per_prompt: optional per-prompt caps indexed by the prompt's index in the batch
        (`Trajectory.prompt_index`), e.g. to model early stops in benchmarks; each is clipped to
        `max_tokens`.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 64
    logprobs_topk: int = 0
    ignore_eos: bool = False
    max_tokens_per_prompt: tuple[int, ...] | None = field(default=None)
    seed: int | None = None

    def __post_init__(self) -> None:
        """Reject impossible sampling settings."""
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.logprobs_topk < 0 or self.top_k < 0:
            raise ValueError("logprobs_topk and top_k must be >= 0")

    @property
    def greedy(self) -> bool:
        """Whether this is greedy decoding (temperature 0)."""
        return self.temperature == 0

    def tokens_for(self, prompt_index: int) -> int:
        """The max tokens of the prompt with this batch index."""
        if self.max_tokens_per_prompt is None:
            return self.max_tokens
        return max(1, min(self.max_tokens, int(self.max_tokens_per_prompt[prompt_index])))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict."""
        return asdict(self)


@dataclass
class RolloutConfig:
    """The run configuration's `rollout:` section: student sampling with vLLM (or the
    transformers engine). Its values reach the engines, the rollout group and every
    sampling call through `engine_config`, `group_config` and `sampling` (nowhere else)."""

    # "vllm" or "hf" (transformers' generate). With rollout.colocate and ZeRO-1/2 an "hf" engine
    # samples with its learner rank's own module: no weight copy at all (trainer.hybrid).
    engine: str = "vllm"
    num_workers: int = 1
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32
    max_model_len: int = 2048
    weight_bucket_mb: int = 256
    # How weights reach the engines after each step: "object_store" (exported to the driver,
    # ray.put per bucket) or "collective" (learner rank 0 broadcasts them to the engines over a
    # standalone process group: gloo on CPU, NCCL when the rollout workers have GPUs).
    weight_transport: str = "object_store"
    timeout_s: float = 300.0
    verify_sync: bool = True
    # The colocated layout (verl's hybrid engine): each learner rank owns one rollout engine in
    # its own process and hands it the new weights in place (no serialisation, nothing through
    # the driver or the object store); rollout.num_workers must equal learner.num_ranks. False:
    # the rollout engines are actors of their own (clusters: pools on their own devices).
    colocate: bool = False
    # How vLLM's CPU build runs the engines' linear layers and takes each weight sync
    # (rollout.vllm_cpu_linear): "onednn" packed oneDNN kernels beside the plain weights, a sync
    # copies into the weights and repacks the layers it touched; "torch" plain weights and
    # torch's linear (a sync is a copy; not batch-invariant, so not bitwise repeatable); "vllm"
    # vLLM's own kernels and its layer-wise reload. Ignored on GPUs and by the "hf" engine.
    cpu_linear: str = "onednn"

    @property
    def bucket_bytes(self) -> int:
        """The weight sync's bucket size in bytes (`weight_bucket_mb`)."""
        return self.weight_bucket_mb * 1024 * 1024

    def engine_config(
        self,
        model: str,
        seed: int,
        dtype: str,
        threads: int = 1,
        frame_cache_dir: str | None = None,
    ) -> EngineConfig:
        """An engine of this section's kind and context length on `model` (frame_cache_dir: the
        run's shared decoded-frame directory, if any)."""
        return EngineConfig(
            model=model,
            engine=self.engine,
            seed=seed,
            max_model_len=self.max_model_len,
            dtype=dtype,
            threads=threads,
            cpu_linear=self.cpu_linear,
            frame_cache_dir=frame_cache_dir,
        )

    def group_config(
        self, cpus_per_worker: float, gpus_per_worker: float, num_workers: int | None = None
    ) -> Any:
        """A `rollout.group.GroupConfig` with this section's sampling timeout. Without
        `num_workers`: the student's rollout pool (rollout.num_workers, with its weight bucket
        size and transport); with it: a pool of other engines that never takes weights (the
        teacher's answers, the curriculum's predictions)."""
        from rollout.group import GroupConfig

        weights: dict[str, Any] = {}
        if num_workers is None:
            num_workers = self.num_workers
            weights = {"bucket_bytes": self.bucket_bytes, "transport": self.weight_transport}
        return GroupConfig(
            num_workers=num_workers,
            cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker,
            sample_timeout_s=self.timeout_s,
            **weights,
        )

    def sampling(self, seed: int | None = None) -> SamplingConfig:
        """How a training step samples: this section's temperature, top-p and answer length."""
        return SamplingConfig(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_new_tokens,
            seed=seed,
        )
