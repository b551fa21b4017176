"""ActorGroup on real Ray actors: per-slot options, calls that fail or time out naming the actor,
restarts back into the slot's options, and shutdown of owned (not attached) actors."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from runtime.actor_group import ActorGroup, actor_list, get_results


class GroupError(RuntimeError):
    """The test group's own error."""


def _probe_class() -> type:
    """A tiny actor class, defined locally so that Ray ships it to the workers by value."""
    import os

    class Probe:
        """Reports its slot, process and the resources Ray gave it; sleeps or dies on request."""

        def __init__(self, slot: int) -> None:
            self.slot = slot

        def ready(self) -> dict[str, Any]:
            import ray

            resources = ray.get_runtime_context().get_assigned_resources()
            return {"slot": self.slot, "pid": os.getpid(), "resources": resources}

        def wait(self, seconds: float) -> float:
            time.sleep(seconds)
            return seconds

        def die(self) -> None:
            os._exit(1)

    return Probe


class ProbeGroup(ActorGroup):
    """Probe actors on no CPU; slot i is built with argument i."""

    noun, slots = "probe", "probes"
    probes = actor_list("The probe actors.")

    def actor_options(self, index: int) -> dict[str, Any]:
        return {"num_cpus": 0}

    def actor_args(self, index: int) -> tuple[Any, ...]:
        return (index,)


def _error(slots: list[int], exc: BaseException) -> GroupError:
    return GroupError(f"probes {slots} failed: {type(exc).__name__}")


def _pids(group: ActorGroup) -> list[int]:
    return [info["pid"] for info in group.call_each("ready", 60.0, _error)]


def test_a_placement_or_actor_list_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="placement has 1 entries for 2 probes"):
        ProbeGroup(_probe_class(), 2, placement=[{}])
    with pytest.raises(ValueError, match="3 actors for 2 probes"):
        ProbeGroup(_probe_class(), 2, actors=[object()] * 3)


def test_slots_get_their_options_args_and_placement_again_after_a_restart(ray_session) -> None:
    # Slot 1's "placement": a share of the session's custom "teacher" resource.
    group = ProbeGroup(_probe_class(), 2, placement=[{}, {"resources": {"teacher": 0.5}}])
    try:
        infos = group.call_each("ready", 60.0, _error)
        assert [info["slot"] for info in infos] == [0, 1]
        assert "teacher" not in infos[0]["resources"]
        assert infos[1]["resources"]["teacher"] == 0.5
        assert group.probes is group.actors
        old = list(group.actors)
        group.restart(1)
        assert group.actors[0] is old[0] and group.actors[1] is not old[1]
        (info,) = group.call_each("ready", 60.0, _error, indices=[1])
        assert info["slot"] == 1 and info["resources"]["teacher"] == 0.5
        assert info["pid"] != infos[1]["pid"]
        before = _pids(group)
        group.restart_all()
        assert not set(_pids(group)) & set(before)
    finally:
        group.shutdown()
    assert group.actors == []


def test_a_call_past_the_timeout_names_the_late_actors_at_once(ray_session) -> None:
    group = ProbeGroup(_probe_class(), 3)
    try:
        assert group.call_each("wait", 60.0, _error, args=(0.0,)) == [0.0, 0.0, 0.0]
        refs = [group.actors[0].wait.remote(0.0)]
        refs += [group.actors[i].wait.remote(60.0) for i in (1, 2)]
        start = time.monotonic()
        with pytest.raises(GroupError, match=re.escape("probes [1, 2] failed: GetTimeoutError")):
            get_results(refs, 2.0, _error)
        assert time.monotonic() - start < 20
    finally:
        group.shutdown()


def test_a_dead_actor_is_named_at_once_and_a_raw_error_passes_unchanged(ray_session) -> None:
    from ray.exceptions import RayActorError

    group = ProbeGroup(_probe_class(), 2)
    try:
        group.call_each("ready", 60.0, _error)
        # Slot 0 would block for a minute: the failure of slot 1 is raised without waiting.
        refs = [group.actors[0].wait.remote(60.0), group.actors[1].die.remote()]
        start = time.monotonic()
        with pytest.raises(GroupError, match=r"probes \[1\] failed: \w*Actor\w*Error") as caught:
            get_results(refs, 120.0, _error, indices=[0, 1])
        assert time.monotonic() - start < 30
        assert isinstance(caught.value.__cause__, RayActorError)
        assert re.fullmatch(r"probe 1 \(actor [0-9a-f]+\)", group.actor_name(1))
        with pytest.raises(RayActorError):  # an error factory may keep the cause as it is
            group.call_each("ready", 60.0, lambda slots, exc: exc, indices=[1])
        group.restart(1)  # a dead actor is replaced like a live one
        assert group.call_each("ready", 60.0, _error, indices=[1])[0]["slot"] == 1
    finally:
        group.shutdown()  # the dead actor's successor, and slot 0 while it still sleeps


def test_an_attached_group_neither_restarts_nor_kills_the_actors_it_drives(ray_session) -> None:
    owner = ProbeGroup(_probe_class(), 2)
    try:
        attached = ProbeGroup(_probe_class(), 2, actors=owner.actors)
        assert not attached.owns_actors and attached.actors == owner.actors
        with pytest.raises(RuntimeError, match="probe 0 belongs to another group"):
            attached.restart(0)
        with pytest.raises(RuntimeError, match="probes belong to another group"):
            attached.restart_all()
        pids = _pids(owner)
        attached.shutdown()
        assert attached.actors == [] and _pids(owner) == pids  # still the same processes
    finally:
        owner.shutdown()
    assert ActorGroup.actor_id(owner, 0) == "?"  # no actor in the slot any more
