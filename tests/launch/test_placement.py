"""The `placement` config section (launch/placement.py): every key reaches the plan it sets or is
refused with a ConfigError naming it; the default places nothing; the driver names a dead node.
No Ray cluster here: tests/launch/test_multinode.py runs the layouts on a simulated one."""

from __future__ import annotations

import re
from typing import Any

import pytest

from launch.config import ConfigError, load_config
from launch.placement import NodeLostError, Placement, lost_nodes, run_pools

CPUS = ["resources.learner_cpus=1", "resources.rollout_cpus=1", "resources.teacher_cpus=1"]


def _plans(*overrides: str, preset: str = "opd") -> dict[str, Any]:
    return {plan.name: plan for plan in run_pools(load_config(preset, list(overrides)))}


def test_default_places_nothing() -> None:
    config = load_config("opd")
    assert config.placement.layout == "none"
    placement = Placement(config)  # no placement group, no Ray call
    assert placement.groups == [] and placement.slots == {}
    assert all(placement.options(pool) is None for pool in ("learner", "rollout", "teacher"))


def test_every_key_reaches_the_plan() -> None:
    plans = _plans(
        "placement.layout=per_pool",
        "learner.num_ranks=4",
        "resources.learner_gpus=1",
        "resources.learner_cpus=2",
        "placement.learner.resources={trainer: 0.5}",
        "placement.learner.node_labels={vopd-pool: learner}",
        "placement.learner.strategy=strict_spread",
        "rollout.num_workers=3",
        "placement.rollout.resources={rollout_node: 1}",
        "teacher.num_workers=2",
        "placement.teacher.node_labels={vopd-pool: 'in(teacher,spare)'}",
        "resources.teacher_cpus=1",
    )
    assert list(plans) == ["learner", "rollout", "teacher"]  # opd: no reference pool
    learner = plans["learner"]
    assert learner.count == 4 and learner.strategy == "STRICT_SPREAD"
    assert learner.bundle == {"CPU": 2.0, "GPU": 1.0, "trainer": 0.5}
    assert learner.label_selector == {"vopd-pool": "learner"}
    assert plans["rollout"].count == 3 and plans["rollout"].bundle == {"rollout_node": 1.0}
    assert plans["rollout"].strategy == "PACK"  # the default
    assert plans["teacher"].label_selector == {"vopd-pool": "in(teacher,spare)"}
    assert plans["teacher"].bundle == {"CPU": 1.0} and plans["teacher"].count == 2


def test_reference_and_generation_pools_take_their_resources() -> None:
    # GRPO with a KL penalty: the reference pool, sized and reserved like the teacher's.
    plans = _plans(
        "trainer.objective=grpo",
        "rollout.n=2",
        "trainer.objective_kwargs={kl_coef: 0.1}",
        "placement.layout=packed",
        "placement.reference.resources={ref: 1}",
        *CPUS,
    )
    assert list(plans) == ["learner", "rollout", "reference"]
    assert plans["reference"].bundle == {"CPU": 1.0, "ref": 1.0}
    # Sequence-level KD: the teacher's generation engines reserve the rollout resources.
    plans = _plans("trainer.objective=seqkd", "resources.rollout_gpus=1")
    assert plans["teacher"].bundle == {"GPU": 1.0}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["placement.layout=pack"], "placement.layout must be one of none, packed, spread"),
        (["placement.timeout_s=0", *CPUS], "placement.timeout_s must be > 0"),
        (
            ["placement.rollout.resources={a: 1}"],
            "placement.rollout.resources place actors through placement groups: set "
            "placement.layout",
        ),
        (["placement.learner.strategy=PACK"], "placement.learner.strategy place actors"),
        (["placement.layout=packed"], "the learner pool's actors reserve nothing"),
        (
            ["placement.layout=spread", "placement.learner.strategy=PACK", *CPUS],
            "placement.learner.strategy acts only with placement.layout=per_pool",
        ),
        (
            ["placement.layout=per_pool", "placement.learner.strategy=DIAGONAL", *CPUS],
            "placement.learner.strategy must be one of PACK, SPREAD, STRICT_PACK, STRICT_SPREAD",
        ),
        (
            ["placement.layout=per_pool", "placement.rollout.resources={GPU: 1}", *CPUS],
            "placement.rollout.resources: 'GPU' is not a custom resource",
        ),
        (
            ["placement.layout=per_pool", "placement.rollout.resources={a: 0}", *CPUS],
            "placement.rollout.resources: 'a' must name a resource and reserve an amount > 0",
        ),
        (
            ["placement.layout=per_pool", "placement.learner.node_labels={'bad key!': x}", *CPUS],
            "placement.learner.node_labels",
        ),
        (
            ["placement.layout=per_pool", "placement.reference.resources={a: 1}", *CPUS],
            "placement.reference.resources: this run (objective 'opd') has no KL penalty",
        ),
        (
            [
                "trainer.objective=grpo",
                "rollout.n=2",
                "placement.layout=per_pool",
                "placement.teacher.node_labels={pool: t}",
                *CPUS,
            ],
            "placement.teacher.node_labels: this run (objective 'grpo') has no teacher pool",
        ),
        (["placement.rollout.nodes=2"], "key 'placement.rollout.nodes'"),
    ],
)
def test_keys_that_would_change_nothing_are_refused(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("opd", overrides)


def test_lost_nodes_names_each_dead_node_and_its_actors() -> None:
    nodes = {
        "n1": {"alive": True, "ip": "10.0.0.1"},
        "n2": {"alive": False, "ip": "10.0.0.2"},
    }
    slots = {"learner": ["n1", "n2"], "rollout": ["n2"], "teacher": ["n1", ""]}
    assert lost_nodes(slots, nodes) == (
        "Ray node n2 (10.0.0.2) died; it ran learner rank 1, rollout worker 0"
    )
    assert lost_nodes({"learner": ["n1"]}, nodes) == ""


def test_driver_names_the_dead_node_in_the_error_that_stops_it(tmp_path) -> None:
    from launch.driver import Driver

    driver = object.__new__(Driver)  # the error path of run() only: no actors
    driver.out = tmp_path

    def fail() -> dict[str, Any]:
        raise RuntimeError("rollout worker 0 did not start")

    driver._train = fail
    driver.lost_nodes = lambda: "Ray node n2 (10.0.0.2) died; it ran rollout worker 0"
    with pytest.raises(NodeLostError) as caught:
        driver.run()
    text = str(caught.value)
    assert text.startswith("Ray node n2 (10.0.0.2) died; it ran rollout worker 0. The run stopped")
    assert "RuntimeError: rollout worker 0 did not start" in text and "--resume" in text
    assert isinstance(caught.value.__cause__, RuntimeError)
    driver.lost_nodes = lambda: ""  # no dead node: the error is left as it is
    with pytest.raises(RuntimeError, match=r"^rollout worker 0 did not start$"):
        driver.run()


def test_pools_refuse_a_placement_of_the_wrong_size() -> None:
    from rollout.engine_config import EngineConfig
    from rollout.group import GroupConfig, RolloutGroup

    with pytest.raises(ValueError, match="placement has 1 entries for 2 workers"):
        RolloutGroup(EngineConfig(model="m"), GroupConfig(num_workers=2), placement=[{}])


def test_the_two_node_example_of_the_cluster_docs_plans_one_node_of_learners() -> None:
    plans = _plans(
        "rollout.num_workers=2",
        "teacher.num_workers=6",
        "learner.num_ranks=8",
        "placement.layout=per_pool",
        "placement.learner.strategy=STRICT_PACK",
        preset="video_opd_8b",
    )
    learner = plans["learner"]  # placed first: its 8 GPUs fill one node
    assert next(iter(plans)) == "learner" and learner.strategy == "STRICT_PACK"
    assert learner.count == 8 and learner.bundle["GPU"] == 1.0
    gpus = sum(plan.count * plan.bundle.get("GPU", 0.0) for plan in plans.values())
    assert gpus == 16
