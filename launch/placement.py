"""Where the actor pools run on a Ray cluster: the `placement` section of the run config.

Pools: `rollout` (the student's engines), `teacher` (the teacher's scoring workers, or its
generation engines for sequence-level KD), `reference` (the frozen KL reference, GRPO / TempSamp-R1
with `objective_kwargs.kl_coef > 0`) and `learner` (the DeepSpeed ranks). Each actor of a pool is
one placement-group **bundle**: its own reservation (`resources.<pool>_cpus` / `_gpus`; the
teacher's generation engines and the reference use the rollout's / teacher's) plus the pool's
custom resources (`placement.<pool>.resources`), on nodes matching the pool's node labels
(`placement.<pool>.node_labels`, Ray's label selectors).

Layouts (`placement.layout`):

- `none` (default): no placement group; Ray's scheduler puts each actor wherever its resources
  fit (one machine: there). The single-machine behaviour, unchanged.
- `packed`: one placement group holding every actor's bundle, strategy PACK: as few nodes as
  possible (OpenRLHF's colocated models, verl's single global resource pool).
- `spread`: one placement group, strategy SPREAD: the actors over as many nodes as possible.
- `per_pool`: one placement group per pool, with the pool's own strategy
  (`placement.<pool>.strategy`, default PACK), each placed before the next is created (learner,
  rollout, teacher, reference): each pool packed on its own; with per-pool custom resources or
  node labels, each pool on its own nodes (OpenRLHF's separate pools: "actor on nodes 0-1,
  teacher on node 2").

Actor i of a pool always goes into the pool's bundle i, so a restarted actor returns to its
bundle; when a node dies, Ray re-places the bundles it held on nodes with room (a spare, or one
an autoscaler adds) and the restarted actors follow them. `Placement` creates the groups and
waits (`placement.timeout_s`) until they are placed, else `PlacementError` names the bundles
that found no node and what each node offers. `lost_nodes` names the dead nodes that ran a
pool's actors (the driver's `NodeLostError`).

Config checks (`check_placement`, called by `launch.config.validate_config`) refuse, with a
`ConfigError`, a key that would change nothing: pool settings without a layout, a strategy
outside `per_pool`, settings of a pool the run does not start, a bundle that reserves nothing.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

LAYOUTS = ("none", "packed", "spread", "per_pool")
STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
POOLS = ("learner", "rollout", "teacher", "reference")
# Resources that `resources.<pool>_cpus` / `_gpus` (or Ray itself) own: not custom resources.
RESERVED_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")
# Strategy of the single group of each shared layout.
LAYOUT_STRATEGY = {"packed": "PACK", "spread": "SPREAD"}
# Actor names in messages and reports, by pool.
ACTOR_NAMES = {
    "learner": "learner rank",
    "rollout": "rollout worker",
    "teacher": "teacher worker",
    "reference": "reference worker",
}


class PlacementError(RuntimeError):
    """The placement groups could not be placed (or re-placed after a node died) in time."""


class NodeLostError(RuntimeError):
    """The run stopped because a Ray node that ran some of its actors died; the message names
    the node and the actors, and the error that stopped the run."""


@dataclass(frozen=True)
class PoolPlan:
    """One pool of a run: its actors and the bundle each one reserves.

    count: actors in the pool. bundle: one actor's bundle (zero entries dropped).
    label_selector: node labels the bundles require. strategy: the pool's own group's strategy
    (layout per_pool).
    """

    name: str
    count: int
    bundle: dict[str, float]
    label_selector: dict[str, str]
    strategy: str


def run_pools(config: Any) -> list[PoolPlan]:
    """The pools `config`'s run starts (learner, rollout, then teacher and reference when the
    objective has them), each with its size and bundle."""
    from trainer.objectives.registry import get_objective_spec

    spec = get_objective_spec(config.trainer.objective)
    res, place = config.resources, config.placement
    kl_coef = float(config.trainer.objective_kwargs.get("kl_coef", 0.0) or 0.0)
    sizes: dict[str, tuple[int, float, float]] = {
        "learner": (config.learner.num_ranks, res.learner_cpus, res.learner_gpus),
    }
    if not getattr(config.rollout, "colocate", False):  # else: the engines are in the learners
        sizes["rollout"] = (config.rollout.num_workers, res.rollout_cpus, res.rollout_gpus)
    colocated = bool(getattr(config.teacher, "colocate", False))  # on the learner ranks
    if spec.teacher == "answers":  # generation engines on the teacher: rollout resources
        sizes["teacher"] = (config.teacher.num_workers, res.rollout_cpus, res.rollout_gpus)
    elif spec.needs_teacher and not colocated:
        sizes["teacher"] = (config.teacher.num_workers, res.teacher_cpus, res.teacher_gpus)
    if spec.accepts_reference and kl_coef > 0:
        sizes["reference"] = (config.teacher.num_workers, res.teacher_cpus, res.teacher_gpus)
    plans = []
    for name in POOLS:
        if name not in sizes:
            continue
        count, cpus, gpus = sizes[name]
        pool = getattr(place, name)
        bundle = {"CPU": float(cpus), "GPU": float(gpus), **dict(pool.resources)}
        plans.append(
            PoolPlan(
                name=name,
                count=int(count),
                bundle={k: float(v) for k, v in bundle.items() if float(v) > 0},
                label_selector={str(k): str(v) for k, v in dict(pool.node_labels).items()},
                strategy=(pool.strategy or "PACK").upper(),
            )
        )
    return plans


def check_placement(config: Any) -> list[str]:
    """Problems of the `placement` section, as messages naming the key (empty: none)."""
    place = config.placement
    problems: list[str] = []
    if place.layout not in LAYOUTS:
        return [f"placement.layout must be one of {', '.join(LAYOUTS)}, got {place.layout!r}"]
    if not (math.isfinite(place.timeout_s) and place.timeout_s > 0):
        problems.append("placement.timeout_s must be > 0")
    started = {plan.name: plan for plan in run_pools(config)}
    for name in POOLS:
        pool = getattr(place, name)
        key = f"placement.{name}"
        settings = [
            f"{key}.{field}"
            for field, value in (
                ("resources", pool.resources),
                ("node_labels", pool.node_labels),
                ("strategy", pool.strategy),
            )
            if value
        ]
        if not settings:
            continue
        if place.layout == "none":
            problems.append(
                f"{', '.join(settings)} place actors through placement groups: set "
                "placement.layout (packed, spread or per_pool), or remove them"
            )
            continue
        if name not in started:
            why = {
                "reference": "no KL penalty to a reference (objective_kwargs.kl_coef > 0)",
                "teacher": "no teacher pool (no teacher signal, or teacher.colocate)",
                "rollout": "no rollout pool (rollout.colocate: the engines are in the learners)",
            }.get(name, f"no {name} pool")
            problems.append(
                f"{', '.join(settings)}: this run (objective {config.trainer.objective!r}) has "
                f"{why}, so nothing would be placed by them"
            )
            continue
        problems += _pool_problems(key, pool, place.layout)
    if place.layout != "none" and not problems:
        for plan in started.values():
            if not plan.bundle:
                problems.append(_empty_bundle(plan.name, place.layout))
    return problems


def _pool_problems(key: str, pool: Any, layout: str) -> list[str]:
    """Value checks of one pool's settings."""
    problems = []
    if pool.strategy is not None:
        if layout != "per_pool":
            problems.append(
                f"{key}.strategy acts only with placement.layout=per_pool (the {layout} layout "
                f"places every pool in one group with strategy {LAYOUT_STRATEGY[layout]})"
            )
        elif pool.strategy.upper() not in STRATEGIES:
            problems.append(
                f"{key}.strategy must be one of {', '.join(STRATEGIES)}, got {pool.strategy!r}"
            )
    for resource, amount in dict(pool.resources).items():
        if resource in RESERVED_RESOURCES:
            problems.append(
                f"{key}.resources: {resource!r} is not a custom resource (CPUs and GPUs per "
                "actor are resources.<pool>_cpus / resources.<pool>_gpus)"
            )
        elif not resource or not (math.isfinite(float(amount)) and float(amount) > 0):
            problems.append(
                f"{key}.resources: {resource!r} must name a resource and reserve an amount > 0, "
                f"got {amount!r}"
            )
    if pool.node_labels:
        from ray._private.label_utils import validate_label_selector

        labels = {str(k): str(v) for k, v in dict(pool.node_labels).items()}
        error = validate_label_selector(labels)
        if error:
            problems.append(f"{key}.node_labels {labels}: {error}")
    return problems


def _empty_bundle(name: str, layout: str) -> str:
    """The message for a pool whose bundles would reserve nothing."""
    if name == "teacher":
        cpus = "resources.teacher_cpus / _gpus (rollout_cpus / _gpus for sequence-level KD)"
    elif name == "reference":
        cpus = "resources.teacher_cpus / _gpus"
    else:
        cpus = f"resources.{name}_cpus / _gpus"
    return (
        f"placement.layout={layout}: the {name} pool's actors reserve nothing ({cpus} are 0 and "
        f"placement.{name}.resources is empty), and a placement-group bundle must reserve some "
        f"resource: give them CPUs or GPUs, or a custom resource in placement.{name}.resources"
    )


class Placement:
    """The run's placement groups and each pool's per-actor scheduling options (see the module
    docstring). Layout `none` creates nothing: `options` is None for every pool."""

    def __init__(self, config: Any) -> None:
        """Create the groups of `config`'s layout and wait until they are placed."""
        self.layout = config.placement.layout
        self.timeout_s = float(config.placement.timeout_s)
        self.plans = {plan.name: plan for plan in run_pools(config)}
        # pool -> (its placement group, index of its first bundle in that group)
        self.slots: dict[str, tuple[Any, int]] = {}
        self.groups: list[Any] = []
        if self.layout == "none":
            return
        from ray.util.placement_group import placement_group

        plans = list(self.plans.values())
        if self.layout in LAYOUT_STRATEGY:
            bundles, selectors, start = [], [], 0
            for plan in plans:
                bundles += [dict(plan.bundle) for _ in range(plan.count)]
                selectors += [dict(plan.label_selector) for _ in range(plan.count)]
            group = placement_group(
                bundles,
                strategy=LAYOUT_STRATEGY[self.layout],
                name=f"vopd-{self.layout}",
                **({"bundle_label_selector": selectors} if any(selectors) else {}),
            )
            self.groups.append(group)
            for plan in plans:
                self.slots[plan.name] = (group, start)
                start += plan.count
        else:
            # One group after the other, each placed before the next is created: the learner
            # ranks first (e.g. STRICT_PACK on a whole node), then the pools that fit around.
            deadline = time.monotonic() + self.timeout_s
            for plan in plans:
                group = placement_group(
                    [dict(plan.bundle) for _ in range(plan.count)],
                    strategy=plan.strategy,
                    name=f"vopd-{plan.name}",
                    **(
                        {"bundle_label_selector": [dict(plan.label_selector)] * plan.count}
                        if plan.label_selector
                        else {}
                    ),
                )
                self.groups.append(group)
                self.slots[plan.name] = (group, 0)
                try:
                    self._wait([group], deadline, self.timeout_s)
                except BaseException:
                    self.remove()
                    raise
        try:
            self.wait_ready()
        except BaseException:
            self.remove()
            raise

    def options(self, pool: str) -> list[dict[str, Any]] | None:
        """Ray actor options of each actor of `pool` (actor i -> its bundle), or None when the
        layout places nothing."""
        if pool not in self.slots:
            return None
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group, start = self.slots[pool]
        return [
            {
                "scheduling_strategy": PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=start + index
                )
            }
            for index in range(self.plans[pool].count)
        ]

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until every group is placed (created, or re-placed after a node died); past the
        timeout (default `placement.timeout_s`) raise `PlacementError` naming the bundles that
        found no node, the dead nodes that held bundles, and what the live nodes offer."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        self._wait(self.groups, time.monotonic() + limit, limit)

    def _wait(self, groups: list[Any], deadline: float, limit: float) -> None:
        """Wait until each of `groups` is placed, or raise `PlacementError` at `deadline` (the
        message quotes `limit`, the seconds allowed)."""
        from ray.util.placement_group import placement_group_table

        for group in groups:
            while True:
                table = placement_group_table(group)
                if table.get("state") == "CREATED":
                    break
                if time.monotonic() >= deadline:
                    raise PlacementError(self._unplaced_message(group, table, limit))
                time.sleep(0.2)

    def _unplaced_message(self, group: Any, table: dict[str, Any], limit: float) -> str:
        """Why a group is not placed: the actors whose bundles have no live node, the dead
        nodes, and what every live node offers."""
        import ray

        nodes = ray.nodes()
        alive = {n["NodeID"] for n in nodes if n["Alive"]}
        placed = table.get("bundles_to_node_id", {})
        specs = group.bundle_specs
        missing = [i for i in range(len(specs)) if _node_or_empty(placed.get(i, "")) not in alive]
        actors, bundles = [], []
        for name, (pool_group, start) in self.slots.items():
            if pool_group.id != group.id:
                continue
            for index in range(self.plans[name].count):
                if start + index in missing:
                    actors.append(f"{ACTOR_NAMES[name]} {index}")
                    bundles.append(f"{specs[start + index]}")
        dead = [
            f"{n['NodeID']} ({n.get('NodeManagerAddress', '?')})" for n in nodes if not n["Alive"]
        ]
        offered = "; ".join(
            f"node {n['NodeID'][:12]} ({n.get('NodeManagerAddress', '?')}): "
            f"{_resources_text(n.get('Resources', {}))}"
            + (f", labels {_labels(n)}" if _labels(n) else "")
            for n in nodes
            if n["Alive"]
        )
        return (
            f"placement group {table.get('name') or group.id.hex()} "
            f"({table.get('strategy', '?')}, state {table.get('state', '?')}) not placed within "
            f"{limit:.0f} s (placement.timeout_s): no node for {', '.join(actors) or 'its bundles'}"
            f" (bundles {' / '.join(sorted(set(bundles)))})"
            + (f"; dead nodes: {', '.join(dead)}" if dead else "")
            + f"; live nodes: {offered or 'none'}"
        )

    def bundle_nodes(self) -> dict[str, list[str]]:
        """Each pool's bundles' node ids, in actor order ('' while a bundle has no node)."""
        from ray.util.placement_group import placement_group_table

        out: dict[str, list[str]] = {}
        tables = {group.id: placement_group_table(group) for group in self.groups}
        for name, (group, start) in self.slots.items():
            nodes = tables[group.id].get("bundles_to_node_id", {})
            out[name] = [
                _node_or_empty(nodes.get(start + i, "")) for i in range(self.plans[name].count)
            ]
        return out

    def remove(self) -> None:
        """Remove every group (their bundles' resources return to the cluster)."""
        from ray.util.placement_group import remove_placement_group

        for group in self.groups:
            with contextlib.suppress(Exception):
                remove_placement_group(group)
        self.groups, self.slots = [], {}


def actor_node(actor: Any) -> str:
    """The id of the node an actor runs (or last ran) on, from Ray's actor table ('' when
    unknown: not scheduled yet, or the table is unreachable)."""
    import ray

    try:
        info = ray._private.state.actors(actor_id=actor._actor_id.hex())
    except Exception:
        return ""
    return _node_or_empty(info.get("Address", {}).get("NodeID", "")) if info else ""


def node_table() -> dict[str, dict[str, Any]]:
    """Every node Ray knows: id -> alive, address, resources, labels."""
    import ray

    return {
        n["NodeID"]: {
            "alive": bool(n["Alive"]),
            "ip": n.get("NodeManagerAddress", ""),
            "resources": {
                k: v for k, v in n.get("Resources", {}).items() if not k.startswith("node:")
            },
            "labels": _labels(n),
        }
        for n in ray.nodes()
    }


def lost_nodes(slot_nodes: dict[str, list[str]], nodes: dict[str, dict[str, Any]]) -> str:
    """'' when every node in `slot_nodes` (pool -> node id per actor) is alive; else a sentence
    naming each dead node and the actors it ran."""
    dead: dict[str, list[str]] = {}
    for pool, per_actor in slot_nodes.items():
        for index, node in enumerate(per_actor):
            if node and node in nodes and not nodes[node]["alive"]:
                dead.setdefault(node, []).append(f"{ACTOR_NAMES.get(pool, pool)} {index}")
    return "; ".join(
        f"Ray node {node} ({nodes[node]['ip']}) died; it ran {', '.join(actors)}"
        for node, actors in dead.items()
    )


def _node_or_empty(node_id: str) -> str:
    """A node id, or '' for Ray's nil id (all zeros / f's)."""
    return "" if not node_id or set(node_id) <= {"0"} or set(node_id) <= {"f"} else node_id


def _labels(node: dict[str, Any]) -> dict[str, str]:
    """A node's own labels (Ray's ray.io/* labels left out)."""
    return {k: v for k, v in (node.get("Labels") or {}).items() if not k.startswith("ray.io/")}


def _resources_text(resources: dict[str, float]) -> str:
    shown = {k: v for k, v in resources.items() if not k.startswith("node:") and "memory" not in k}
    return ", ".join(f"{k} {v:g}" for k, v in sorted(shown.items())) or "nothing"
