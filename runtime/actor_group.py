"""`ActorGroup`: the lifecycle the pools of Ray actors share (rollout workers, teacher workers,
learner ranks).

- Slots: a group holds `count` actors, one per slot. Each is spawned with the group's options
  (`actor_options`: resources, environment) and then its slot's own (`placement`: e.g. its
  placement-group bundle), with the slot's constructor arguments (`actor_args`); a restarted
  actor gets its slot's options again, so it returns to its bundle.
- Calls: `call_each` / `get_results` wait for one call per actor with one timeout for all of
  them; the first call to fail, or the timeout, raises the error the group makes of it (its own
  error class, naming the actor: `actor_name`) at once, without waiting for the others.
- Restarts and shutdown: `restart` replaces one actor (killed whether alive or dead),
  `restart_all` every one; `shutdown` kills them all, tolerating dead ones. A group attached to
  actors it did not start (`actors=`: another group owns them) neither restarts nor kills them.

Subclasses set `noun` / `slots` (how messages name an actor and the slots) and override
`actor_options` / `actor_args`; Ray must be initialised before actors are spawned.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# What `ray.get` says when it times out: the cause a group's error gets on a timeout.
TIMEOUT_MESSAGE = "Get timed out: some object(s) not ready."

# Makes a group's own error from the slots concerned and the cause: the one slot whose call
# failed and its exception, or the slots still running at the timeout and a GetTimeoutError.
# Returning the cause itself re-raises it unchanged.
ErrorFactory = Callable[[list[int], BaseException], BaseException]


def kill(actor: Any) -> None:
    """Kill one Ray actor for good; an actor that is already dead (or no actor) is ignored."""
    import ray

    with contextlib.suppress(Exception):
        ray.kill(actor, no_restart=True)


def get_results(
    refs: Sequence[Any],
    timeout_s: float | None,
    error: ErrorFactory,
    indices: Sequence[int] | None = None,
) -> list[Any]:
    """The results of one call per actor, in the order of `refs`.

    timeout_s: the limit for all of them together, from now (None: no limit). The first call to
    fail, or the timeout, raises `error(slots, cause)` at once (see `ErrorFactory`). indices:
    the slot of each ref (default 0, 1, ...), as the error names them.
    """
    import ray
    from ray.exceptions import GetTimeoutError

    slots = list(range(len(refs))) if indices is None else list(indices)
    slot_of = dict(zip(refs, slots, strict=True))
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    results: dict[int, Any] = {}
    pending = list(refs)
    while pending:
        wait_s = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, pending = ray.wait(pending, num_returns=1, timeout=wait_s)
        if not ready:
            cause = GetTimeoutError(TIMEOUT_MESSAGE)
            raised = error(sorted(slot_of[ref] for ref in pending), cause)
            if raised is cause:
                raise cause
            raise raised from cause
        slot = slot_of[ready[0]]
        try:
            results[slot] = ray.get(ready[0], timeout=timeout_s)  # ready: at most a transfer
        except Exception as exc:
            raised = error([slot], exc)
            if raised is exc:
                raise
            raise raised from exc
    return [results[slot] for slot in slots]


def actor_list(doc: str) -> property:
    """A property that names a group's `actors` list another way (`workers`, `ranks`)."""

    def get(self: ActorGroup) -> list[Any]:
        return self.actors

    def put(self: ActorGroup, actors: list[Any]) -> None:
        self.actors = actors

    return property(get, put, doc=doc)


class ActorGroup:
    """Ray actors in numbered slots: spawn, call with a timeout, restart, shut down."""

    noun = "actor"  # one actor in messages: "<noun> <slot>"
    slots = "actors"  # the slots in messages: "placement has 1 entries for 2 <slots>"
    owns_actors = True
    actors: list[Any]

    def __init__(
        self,
        actor_cls: type,
        count: int,
        placement: Sequence[Mapping[str, Any]] | None = None,
        actors: Sequence[Any] | None = None,
    ) -> None:
        """Spawn `count` actors of `actor_cls` (not waiting for them), or attach to `actors`.

        placement: Ray actor options per slot, applied over `actor_options` (e.g. a
        placement-group scheduling strategy); None: Ray's default scheduling. actors: existing
        actors to drive instead, one per slot; the group then neither restarts nor kills them.
        """
        import ray

        if placement is not None and len(placement) != count:
            raise ValueError(f"placement has {len(placement)} entries for {count} {self.slots}")
        if actors is not None and len(actors) != count:
            raise ValueError(f"{len(actors)} actors for {count} {self.slots}")
        self.count = count
        self.placement = [dict(p) for p in placement] if placement is not None else None
        self.owns_actors = actors is None
        self._remote_cls = ray.remote(actor_cls)
        self.actors = list(actors) if actors is not None else [self.spawn(i) for i in range(count)]

    def actor_options(self, index: int) -> dict[str, Any]:
        """Ray actor options of slot `index` before its placement (resources, environment)."""
        return {}

    def actor_args(self, index: int) -> tuple[Any, ...]:
        """The constructor arguments of the actor in slot `index`."""
        return ()

    def spawn(self, index: int) -> Any:
        """A new actor for slot `index`, with the slot's options and placement (not waited for)."""
        options = self.actor_options(index)
        if self.placement is not None:
            options.update(self.placement[index])
        return self._remote_cls.options(**options).remote(*self.actor_args(index))

    def restart(self, index: int) -> Any:
        """Replace the actor in slot `index` (alive or dead) by a fresh one; return the new one."""
        if not self.owns_actors:
            raise RuntimeError(f"{self.noun} {index} belongs to another group: not restarted here")
        kill(self.actors[index])
        self.actors[index] = self.spawn(index)
        return self.actors[index]

    def restart_all(self) -> None:
        """Replace every actor by a fresh one (all are killed before any is spawned)."""
        if not self.owns_actors:
            raise RuntimeError(f"the {self.slots} belong to another group: not restarted here")
        for actor in self.actors:
            kill(actor)
        self.actors = [self.spawn(i) for i in range(self.count)]

    def call_each(
        self,
        method: str,
        timeout_s: float | None,
        error: ErrorFactory,
        indices: Sequence[int] | None = None,
        args: tuple[Any, ...] = (),
    ) -> list[Any]:
        """`method(*args)` on the actors of `indices` (default all), their results in that order;
        the first failure or the timeout raises `error` (`get_results`). Waiting for the actors'
        `ready` method is the ready-wait of freshly spawned actors."""
        indices = list(range(len(self.actors))) if indices is None else list(indices)
        refs = [getattr(self.actors[i], method).remote(*args) for i in indices]
        return get_results(refs, timeout_s, error, indices)

    def actor_id(self, index: int) -> str:
        """The Ray actor id (hex) in slot `index`, or "?" when there is none."""
        try:
            return self.actors[index]._actor_id.hex()
        except (AttributeError, IndexError):
            return "?"

    def actor_name(self, index: int) -> str:
        """How errors name the actor in slot `index`: "<noun> <index> (actor <id>)"."""
        return f"{self.noun} {index} (actor {self.actor_id(index)})"

    def shutdown(self) -> None:
        """Kill every actor the group owns (dead ones are ignored) and forget all of them (actors
        the group does not own are left to their owner)."""
        if self.owns_actors:
            for actor in self.actors:
                kill(actor)
        self.actors = []
