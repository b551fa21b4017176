"""`RolloutGroup`: R rollout workers behind one `sample` and one `update_weights` call.

- Split: prompts are assigned to workers balanced by expected tokens (prompt estimate + n x max
  tokens), largest first onto the least-loaded worker; each worker keeps input order.
- Gather: every trajectory carries its batch-wide `prompt_index`; the merged batch is in input
  order (prompt, then sample), and per-worker timings are recorded in `batch.timings` and
  `last_timings`. `sample(..., on_part=f)` hands each worker's shard to `f` as soon as it is done
  (the driver starts teacher scoring on it while the other shards still sample).
- Fault tolerance: every remote call has a timeout. A worker that dies (or hangs past its timeout)
  is killed, replaced by a fresh actor, brought to the current weights version by replaying the
  buckets of the last update, and its unfinished shard is sent again; nothing is lost or
  duplicated because a shard's results are only taken from the call that completed. After
  `max_restarts` restarts of one shard the group raises `RolloutError` naming the worker and the
  last error.
- Weight sync (`sync_from`, `rollout.weight_sync`): with the "object_store" transport the
  learner's weights come to this process and go out as `ray.put` buckets; the group keeps the
  references of the current version's buckets for replays. With "collective" the learner's rank
  0 broadcasts them straight into the workers over a standalone process group (gloo on CPU,
  NCCL when the workers have GPUs) and this process never holds a tensor. A restarted worker is
  a new actor and cannot join the old group: it gets the current version from the same sender
  over a fresh two-member group (sender + that worker), and the next update opens a new group
  with all the workers. A sync that fails restarts the workers that died or hung and repeats
  the whole broadcast over a new group (at most `max_restarts` times). Frozen prefixes must stay
  the same across updates (a restarted worker gets its frozen modules from the model directory).
- Placement: `placement` gives each worker its own Ray actor options (its placement-group bundle,
  `launch.placement`); a restarted worker gets its slot's options again, so it returns to its
  bundle (re-placed by Ray on a live node when the node it was on died).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
import torch

from rollout.batch import PromptSpec, RolloutBatch
from rollout.engine_config import EngineConfig, SamplingConfig
from rollout.weight_sync import (
    DEFAULT_BUCKET_BYTES,
    CollectiveTransport,
    WeightSender,
    WeightUpdateResult,
    make_transport,
)
from rollout.worker import RolloutWorker, worker_env
from runtime.actor_group import ActorGroup, ErrorFactory, actor_list
from runtime.checksums import state_checksum
from runtime.collective import default_backend
from runtime.partition import balanced_split

log = logging.getLogger(__name__)

# Prompt-length estimate for balancing when the video length is unknown (tokens).
DEFAULT_PROMPT_TOKENS = 256
TEXT_TOKENS = 64


class RolloutError(RuntimeError):
    """A rollout worker failed beyond what restarts can repair."""


@dataclass(frozen=True)
class GroupConfig:
    """How many workers, their resources, and the limits on every remote call.

    num_workers: R. cpus_per_worker / gpus_per_worker: Ray resources of each actor (a worker's
        thread count is `EngineConfig.threads`). start_timeout_s: engine start-up (and weight
        replay) of one worker. sample_timeout_s: one worker's share of one `sample` call.
        update_timeout_s: one full weight update. control_timeout_s: small calls (checksum).
    max_restarts: restarts allowed per shard of one call (and per worker during an update).
    bucket_bytes / skip_prefixes / transport: weight sync settings (`rollout.weight_sync`;
        transport "object_store" or "collective", whose backend is nccl when the workers have
        GPUs, gloo otherwise).
    """

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    start_timeout_s: float = 300.0
    sample_timeout_s: float = 600.0
    update_timeout_s: float = 300.0
    control_timeout_s: float = 60.0
    max_restarts: int = 2
    bucket_bytes: int = DEFAULT_BUCKET_BYTES
    skip_prefixes: tuple[str, ...] = ()
    transport: str = "object_store"
    worker_options: Mapping[str, Any] = field(default_factory=dict)


def expected_tokens(spec: PromptSpec, n: int, max_tokens: int) -> float:
    """Expected tokens of a prompt's n samples: the prompt estimate plus n x max tokens.

    The prompt estimate counts frame groups (duration x fps, capped at max_frames, / 2) times the
    merged tokens of one group at the pixel budget; without a duration it is a constant.
    """
    settings = spec.video_settings
    if spec.duration:
        frames = min(settings.max_frames, max(2.0, spec.duration * settings.fps))
        per_group = max(1.0, settings.max_pixels / float(settings.size_factor**2))
        prompt = TEXT_TOKENS + frames / 2 * (per_group + 6)
    else:
        prompt = DEFAULT_PROMPT_TOKENS
    return prompt + n * max_tokens


@dataclass
class _Task:
    """One shard in flight on one worker."""

    worker: int
    indices: list[int]
    started: float
    attempts: int = 0


@dataclass
class PendingSample:
    """A `RolloutGroup.submit_sample` call in flight: its shards and what `collect` needs."""

    prompts: list[PromptSpec]
    n: int
    sampling: SamplingConfig
    tasks: dict[Any, _Task]
    started: float
    # The weights version the engines held when the shards were sent (what the batch samples).
    version: int


class RolloutGroup(ActorGroup):
    """R `RolloutWorker` actors (see the module docstring). Needs `ray.init()` first."""

    noun, slots = "rollout worker", "workers"
    workers = actor_list("The worker actors, by worker index.")

    def __init__(
        self,
        engine: EngineConfig,
        config: GroupConfig | None = None,
        placement: Sequence[Mapping[str, Any]] | None = None,
        actors: Sequence[Any] | None = None,
        wait: bool = True,
    ) -> None:
        """Start the workers and wait (with `start_timeout_s`) until each engine is ready.

        placement: Ray actor options per worker (e.g. a placement-group scheduling strategy), one
        mapping per worker; None: Ray's default scheduling. actors: drive these existing actors
        instead of starting workers (the colocated layout's learner ranks, each owning an engine:
        `trainer.hybrid`); the group then neither restarts nor kills them, and their weights
        arrive from their own learner, not through `update_weights`. wait=False: return once the
        workers are spawned, so their engines start while the caller starts other pools; call
        `wait_ready` before anything else.
        """
        self.engine_config = engine
        self.config = config or GroupConfig()
        backend = default_backend(self.config.gpus_per_worker > 0)
        self.transport = make_transport(self.config.transport, backend)
        self._sender: WeightSender | None = None
        self._sent_checksum = ""
        self.version = 0
        self.restarts = 0
        self.last_timings: dict[str, dict[str, float]] = {}
        # worker index -> when its current shard was sent (empty between calls)
        self.in_flight: dict[int, float] = {}
        self._weight_refs: list[Any] = []
        super().__init__(RolloutWorker, self.config.num_workers, placement, actors)
        self.worker_info: list[dict[str, Any]] = []
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait (with `start_timeout_s`, from now) until every engine is ready, if not done yet;
        a worker that fails raises a RolloutError naming it."""
        if not self.worker_info:
            self.worker_info = self._wait_ready(list(range(self.config.num_workers)))

    # -- actors ---------------------------------------------------------------------------

    def actor_options(self, index: int) -> dict[str, Any]:
        """A worker's resources and process environment (`GroupConfig`, `worker_env`)."""
        options: dict[str, Any] = {
            "num_cpus": self.config.cpus_per_worker,
            "num_gpus": self.config.gpus_per_worker,
            "runtime_env": {"env_vars": worker_env(self.engine_config)},
            "max_restarts": 0,
        }
        options.update(self.config.worker_options)
        return options

    def actor_args(self, index: int) -> tuple[Any, ...]:
        """A worker's engine settings and its index."""
        return (self.engine_config, index)

    def _wait_ready(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Wait for the given workers' engines; raise RolloutError naming a worker that fails."""

        def error(slots: list[int], exc: BaseException) -> RolloutError:
            return RolloutError(
                f"rollout worker {slots[0]} did not start within "
                f"{self.config.start_timeout_s:.0f} s (model {self.engine_config.model}): "
                f"{type(exc).__name__}: {exc}"
            )

        return self.call_each("ready", self.config.start_timeout_s, error, indices)

    def restart_worker(self, index: int, reason: str, replay: bool = True) -> None:
        """Replace worker `index` by a fresh actor holding the current weights version (with
        `replay=False` it keeps the model directory's weights: the caller sends them).

        An engine the group does not own (a colocated learner rank's) is not restarted: a
        `RolloutError` names it and the reason (its learner group restarts with it)."""
        if not self.owns_actors:
            raise RolloutError(
                f"rollout engine {index} lives in learner rank {index} (rollout.colocate) and "
                f"cannot be restarted on its own: {reason}"
            )
        log.warning("restarting rollout worker %d: %s", index, reason)
        self.restart(index)
        (info,) = self._wait_ready([index])
        if replay and isinstance(self.transport, CollectiveTransport) and self._sender:
            info["weights_version"] = self._replay_collective(index)
        elif replay and self._weight_refs:
            (result,) = self.transport.push(
                [self.workers[index]], self._weight_refs, self.config.update_timeout_s
            )
            if not isinstance(result, WeightUpdateResult) or result.version != self.version:
                raise RolloutError(
                    f"restarted rollout worker {index} could not reload weights version "
                    f"{self.version}: {result!r}"
                )
            info["weights_version"] = result.version
        self.worker_info[index] = info
        self.restarts += 1

    # -- sampling -------------------------------------------------------------------------

    def sample(
        self,
        prompts: Sequence[PromptSpec],
        n: int = 1,
        sampling: SamplingConfig | None = None,
        on_part: Callable[[RolloutBatch], None] | None = None,
    ) -> RolloutBatch:
        """Sample n completions per prompt over all workers; the batch comes back in input order.

        on_part: called with each worker's finished shard (its trajectories carry batch-wide
        prompt indices) as soon as it arrives, while other shards still sample; a shard that is
        resent after a failure is passed once, from the call that completed.
        """
        return self.collect(self.submit_sample(prompts, n, sampling), on_part)

    def submit_sample(
        self,
        prompts: Sequence[PromptSpec],
        n: int = 1,
        sampling: SamplingConfig | None = None,
    ) -> PendingSample:
        """Send the shards of a `sample` call to the workers and return at once; `collect` waits
        for them (the driver trains on one batch while the next one samples)."""
        sampling = sampling or SamplingConfig()
        prompts = list(prompts)
        t0 = time.perf_counter()
        costs = [expected_tokens(p, n, sampling.tokens_for(i)) for i, p in enumerate(prompts)]
        shards = balanced_split(costs, len(self.workers))
        tasks: dict[Any, _Task] = {}
        for w, indices in enumerate(shards):
            if indices:
                tasks[self._submit(w, indices, prompts, n, sampling)] = _Task(w, indices, t0)
        return PendingSample(prompts, n, sampling, tasks, t0, self.version)

    def collect(
        self,
        pending: PendingSample,
        on_part: Callable[[RolloutBatch], None] | None = None,
    ) -> RolloutBatch:
        """Wait for a submitted sample (restarting and resending a failed or late worker's
        shard, as `sample` does) and merge it in input order; see `sample` for `on_part`."""
        prompts, n, sampling = pending.prompts, pending.n, pending.sampling
        tasks, t0 = pending.tasks, pending.started
        parts: list[RolloutBatch] = []
        sampled_by: dict[int, int] = {}
        timings: dict[str, dict[str, float]] = {}
        while tasks:
            self.in_flight = {t.worker: t.started for t in tasks.values()}
            now = time.perf_counter()
            wait_s = min(t.started + self.config.sample_timeout_s for t in tasks.values()) - now
            ready, _ = ray.wait(list(tasks), num_returns=1, timeout=max(0.0, wait_s))
            if not ready:
                now = time.perf_counter()
                limit = self.config.sample_timeout_s
                late = [r for r, t in tasks.items() if now - t.started >= limit]
                for ref in late:
                    task = tasks.pop(ref)
                    why = f"no answer within {self.config.sample_timeout_s:.0f} s"
                    self._retry(task, why, tasks, prompts, n, sampling)
                continue
            ref = ready[0]
            task = tasks.pop(ref)
            try:
                # ready: at most a transfer from another node
                part: RolloutBatch = ray.get(ref, timeout=self.config.control_timeout_s)
            except Exception as exc:
                self._retry(task, f"{type(exc).__name__}: {exc}", tasks, prompts, n, sampling)
                continue
            parts.append(part)
            sampled_by.update(dict.fromkeys(task.indices, task.worker))
            if on_part is not None:
                on_part(part)
            timings[f"worker{task.worker}"] = {
                "sample_s": part.timings.get("sample_s", 0.0),
                "prepare_s": part.timings.get("prepare_s", 0.0),
                "generate_s": part.timings.get("generate_s", 0.0),
                "round_trip_s": time.perf_counter() - task.started,
                "prompts": float(len(task.indices)),
                "tokens": float(part.num_generated_tokens),
                "retries": float(task.attempts),
            }
        self.in_flight = {}
        batch = RolloutBatch.merge(parts, prompts)
        batch.sampled_by = dict(sorted(sampled_by.items()))
        batch.skipped.sort(key=lambda s: s.prompt_index)
        batch.timings = {"rollout_s": time.perf_counter() - t0}
        for name, values in sorted(timings.items()):
            for key in ("sample_s", "prepare_s", "generate_s", "round_trip_s"):
                batch.timings[f"{name}_{key}"] = values[key]
            batch.timings[f"{name}_tokens"] = values["tokens"]
        self.last_timings = timings
        return batch

    def _submit(
        self,
        worker: int,
        indices: list[int],
        prompts: list[PromptSpec],
        n: int,
        sampling: SamplingConfig,
    ) -> Any:
        """Send one shard to one worker."""
        shard = [prompts[i] for i in indices]
        return self.workers[worker].sample.remote(shard, n, sampling, indices)

    def _retry(
        self,
        task: _Task,
        reason: str,
        tasks: dict[Any, _Task],
        prompts: list[PromptSpec],
        n: int,
        sampling: SamplingConfig,
    ) -> None:
        """Restart a failed worker and resend its shard, or raise after max_restarts."""
        if task.attempts >= self.config.max_restarts:
            raise RolloutError(
                f"rollout worker {task.worker} failed {task.attempts + 1} times on sample() of a "
                f"shard of {len(task.indices)} prompts; last error: {reason}"
            )
        self.restart_worker(task.worker, reason)
        ref = self._submit(task.worker, task.indices, prompts, n, sampling)
        tasks[ref] = _Task(task.worker, task.indices, time.perf_counter(), task.attempts + 1)

    # -- weights --------------------------------------------------------------------------

    def update_weights(
        self, state_dict: Mapping[str, torch.Tensor], version: int | None = None
    ) -> list[WeightUpdateResult]:
        """Push a state dict to every worker in buckets; return each worker's result.

        version: the new version (default: current + 1). Workers that fail during the push are
        restarted (they then replay the same buckets).
        """
        from rollout.weight_sync import bucket_state_dict

        if not self.owns_actors:
            raise RuntimeError(
                "the engines of a colocated layout take their weights from their own learner "
                "ranks (LearnerGroup.sync_rollout), not from update_weights"
            )
        if isinstance(self.transport, CollectiveTransport):
            raise RolloutError(
                "the collective weight transport takes the weights from a sender: use sync_from"
            )
        version = self.version + 1 if version is None else version
        buckets = bucket_state_dict(
            state_dict, version, self.config.bucket_bytes, self.config.skip_prefixes
        )
        refs = self.transport.put(buckets)
        results = self.transport.push(self.workers, refs, self.config.update_timeout_s)
        self._weight_refs, self.version = refs, version
        out: list[WeightUpdateResult] = []
        for w, result in enumerate(results):
            if not isinstance(result, WeightUpdateResult):
                self.restart_worker(w, f"weight update failed: {result!r}")
                (checksum,) = self._get_each("checksum", [w])
                result = WeightUpdateResult(version, checksum, 0.0, 0, 0)
            out.append(result)
        return out

    def sync_from(
        self, sender: WeightSender, version: int | None = None, checksum: bool = True
    ) -> tuple[str, list[WeightUpdateResult]]:
        """Bring every worker to the sender's current weights as `version` (default: current
        + 1) through the configured transport; return the checksum of what the sender sent
        ("" unless `checksum`) and each worker's result.

        object_store: the weights are exported to this process and pushed (`update_weights`).
        collective: the sender broadcasts them to the workers directly (module docstring).
        """
        version = self.version + 1 if version is None else version
        if not isinstance(self.transport, CollectiveTransport):
            buckets = sender.export_weights(self.config.bucket_bytes, self.config.skip_prefixes)
            state = {name: tensor for bucket in buckets for name, tensor in bucket}
            results = self.update_weights(state, version=version)
            return (state_checksum(state) if checksum else ""), results
        self._sender = sender
        for attempt in range(self.config.max_restarts + 1):
            sent, results = self.transport.sync(
                sender,
                self.workers,
                version,
                self.config.bucket_bytes,
                self.config.skip_prefixes,
                checksum,
                self.config.update_timeout_s,
            )
            failed = {w: r for w, r in enumerate(results) if not isinstance(r, WeightUpdateResult)}
            if not failed and not isinstance(sent, Exception):
                self.version, self._sent_checksum = version, sent["checksum"]
                return sent["checksum"], results
            # Workers whose actor died or did not answer are restarted (without a replay: the
            # next attempt sends them the weights); the others only lost the group.
            gone = [w for w, r in failed.items() if _actor_gone(r)]
            if isinstance(sent, Exception) and not gone:
                raise sent  # the sender's own failure: its caller decides (learner recovery)
            if attempt == self.config.max_restarts:
                names = "; ".join(f"rollout worker {w}: {r!r}" for w, r in failed.items())
                raise RolloutError(
                    f"collective weight update to version {version} failed "
                    f"{attempt + 1} times; {names or sent!r}"
                )
            for w in gone:
                self.restart_worker(w, f"collective weight update failed: {failed[w]!r}", False)
        raise AssertionError("unreachable")

    def _replay_collective(self, index: int) -> int:
        """Send the current version to restarted worker `index` alone, from the last sender,
        over a new two-member group; return the version it holds."""
        assert self._sender is not None
        sent, (result,) = self.transport.sync(
            self._sender,
            [self.workers[index]],
            self.version,
            self.config.bucket_bytes,
            self.config.skip_prefixes,
            bool(self._sent_checksum),
            self.config.update_timeout_s,
        )
        problem = ""
        if isinstance(sent, Exception) or not isinstance(result, WeightUpdateResult):
            problem = f"{sent!r}; {result!r}"
        elif self._sent_checksum and sent["checksum"] != self._sent_checksum:
            problem = "the sender's weights changed since that version was sent"
        if problem:
            raise RolloutError(
                f"restarted rollout worker {index} could not reload weights version "
                f"{self.version} over the collective group: {problem}"
            )
        return result.version

    def checksums(self) -> list[str]:
        """Each worker's weights checksum."""
        return self._get_each("checksum", range(len(self.workers)))

    def versions(self) -> list[int]:
        """Each worker's weights version."""
        return self._get_each("weights_version", range(len(self.workers)))

    def _get_each(self, call: str, indices: Sequence[int]) -> list[Any]:
        """Call a small method on the given workers; a worker that does not answer within
        `control_timeout_s`, or fails, is a `RolloutError` naming it and the call."""
        return self.call_each(call, self.config.control_timeout_s, self._call_error(call), indices)

    def _call_error(self, call: str) -> ErrorFactory:
        """The `RolloutError` of a small call that failed or timed out, naming the worker."""

        def error(slots: list[int], exc: BaseException) -> RolloutError:
            return RolloutError(
                f"rollout worker {slots[0]}: {call}() failed or did not answer within "
                f"{self.config.control_timeout_s:.0f} s: {type(exc).__name__}: {exc}"
            )

        return error


def _actor_gone(error: Any) -> bool:
    """Whether a failed call means its worker is dead or stuck (restart it) rather than that
    it only lost its weight group."""
    from ray.exceptions import GetTimeoutError, RayActorError

    return isinstance(error, RayActorError | GetTimeoutError)
