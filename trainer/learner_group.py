"""L learner ranks as Ray actors forming one DeepSpeed data-parallel group.

Every call to the ranks waits with `timeout_s`. A rank that dies or does not answer in time is a
`LearnerError` naming the rank, its actor and the call, raised as soon as it is seen (the other
ranks may be blocked in a collective with the dead one: a DeepSpeed process group cannot lose a
member, so the caller shuts the group down and starts a new one; `launch.driver.Driver.recover`).

Rendezvous: the ranks start as bare actors (`LearnerRank`) wherever Ray or their placement-group
bundles put them; rank 0 is asked for its node's IP address and a free port on that node, and
every rank then joins the process group there (MASTER_ADDR / MASTER_PORT), so the ranks may sit on
different nodes. `rendezvous` records the address, port and rank 0's node.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from rollout.batch import PromptSpec, Trajectory
from runtime.actor_group import ActorGroup, actor_list, get_results
from trainer.learner import Learner, LearnerSettings, StepResult
from trainer.step_loss import StepTotals

DEFAULT_TIMEOUT_S = 600.0
START_ATTEMPTS = 3
log = logging.getLogger(__name__)


class LearnerError(RuntimeError):
    """A learner rank died or failed during a call; the message names the rank and the call."""


class LearnerTimeoutError(LearnerError, TimeoutError):
    """A call to the learner ranks did not finish within `timeout_s`."""


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on `host` ("" = every interface) for the process group's rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LearnerRank(Learner):
    """A learner rank as a Ray actor whose DeepSpeed set-up waits for the rendezvous address:
    created bare on its node, it answers `address` (rank 0: its node's IP and a free port
    there), then `join` builds the `Learner` (process group, model, engine) at that address."""

    def __init__(self, rank: int, world_size: int, settings: LearnerSettings) -> None:
        """Hold the rank's settings; nothing is built before `join`."""
        self.rank, self.world_size, self.settings = rank, world_size, settings

    def address(self) -> dict[str, Any]:
        """This node's IP address, a port free on it, and its Ray node id."""
        import ray

        return {
            "master_addr": ray.util.get_node_ip_address(),
            "master_port": free_port(""),
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def join(self, master_addr: str, master_port: int) -> int:
        """Join the process group at rank 0's address and build the engine; return the rank."""
        Learner.__init__(self, self.rank, self.world_size, master_addr, master_port, self.settings)
        return self.rank


def port_in_use(error: BaseException) -> bool:
    """Whether a failed start-up was the rendezvous port being taken (EADDRINUSE), anywhere in
    the exception's chain."""
    seen: BaseException | None = error
    while seen is not None:
        text = str(seen)
        if "EADDRINUSE" in text or "address already in use" in text.lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def affine_shares(
    trajectories: Sequence[Trajectory], parts: int, sampled_by: Mapping[int, int] | None = None
) -> list[list[int]]:
    """Indices of `trajectories` for each of `parts` ranks: shares whose sizes differ by at most
    one (the larger ones first), each row on rank `sampled_by[prompt_index] % parts` (the rank
    whose process sampled it: in the colocated layout its frames are already decoded there)
    while that rank has room, the rest filling the ranks in order. Without `sampled_by`:
    contiguous shares. Each share keeps the batch's order."""
    base, extra = divmod(len(trajectories), parts)
    quotas = [base + (1 if rank < extra else 0) for rank in range(parts)]
    shares: list[list[int]] = [[] for _ in range(parts)]
    rest: list[int] = []
    sampled_by = sampled_by or {}
    for index, traj in enumerate(trajectories):
        worker = sampled_by.get(traj.prompt_index)
        rank = worker % parts if worker is not None else None
        if rank is not None and len(shares[rank]) < quotas[rank]:
            shares[rank].append(index)
        else:
            rest.append(index)
    for index in rest:
        rank = next(r for r in range(parts) if len(shares[r]) < quotas[r])
        shares[rank].append(index)
    return [sorted(share) for share in shares]


class LearnerGroup(ActorGroup):
    """Creates the ranks, splits each step data-parallel and gathers their results."""

    noun, slots = "rank", "ranks"
    ranks = actor_list("The rank actors, in rank order.")

    def __init__(
        self,
        settings: LearnerSettings,
        world_size: int = 2,
        num_cpus_per_rank: float = 0,
        num_gpus_per_rank: float = 0,
        resources: dict[str, float] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        placement: Sequence[Mapping[str, Any]] | None = None,
        rank_cls: type[LearnerRank] = LearnerRank,
        rank_args: tuple[Any, ...] = (),
        env_vars: dict[str, str] | None = None,
    ) -> None:
        """Start `world_size` ranks and form their process group at rank 0's node (module
        docstring). placement: Ray actor options per rank (e.g. its placement-group bundle);
        None: Ray's default scheduling. rank_cls / rank_args: the rank actor's class and its
        arguments after (rank, world_size, settings), e.g. `trainer.hybrid.HybridRank` and its
        engine config; env_vars: the ranks' process environment."""
        self.settings, self.world_size, self.timeout_s = settings, world_size, timeout_s
        self._options: dict[str, Any] = {
            "num_cpus": num_cpus_per_rank,
            "num_gpus": num_gpus_per_rank,
            "resources": resources or {},
        }
        if env_vars:
            self._options["runtime_env"] = {"env_vars": dict(env_vars)}
        self._rank_args = rank_args
        super().__init__(rank_cls, world_size, placement)
        self.rendezvous: dict[str, Any] = {}
        # The rendezvous port is free when picked but can be taken before rank 0 binds it (a
        # busy machine): then the ranks are started again on another port.
        for attempt in range(1, START_ATTEMPTS + 1):
            port: Any = None
            try:
                (self.rendezvous,) = self._get([self.ranks[0].address.remote()], "rendezvous")
                addr, port = self.rendezvous["master_addr"], self.rendezvous["master_port"]
                self._get([rank.join.remote(addr, port) for rank in self.ranks], "start-up")
                return
            except LearnerError as exc:
                if attempt == START_ATTEMPTS or not port_in_use(exc):
                    self.shutdown()
                    raise
                log.warning("learner rendezvous port %s was taken; starting again", port)
                self.restart_all()

    def actor_options(self, index: int) -> dict[str, Any]:
        """A rank's resources and process environment."""
        return dict(self._options)

    def actor_args(self, index: int) -> tuple[Any, ...]:
        """A rank's (rank, world_size, settings) and the rank class's further arguments."""
        return (index, self.world_size, self.settings, *self._rank_args)

    def _get(self, refs: list[Any], what: str) -> list[Any]:
        """Each rank's result of one call (refs in rank order); the first failure or the
        timeout raises at once (`LearnerError` / `LearnerTimeoutError`, naming the rank(s))."""
        from ray.exceptions import GetTimeoutError

        def error(ranks: list[int], exc: BaseException) -> LearnerError:
            if isinstance(exc, GetTimeoutError):
                return LearnerTimeoutError(
                    f"learner group: {what} did not finish within {self.timeout_s:.0f} s "
                    f"(learner.timeout_s) on {', '.join(map(self.actor_name, ranks))}"
                )
            return LearnerError(
                f"learner group: {what} failed on {self.actor_name(ranks[0])}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )

        return get_results(refs, self.timeout_s, error)

    def train_step(
        self,
        prompts: Sequence[PromptSpec],
        trajectories: Sequence[Trajectory],
        objective: str,
        objective_kwargs: dict[str, Any],
        time_progress: float = 0.0,
        sampled_by: Mapping[int, int] | None = None,
        keep_logprobs: bool = False,
    ) -> list[StepResult]:
        """Run one data-parallel optimizer step; return each rank's result.

        `time_progress`: the share of the run's budget spent (trainer.lr_schedule.run_progress);
        `sampled_by`: which rollout worker sampled each prompt (`RolloutBatch.sampled_by`), to
        keep rows on the rank that sampled them (`affine_shares`); `keep_logprobs`: the ranks
        return the log-probs of the step's own forward (`rows_in_order` puts them in order).
        """
        if not trajectories:
            raise ValueError("train_step needs at least one trajectory")
        totals = StepTotals.of(trajectories)
        shares, num_chunks, _ = self._shares(trajectories, sampled_by)
        refs = [
            rank.train_step.remote(
                prompts,
                share,
                objective,
                objective_kwargs,
                totals,
                num_chunks,
                trajectories[0],
                time_progress,
                keep_logprobs,
            )
            for rank, share in zip(self.ranks, shares, strict=True)
        ]
        return self._get(refs, "train step")

    def rows_in_order(
        self,
        trajectories: Sequence[Trajectory],
        results: Sequence[StepResult],
        sampled_by: Mapping[int, int] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows a `train_step(..., keep_logprobs=True)` over `trajectories` returned, in the
        trajectories' order (as `log_probs` returns them)."""
        _, _, indices = self._shares(trajectories, sampled_by)
        return self._in_order(len(trajectories), indices, [r.rows or [] for r in results])

    def _in_order(
        self, count: int, indices: Sequence[Sequence[int]], parts: Sequence[Sequence[Any]]
    ) -> list[dict[str, Any]]:
        """Per-rank rows (rank r's for trajectories `indices[r]`) in the trajectories' order."""
        rows: list[dict[str, Any]] = [{} for _ in range(count)]
        for share, part in zip(indices, parts, strict=True):
            for index, row in zip(share, part, strict=True):
                rows[index] = row
        return rows

    def _shares(
        self, trajectories: Sequence[Trajectory], sampled_by: Mapping[int, int] | None = None
    ) -> tuple[list[list[Trajectory]], int, list[list[int]]]:
        """Data-parallel shares, the common number of micro-batches every rank runs, and each
        share's indices into `trajectories`."""
        indices = affine_shares(trajectories, self.world_size, sampled_by)
        shares = [[trajectories[i] for i in share] for share in indices]
        size = max(1, self.settings.micro_batch_size)
        return shares, max(1, max(math.ceil(len(s) / size) for s in shares)), indices

    def log_probs(
        self,
        prompts: Sequence[PromptSpec],
        trajectories: Sequence[Trajectory],
        top_k: int = 0,
        sampled_by: Mapping[int, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Current-policy log-probs of all trajectories, computed across the ranks, in the
        trajectories' order (`sampled_by` as in `train_step`)."""
        if not trajectories:
            return []
        shares, num_chunks, indices = self._shares(trajectories, sampled_by)
        refs = [
            rank.log_probs.remote(prompts, share, num_chunks, trajectories[0], top_k)
            for rank, share in zip(self.ranks, shares, strict=True)
        ]
        return self._in_order(len(trajectories), indices, self._get(refs, "log-probs"))

    def export_weights(
        self, bucket_bytes: int = 256 * 1024 * 1024, skip_prefixes: Sequence[str] = ()
    ) -> list[list[tuple[str, Any]]]:
        """Full weights in buckets, from rank 0 (every rank takes part in the gather)."""
        refs = [
            rank.export_weights.remote(bucket_bytes, tuple(skip_prefixes)) for rank in self.ranks
        ]
        return self._get(refs, "weight export")[0]

    def sync_rollout(
        self, version: int, bucket_bytes: int, skip_prefixes: Sequence[str] = ()
    ) -> list[Any]:
        """Colocated layout (`trainer.hybrid.HybridRank`): every rank hands its own weights to its
        own engine in place; returns each rank's `WeightUpdateResult`, in rank order."""
        refs = [
            rank.sync_rollout.remote(version, bucket_bytes, tuple(skip_prefixes))
            for rank in self.ranks
        ]
        return self._get(refs, "weight sync")

    def open_weight_group(self, world_size: int, backend: str, timeout_s: float) -> dict[str, Any]:
        """Open a new weight-broadcast group on rank 0 (its member 0); return its address."""
        ref = self.ranks[0].open_weight_group.remote(world_size, backend, timeout_s)
        return self._get([ref], "weight group")[0]

    def broadcast_weights(
        self,
        version: int,
        bucket_bytes: int = 256 * 1024 * 1024,
        skip_prefixes: Sequence[str] = (),
        checksum: bool = True,
    ) -> dict[str, Any]:
        """Broadcast the full weights from rank 0 to the open weight group (every rank takes
        part in the gather); return rank 0's report (checksum of what it sent, bytes, ...)."""
        refs = [
            rank.broadcast_weights.remote(version, bucket_bytes, tuple(skip_prefixes), checksum)
            for rank in self.ranks
        ]
        return self._get(refs, "weight broadcast")[0]

    def save_checkpoint(self, directory: str, client_state: dict[str, Any]) -> None:
        """Save every rank's DeepSpeed state under `directory`."""
        self._get([r.save_checkpoint.remote(directory, client_state) for r in self.ranks], "save")

    def load_checkpoint(self, directory: str) -> dict[str, Any]:
        """Load every rank's DeepSpeed state; return rank 0's client state."""
        return self._get([r.load_checkpoint.remote(directory) for r in self.ranks], "load")[0]

    def save_hf_model(self, directory: str) -> None:
        """Write the current weights as a Hugging Face model directory."""
        self._get([r.save_hf_model.remote(directory) for r in self.ranks], "save model")

    def restart(self, index: int) -> Any:
        """Refused: a DeepSpeed group cannot take a new rank into its running process group; the
        driver restarts the whole group from the last checkpoint (`Driver.recover`)."""
        raise LearnerError(
            f"learner rank {index} cannot be replaced alone: the ranks share one process group; "
            "restart the whole learner group (the driver does, from the last checkpoint)"
        )
