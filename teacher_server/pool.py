"""`TeacherPool`: T teacher actors on their own Ray resources, balanced by tokens, in order.

    pool = TeacherPool(TeacherConfig(backend="vllm", model=..., top_k=8, num_workers=2,
                                     num_cpus=1, resources={"teacher": 1}))
    pool.check_student(student_dir, video_settings, longest_sequence=...)   # start-up checks
    batch = pool.score_batch(batch)       # fills teacher_logprobs / teacher_topk_* in place
    handle = pool.submit(items)           # non-blocking; several calls may be in flight
    scores, = pool.collect([handle])      # ... each one's results in its input order
    pool.last_call                        # timing and token counts for the compute ledger

One `score` call splits the items over the workers by token count (prompt + completion), waits
for every shard and reassembles the results in the input order. A worker that dies mid-request
(actor crash, node loss, OOM kill) is replaced by a fresh actor and its shard resent, up to
`max_restarts` times per call. `timeout_s` bounds the whole call; on expiry `TeacherTimeoutError`
names the worker(s) still running (their actors are left running; `restart_worker` replaces one).
`placement` gives each worker slot its own Ray actor options (its placement-group bundle,
`launch.placement`), which a restarted worker gets again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rollout.batch import RolloutBatch
from runtime.actor_group import ActorGroup, ErrorFactory, actor_list
from teacher_server.balance import reassemble, split_by_tokens
from teacher_server.checks import (
    TeacherMismatchError,
    check_context_length,
    check_video_settings,
    check_vision_settings,
    compare_tokenizers,
    tokenizer_hash,
    tokenizer_summary,
    vision_settings,
)
from teacher_server.config import TeacherConfig
from teacher_server.items import ScoreItem, TokenScores, fill_batch, items_from_batch
from teacher_server.worker import TeacherWorker
from tvg.video_settings import VideoSettings

# Limit of fetching a result that `ray.wait` reported ready (it may sit on another node).
FETCH_TIMEOUT_S = 60.0


class TeacherTimeoutError(TimeoutError):
    """A pool call ran past `timeout_s`; the message names the workers still running."""


class TeacherWorkerError(RuntimeError):
    """A worker kept dying: more than `max_restarts` restarts within one call."""


@dataclass
class WorkerCallStats:
    """One worker's share of one pool call."""

    worker: int
    sequences: int
    completion_tokens: int
    prompt_tokens: int
    seconds: float
    restarts: int = 0
    # When the worker started and finished scoring (its clock, seconds since the epoch; 0: not
    # reported): the driver measures from them how much scoring ran while the rollout sampled.
    started: float = 0.0
    finished: float = 0.0


@dataclass
class PoolCallStats:
    """One pool call: wall time, token counts and per-worker shares (for the compute ledger)."""

    wall_s: float
    sequences: int
    completion_tokens: int
    prompt_tokens: int
    restarts: int
    workers: list[WorkerCallStats] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens scored per wall-clock second."""
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return {**asdict(self), "tokens_per_s": self.tokens_per_s}


@dataclass
class ScoreHandle:
    """One `TeacherPool.submit` call in flight: its items, their split, and what came back.

    pending maps each outstanding request to (worker slot, the actor it was sent to); scores
    (input order) and call (its stats, also appended to the pool's ledger) are set once every
    shard is back.
    """

    items: list[ScoreItem]
    shards: list[list[int]]
    shard_items: list[list[ScoreItem]]
    started: float
    limit: float | None
    results: list[list[TokenScores]] = field(default_factory=list)
    stats: dict[int, WorkerCallStats] = field(default_factory=dict)
    restarts: list[int] = field(default_factory=list)
    pending: dict[Any, tuple[int, Any]] = field(default_factory=dict)
    scores: list[TokenScores] | None = None
    call: PoolCallStats | None = None

    @property
    def deadline(self) -> float | None:
        """When the call times out (`time.perf_counter` clock), or None without a limit."""
        return None if self.limit is None else self.started + self.limit


class TeacherPool(ActorGroup):
    """T `TeacherWorker` actors behind one token-balanced, in-order, restarting `score` call."""

    noun, slots = "teacher worker", "workers"
    workers = actor_list("The worker actors, by worker slot.")

    def __init__(
        self,
        config: TeacherConfig,
        token: str | None = None,
        placement: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Start `config.num_workers` actors (Ray must be initialised). placement: Ray actor
        options per worker slot (e.g. a placement-group scheduling strategy); None: Ray's
        default scheduling."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError("TeacherPool needs a running Ray (ray.init) first")
        self.config = config
        self._token = token if token is not None else config.token()
        super().__init__(TeacherWorker, config.num_workers, placement)
        self.ledger: list[PoolCallStats] = []
        self.total_restarts = 0

    def actor_options(self, index: int) -> dict[str, Any]:
        """A worker's resources and (vLLM backend) engine-process environment."""
        options: dict[str, Any] = {
            "num_cpus": self.config.num_cpus,
            "num_gpus": self.config.num_gpus,
            "max_concurrency": 2,
            "max_restarts": 0,
        }
        if self.config.resources:
            options["resources"] = dict(self.config.resources)
        if self.config.backend == "vllm":
            from runtime.vllm_env import engine_process_env

            options["runtime_env"] = {"env_vars": engine_process_env()}
        return options

    def actor_args(self, index: int) -> tuple[Any, ...]:
        """A worker's teacher settings and the token of a remote teacher."""
        return (self.config, self._token)

    def restart_worker(self, index: int) -> None:
        """Kill worker `index` (if alive) and start a fresh one in its slot."""
        self.restart(index)
        self.total_restarts += 1

    def info(self) -> list[dict[str, Any]]:
        """Each worker's `info()` (waits until every worker has started, up to `timeout_s`)."""
        return self.call_each("info", self.config.timeout_s, self._timeout_error("info"))

    def statuses(self) -> list[dict[str, Any]]:
        """Each worker's `status()`: pid, calls in flight, calls done."""
        return self.call_each("status", self.config.timeout_s, self._timeout_error("status"))

    def _timeout_error(self, call: str) -> ErrorFactory:
        """Past `timeout_s`, a `TeacherTimeoutError` naming the worker and the call; any other
        failure is raised as it is."""
        from ray.exceptions import GetTimeoutError

        def error(slots: list[int], exc: BaseException) -> BaseException:
            if not isinstance(exc, GetTimeoutError):
                return exc
            return TeacherTimeoutError(
                f"{self.actor_name(slots[0])}: {call}() did not answer within "
                f"timeout_s={self.config.timeout_s}"
            )

        return error

    def check_student(
        self,
        student_model: str,
        video_settings: VideoSettings | None = None,
        teacher_video_settings: VideoSettings | None = None,
        longest_sequence: int | None = None,
    ) -> dict[str, Any]:
        """Start-up checks against the student; raise `TeacherMismatchError` naming what differs.

        - tokenizers identical (vocabulary, special and added tokens, chat template);
        - same vision-input settings (video processor, vision patch/merge sizes), and the same
          frame sampling `VideoSettings` when both are given;
        - every worker's teacher context length fits `longest_sequence` (prompt + completion).
        Returns the first worker's info.
        """
        from transformers import AutoConfig, AutoProcessor

        infos = self.info()
        processor = AutoProcessor.from_pretrained(student_model)
        student_tok = tokenizer_summary(processor.tokenizer)
        student_vision = vision_settings(processor, AutoConfig.from_pretrained(student_model))
        for index, info in enumerate(infos):
            if info["tokenizer_hash"] != tokenizer_hash(processor.tokenizer):
                problems = ["tokenizer hash differs"]
                if self.config.backend != "remote":
                    teacher_tok = tokenizer_summary(
                        AutoProcessor.from_pretrained(info["model"]).tokenizer
                    )
                    problems = compare_tokenizers(teacher_tok, student_tok) or problems
                raise TeacherMismatchError(
                    f"teacher worker {index} ({info['model']}) and student {student_model} "
                    "tokenizers differ:\n  - " + "\n  - ".join(problems)
                )
            check_vision_settings(info["vision_settings"], student_vision)
            if longest_sequence is not None:
                check_context_length(int(info["max_model_len"]), longest_sequence)
            if abs(float(info["temperature"]) - self.config.temperature) > 0:
                raise TeacherMismatchError(
                    f"teacher worker {index} scores at temperature {info['temperature']}, the "
                    f"pool is configured for {self.config.temperature}"
                )
        if video_settings is not None and teacher_video_settings is not None:
            check_video_settings(teacher_video_settings, video_settings)
        return infos[0]

    def submit(self, items: Sequence[ScoreItem], timeout_s: float | None = None) -> ScoreHandle:
        """Send `items` to the workers (split by tokens) without waiting; `collect` the handle.

        timeout_s: limit for this call from now (default `config.timeout_s`). Several handles
        may be in flight at once (each worker scores its calls one after another).
        """
        start = time.perf_counter()
        items = list(items)
        shards = split_by_tokens([item.num_tokens for item in items], len(self.workers))
        limit = self.config.timeout_s if timeout_s is None else timeout_s
        handle = ScoreHandle(
            items=items,
            shards=shards,
            shard_items=[[items[i] for i in shard] for shard in shards],
            started=start,
            limit=limit,
        )
        handle.results = [[] for _ in shards]
        handle.restarts = [0] * len(shards)
        for w, chunk in enumerate(handle.shard_items):
            if chunk:
                self._send(handle, w)
        if not handle.pending:  # nothing to score
            self._finish(handle)
        return handle

    def _send(self, handle: ScoreHandle, w: int) -> None:
        """Send shard `w` of `handle` to the current actor of worker slot `w`."""
        actor = self.workers[w]
        handle.pending[actor.score.remote(handle.shard_items[w])] = (w, actor)

    def collect(self, handles: Sequence[ScoreHandle]) -> list[list[TokenScores]]:
        """Wait for submitted calls; each one's results in its input order (stats in `ledger`,
        one entry per call, appended as the calls complete).

        A worker that died is restarted once, however many calls it held, and every shard it
        held is resent; a call past its limit raises `TeacherTimeoutError`.
        """
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        owner = {ref: handle for handle in handles for ref in handle.pending}
        while owner:
            deadlines = [h.deadline for h in handles if h.pending and h.deadline is not None]
            now = time.perf_counter()
            wait_s = None if not deadlines else max(0.0, min(deadlines) - now)
            ready, _ = ray.wait(list(owner), num_returns=1, timeout=wait_s)
            if not ready:
                late = [h for h in handles if h.pending and h.deadline is not None]
                late.sort(key=lambda h: h.deadline or 0.0)
                raise TeacherTimeoutError(self._timeout_message(late[0]))
            ref = ready[0]
            handle = owner.pop(ref)
            w, actor = handle.pending.pop(ref)
            try:
                # ready: at most a transfer from another node
                fetch_s = None if wait_s is None else max(wait_s, FETCH_TIMEOUT_S)
                shard_results, worker_stats = ray.get(ref, timeout=fetch_s)
            except (RayActorError, ActorDiedError, ActorUnavailableError) as exc:
                handle.restarts[w] += 1
                if handle.restarts[w] > self.config.max_restarts:
                    raise TeacherWorkerError(
                        f"teacher worker {w} died {handle.restarts[w]} times in one call "
                        f"(max_restarts={self.config.max_restarts}): {exc}"
                    ) from exc
                if self.workers[w] is actor:  # not yet replaced for another call's shard
                    self.restart_worker(w)
                self._send(handle, w)
                owner.update({r: handle for r in handle.pending if r not in owner})
                continue
            handle.results[w] = shard_results
            handle.stats[w] = WorkerCallStats(
                worker=w,
                sequences=int(worker_stats["sequences"]),
                completion_tokens=int(worker_stats["completion_tokens"]),
                prompt_tokens=int(worker_stats["prompt_tokens"]),
                seconds=float(worker_stats["seconds"]),
                restarts=handle.restarts[w],
                started=float(worker_stats.get("started", 0.0)),
                finished=float(worker_stats.get("finished", 0.0)),
            )
            if not handle.pending:
                self._finish(handle)
        return [handle.scores for handle in handles]

    def _finish(self, handle: ScoreHandle) -> None:
        """Reassemble a completed call in input order and add its stats to the ledger."""
        handle.scores = reassemble(handle.shards, handle.results, len(handle.items))
        per_worker = [handle.stats[w] for w in sorted(handle.stats)]
        handle.call = PoolCallStats(
            wall_s=time.perf_counter() - handle.started,
            sequences=len(handle.items),
            completion_tokens=sum(s.completion_tokens for s in per_worker),
            prompt_tokens=sum(s.prompt_tokens for s in per_worker),
            restarts=sum(handle.restarts),
            workers=per_worker,
        )
        self.ledger.append(handle.call)

    def score(
        self, items: Sequence[ScoreItem], timeout_s: float | None = None
    ) -> list[TokenScores]:
        """Score `items` over the workers; results in input order (stats in `last_call`).

        timeout_s: limit for this call (default `config.timeout_s`).
        """
        return self.collect([self.submit(items, timeout_s)])[0]

    def _timeout_message(self, handle: ScoreHandle) -> str:
        """Name the workers still running a call when its timeout expires."""
        names = []
        for w in sorted(w for w, _ in handle.pending.values()):
            actor = self.actor_id(w)
            chunk = handle.shard_items[w]
            tokens = sum(i.num_tokens for i in chunk)
            names.append(
                f"teacher worker {w} (actor {actor}, {len(chunk)} sequences, {tokens} tokens)"
            )
        return (
            f"teacher pool call exceeded timeout_s={handle.limit}: still waiting for "
            + "; ".join(names)
        )

    def score_batch(self, batch: RolloutBatch, target: str = "teacher") -> RolloutBatch:
        """Fill every trajectory's teacher fields (target="teacher") or its reference log-probs
        (target="reference"), in place, and add the call's timing under that name."""
        scores = self.score(items_from_batch(batch))
        fill_batch(batch, scores, target)
        batch.timings[target] = batch.timings.get(target, 0.0) + self.last_call.wall_s
        return batch

    @property
    def last_call(self) -> PoolCallStats:
        """Stats of the most recent `score` call."""
        if not self.ledger:
            raise RuntimeError("no teacher pool call yet")
        return self.ledger[-1]
