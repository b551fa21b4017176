"""The colocated layout (`rollout.colocate`): each learner rank owns a rollout engine, in-process.

verl calls this a hybrid engine. A `HybridRank` is a learner rank (DeepSpeed ZeRO, the same
`Learner` as in the separate layout) that also builds a rollout engine (vLLM, or the transformers
reference engine) in its own process, after its process group exists; it answers the rollout
worker's calls (`ready`, `sample`, `checksum`, `weights_version`), so a `RolloutGroup` drives the
ranks' engines exactly as it drives separate rollout workers (the same token-balanced split and
ordered gather).

Weight sync is in place: `sync_rollout` hands the rank's own current parameters to its own engine
in buckets through the engine's usual `update_weights` (the versioned bucket protocol, the
layer-wise in-place reload, the digests behind `checksum()`); nothing is serialised, nothing goes
through the driver or Ray's object store. Every rank holds the full weights under ZeRO-1/2; under
ZeRO-3 each bucket is gathered on every rank first (a collective: every rank syncs together).

Shared weights (`rollout.engine=hf`, ZeRO-1/2): the transformers engine samples with the rank's
own module (the student DeepSpeed trains), not a copy of it, as verl's transformers rollout
does. A sync then copies nothing: the engine checks that every tensor of each bucket is its own
(same storage), records the digests and the version, and `verify_sync` still compares them with
the learner's. Under ZeRO-3 (parameters partitioned) and with vLLM the engine keeps its own copy.

In the learners' process group: the engine is built after DeepSpeed initialised torch.distributed,
so vLLM joins that world (it forms its own tensor-parallel groups of one rank each inside it)
instead of starting a second one. One engine per rank, for the life of the process.

Faults: an engine cannot be restarted without its learner rank. A rank that dies, in any phase,
is a learner failure: the driver replaces the whole group (engines included) from the last
checkpoint (`launch.driver.Driver.recover`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rollout.batch import PromptSpec, RolloutBatch
from rollout.engine_config import EngineConfig, SamplingConfig
from rollout.weight_sync import WeightBucket, WeightUpdateResult
from rollout.worker import build_engine, engine_info
from trainer.learner import LearnerSettings
from trainer.learner_group import LearnerRank


class HybridRank(LearnerRank):
    """A learner rank with its own rollout engine (module docstring); a Ray actor."""

    def __init__(
        self, rank: int, world_size: int, settings: LearnerSettings, engine: EngineConfig
    ) -> None:
        """Hold the rank's settings and its engine's; nothing is built before `join`."""
        super().__init__(rank, world_size, settings)
        self.engine_config = engine
        self.rollout_engine: Any = None
        self.engine_startup_s = 0.0

    def join(self, master_addr: str, master_port: int) -> int:
        """Join the process group, build the learner, then the rollout engine; return the rank."""
        super().join(master_addr, master_port)
        started = time.perf_counter()
        shared = self.engine_config.engine == "hf" and self.settings.zero_stage < 3
        self.rollout_engine = build_engine(
            self.engine_config,
            self.frame_cache,
            model=self.engine.module if shared else None,
            prompt_cache=self.prompt_cache,
        )
        self.engine_startup_s = time.perf_counter() - started
        return self.rank

    def ready(self) -> dict[str, Any]:
        """Who and what this rank's engine is (as a rollout worker reports it) and its rank."""
        info = engine_info(self.rollout_engine, self.rank, self.engine_startup_s)
        return {**info, "rank": self.rank}

    def sample(
        self,
        prompts: Sequence[PromptSpec],
        n: int,
        sampling: SamplingConfig,
        prompt_indices: Sequence[int] | None = None,
    ) -> RolloutBatch:
        """Sample n completions per prompt with this rank's engine (as a rollout worker)."""
        return self.rollout_engine.sample(prompts, n, sampling, prompt_indices)

    def checksum(self) -> str:
        """Checksum of the weights this rank's engine holds."""
        return self.rollout_engine.checksum()

    def weights_version(self) -> int:
        """The weights version stamped on this rank's samples."""
        return self.rollout_engine.weights_version

    def sync_rollout(
        self, version: int, bucket_bytes: int, skip_prefixes: Sequence[str] = ()
    ) -> WeightUpdateResult:
        """Hand this rank's current weights to its own engine, in place, as `version`; every rank
        must call it (ZeRO-3 gathers each bucket on every rank)."""
        plan = self.weight_plan(bucket_bytes, skip_prefixes)
        buckets = self.iter_weight_buckets(every_rank=True, copy=False, plan=plan)
        result: WeightUpdateResult | None = None
        for index, items in enumerate(buckets):
            names = [name for name, _ in items]
            tensors = [tensor for _, tensor in items]
            bucket = WeightBucket(version, index, len(plan), names, tensors)
            result = self.rollout_engine.update_weights(bucket)
        if result is None:  # nothing to send (every parameter skipped): a version bump only
            result = self.rollout_engine.update_weights(WeightBucket(version, 0, 1))
        assert result is not None
        return result
