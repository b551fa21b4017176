"""`RolloutWorker`: the Ray actor that owns one rollout engine (vLLM, or the transformers one).

The class is plain Python; `RolloutGroup` turns it into an actor with `ray.remote`, giving it
`EngineConfig.threads` CPUs and the matching thread environment, so a worker never runs more
threads than the cores it was given (two 1-thread workers use 2 cores better than one 2-thread
worker, and a multi-threaded process beside a busy one thrashes).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from rollout.batch import PromptSpec, RolloutBatch
from rollout.engine_config import EngineConfig, SamplingConfig
from rollout.weight_sync import WeightBucket, WeightUpdateResult
from tvg.frame_cache import FrameCache


def build_engine(
    config: EngineConfig,
    frame_cache: FrameCache | None = None,
    model: Any = None,
    prompt_cache: Any = None,
) -> Any:
    """Build the engine `config.engine` names ("vllm" or "hf") in this process; `model`: a
    transformers module the "hf" engine samples with instead of loading its own (shared
    weights; vLLM always holds its own copy); `prompt_cache`: processed prompts the "hf" engine
    shares with the process's learner (`runtime.processed_prompts`; vLLM keeps its own)."""
    if config.engine == "vllm":
        if model is not None:
            raise ValueError(
                "build_engine: a vLLM engine holds its own weights; model= is for 'hf'"
            )
        from rollout.engine_vllm import VLLMEngine

        return VLLMEngine(config, frame_cache)
    from rollout.engine_hf import HFEngine

    return HFEngine(config, frame_cache, model=model, prompt_cache=prompt_cache)


def worker_env(config: EngineConfig) -> dict[str, str]:
    """Environment variables for a worker process: thread counts, vLLM's CPU defaults and (for a
    vLLM engine) the engine-process settings (`runtime.vllm_env.engine_process_env`)."""
    from runtime.vllm_env import CPU_DEFAULTS, engine_process_env

    threads = str(config.threads)
    env = {**CPU_DEFAULTS, "VLLM_CPU_KVCACHE_SPACE": str(config.kv_cache_gib)}
    if config.engine == "vllm":
        env.update(engine_process_env())
    env.update({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    for key in ("RAY_AUTH_MODE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VOPD_TORCHVISION_SHIM"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def engine_info(engine: Any, index: int, startup_s: float) -> dict[str, Any]:
    """What a process holding rollout engine `index` reports when ready: its index, process id,
    host, engine kind, threads, weights version and start-up seconds."""
    return {
        "worker_index": index,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "engine": engine.name,
        "threads": engine.threads,
        "shares_weights": getattr(engine, "shares_weights", False),
        "weights_version": engine.weights_version,
        "startup_s": startup_s,
    }


class RolloutWorker:
    """One engine in one process: sample, take weight buckets, report checksum and version."""

    def __init__(self, config: EngineConfig, worker_index: int = 0) -> None:
        """Build the engine (threads are set before it exists)."""
        started = time.perf_counter()
        self.config = config
        self.worker_index = worker_index
        self.engine = build_engine(config)
        self.startup_s = time.perf_counter() - started

    def ready(self) -> dict[str, Any]:
        """Who and what this worker is (process id, engine, threads, version, start-up time)."""
        return engine_info(self.engine, self.worker_index, self.startup_s)

    def sample(
        self,
        prompts: Sequence[PromptSpec],
        n: int,
        sampling: SamplingConfig,
        prompt_indices: Sequence[int] | None = None,
    ) -> RolloutBatch:
        """Sample n completions per prompt (see `VLLMEngine.sample`)."""
        return self.engine.sample(prompts, n, sampling, prompt_indices)

    def update_weights(self, bucket: WeightBucket) -> WeightUpdateResult | None:
        """Load one weight bucket in place (see `rollout.weight_sync`)."""
        return self.engine.update_weights(bucket)

    def receive_weights(self, version: int, address: dict[str, Any]) -> WeightUpdateResult:
        """Take part in one collective weight update as member `address["rank"]` of the group at
        `address` (joined on first use; another address, e.g. a new `group_id`, replaces the old
        group): receive the
        plan and every bucket, and load each through `update_weights` (`runtime.collective`).

        A failure (a peer gone, a timeout, a plan for another version) leaves the group and
        raises a RuntimeError naming this worker."""
        from runtime.collective import UpdatePlan, WeightGroup

        name = f"rollout worker {self.worker_index}"
        started = time.perf_counter()
        group = getattr(self, "_weight_group", None)
        try:
            if group is None or address != getattr(self, "_weight_address", None):
                if group is not None:
                    group.close()
                self._weight_group = group = None
                group = WeightGroup(
                    address["host"],
                    int(address["port"]),
                    int(address["rank"]),
                    int(address["world_size"]),
                    address["backend"],
                    float(address["timeout_s"]),
                    name=name,
                )
                self._weight_group, self._weight_address = group, dict(address)

            def load(plan: UpdatePlan, index: int, names: list[str], tensors: list[Any]) -> Any:
                if plan.version != version:
                    raise RuntimeError(f"the sender broadcasts version {plan.version}")
                bucket = WeightBucket(plan.version, index, plan.total, names, tensors)
                return self.engine.update_weights(bucket)

            _, result = group.receive_update(load)
        except Exception as exc:
            if group is not None:
                group.close()
            self._weight_group = None
            tracker = getattr(self.engine, "tracker", None)
            if tracker is not None and tracker.in_update:
                tracker.abort()
            raise RuntimeError(
                f"{name}: collective weight update to version {version} failed after "
                f"{time.perf_counter() - started:.1f} s: {exc}"
            ) from exc
        if not isinstance(result, WeightUpdateResult):
            raise RuntimeError(f"{name}: collective update to version {version} did not finish")
        return result

    def checksum(self) -> str:
        """Checksum of the weights the engine holds."""
        return self.engine.checksum()

    def weights_version(self) -> int:
        """The weights version stamped on this worker's samples."""
        return self.engine.weights_version
