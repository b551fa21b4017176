"""A simulated multi-node Ray cluster on one machine, for tests/launch/test_multinode.py.

`ray.cluster_utils.Cluster` starts one raylet per "node", each with its own custom resources
and labels (node_a: {node_a, trainer}, label vopd-node=a; node_b: {node_b, trainer},
vopd-node=b), then:

1. layouts: for each placement layout, `launch.placement.Placement` places probe actors with the
   options the pools use; each probe reports its node (and Ray's actor table is read too);
2. run: a tiny OPD run (`Driver`, transformers engines, 2 learner ranks, 1 rollout worker,
   1 teacher worker; layout per_pool: learner ranks STRICT_SPREAD over the `trainer` nodes,
   rollout on node_b, teacher on node_a) trains with checksum-verified weight sync. Just before
   step 3's rollout a spare node_c (a twin of node_b) joins and node_b's raylet is removed
   (`Cluster.remove_node`): the rollout worker and one learner rank die with it, and the run
   must recover (worker restart, learner-group recovery from the step-2 checkpoint, both on the
   bundles Ray re-placed on node_c). Just before step 5's learner phase node_c is removed too,
   with no spare left: the learner bundles cannot be re-placed, and the run must stop with a
   `NodeLostError` naming node_c, its ledger (steps 1-4) and checkpoints (2, 4) intact.

Everything is written to a JSON report (--report) that the tests read; a phase that fails
records its traceback there instead of stopping the others. It runs in its own process with its
own RAY_TMPDIR: `Cluster` records its address in Ray's temp dir, where a plain `ray.init()`
elsewhere on the machine (another test session) would otherwise find and join it.

    python tests/launch/multinode_sim.py --models DIR --data DIR --work DIR --report FILE
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STEPS = 5
REPLACE_STEP = 3  # node_c joins and node_b dies just before this step's rollout phase
LOSE_STEP = 5  # node_c dies just before this step's learner phase, with no spare left
NODE_MEMORY = {"object_store_memory": 150 * 1024 * 1024}


def run_overrides(models: Path, data: Path, out: Path) -> list[str]:
    """The tiny OPD run on the simulated cluster (per_pool layout), as key=value overrides: the
    loop tests' run (`tests/loop_runs.py`) on transformers engines, with its layout."""
    sys.path.insert(0, str(REPO / "tests"))
    from loop_runs import loop_overrides

    extra = {
        "rollout.engine": "hf",
        "teacher.backend": "hf",
        "eval.max_samples": "2",
        # Limits well above a step's time, well below the defaults: a hang fails in minutes.
        "learner.timeout_s": "180",
        "rollout.timeout_s": "180",
        "teacher.timeout_s": "180",
        "placement.layout": "per_pool",
        "placement.timeout_s": "10",
        "placement.learner.resources": "{trainer: 0.5}",
        "placement.learner.strategy": "STRICT_SPREAD",
        "placement.rollout.resources": "{node_b: 0.5}",
        "placement.teacher.resources": "{node_a: 0.5}",
    }
    return loop_overrides(out, data, models, STEPS, **extra)


# Probe pools for the layout checks: 2 ranks, 1 rollout worker, 2 teacher workers.
PROBE_BASE = [
    "learner.num_ranks=2",
    "rollout.num_workers=1",
    "teacher.num_workers=2",
    "resources.learner_cpus=0.25",
    "resources.rollout_cpus=0.25",
    "resources.teacher_cpus=0.25",
]
LAYOUT_CASES: dict[str, list[str]] = {
    "packed": ["placement.layout=packed"],
    "spread": ["placement.layout=spread"],
    "packed_resources": [
        "placement.layout=packed",
        "placement.learner.resources={node_a: 0.1}",
        "placement.rollout.resources={node_b: 0.1}",
    ],
    "per_pool_labels": [
        "placement.layout=per_pool",
        "placement.learner.node_labels={vopd-node: a}",
        "placement.rollout.node_labels={vopd-node: b}",
        "placement.teacher.strategy=STRICT_SPREAD",
    ],
    "unplaceable": [
        "placement.layout=per_pool",
        "placement.timeout_s=3",
        "placement.learner.resources={node_z: 1}",
    ],
}


def probe_layouts(names: dict[str, str]) -> dict[str, Any]:
    """Place probe actors with every layout case; each pool's actors' nodes (by node name)."""
    import ray

    from launch.config import load_config
    from launch.placement import Placement, PlacementError, actor_node

    @ray.remote(num_cpus=0)
    class Probe:
        """Stands in for a pool's actor: reports the node it runs on."""

        def node(self) -> str:
            return ray.get_runtime_context().get_node_id()

    results: dict[str, Any] = {}
    for case, overrides in LAYOUT_CASES.items():
        config = load_config("opd", PROBE_BASE + overrides)
        try:
            placement = Placement(config)
        except PlacementError as exc:
            results[case] = {"error": str(exc)}
            continue
        try:
            pools: dict[str, list[str]] = {}
            table: dict[str, list[str]] = {}
            for pool in placement.plans:
                probes = [
                    Probe.options(num_cpus=0.25, **options).remote()
                    for options in placement.options(pool) or []
                ]
                pools[pool] = [names.get(n, n) for n in ray.get([p.node.remote() for p in probes])]
                table[pool] = [names.get(actor_node(p), "?") for p in probes]
                for probe in probes:
                    ray.kill(probe)
            bundles = {
                pool: [names.get(n, n) for n in nodes]
                for pool, nodes in placement.bundle_nodes().items()
            }
            results[case] = {"pools": pools, "actor_table": table, "bundles": bundles}
        finally:
            placement.remove()
    return results


def train_with_node_loss(cluster: Any, nodes: dict[str, Any], names: dict[str, str], args: Any):
    """The tiny run: node_b replaced by node_c before step 3, node_c lost before step 5's
    learner phase (module docstring)."""
    from launch.config import load_config
    from launch.driver import Driver
    from launch.ledger import read_ledger
    from launch.placement import NodeLostError

    out = Path(args.work) / "run"
    config = load_config("opd", run_overrides(Path(args.models), Path(args.data), out))
    result: dict[str, Any] = {"out_dir": str(out)}
    t0 = time.monotonic()
    driver = Driver(config)
    result["start_s"] = time.monotonic() - t0
    try:
        sampler = copy.deepcopy(driver.sampler)  # the draws of an uninterrupted run
        result["expected_sample_ids"] = [
            [driver.train_prompts[i].sample_id for i in sampler.next_indices(3)]
            for _ in range(STEPS)
        ]
        fire = driver.faults.before

        def before(phase: str, step: int, drv: Any) -> None:
            if phase == "rollout" and step == REPLACE_STEP and "before_loss" not in result:
                result["before_loss"] = drv.placement_report()
                ledger = read_ledger(out / "metrics.jsonl")
                result["ledger_before_loss"] = [r["step"] for r in ledger]
                nodes["node_c"] = cluster.add_node(
                    num_cpus=2,
                    resources={"node_b": 1, "trainer": 1},
                    labels={"vopd-node": "c"},
                    **NODE_MEMORY,
                )
                names[nodes["node_c"].node_id] = "node_c"
                cluster.remove_node(nodes["node_b"])
                print(f"[sim] node_c joined, node_b removed before step {step}", flush=True)
            if phase == "learner" and step == LOSE_STEP and "after_recovery" not in result:
                result["after_recovery"] = drv.placement_report()
                result["checkpoints_before_loss"] = sorted(
                    p.name for p in (out / "checkpoints").glob("step_*")
                )
                cluster.remove_node(nodes["node_c"])
                print(f"[sim] node_c removed before step {step}'s learner phase", flush=True)
            fire(phase, step, drv)

        driver.faults.before = before
        try:
            driver.run()
        except NodeLostError as exc:
            result["error"] = str(exc)
            result["error_cause"] = type(exc.__cause__).__name__
        result["train_s"] = time.monotonic() - t0 - result["start_s"]
        result["rollout_restarts"] = driver.rollout.restarts
        result["teacher_restarts"] = driver.teacher.total_restarts
        result["recoveries"] = driver.recoveries
        result["events"] = driver.faults.events()
    finally:
        driver.shutdown()
    result["records"] = read_ledger(out / "metrics.jsonl")
    result["checkpoints"] = sorted(p.name for p in (out / "checkpoints").glob("step_*"))
    result["placement_json"] = json.loads((out / "placement.json").read_text())
    return result


def main() -> int:
    """Start the cluster, run the phases, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--models", "--data", "--work", "--report"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    # Ray's temp dir (and the cluster address file in it) private to this process, before import.
    ray_tmpdir = tempfile.mkdtemp(prefix="vopd-rc-", dir="/tmp")  # short: Ray's socket paths
    os.environ["RAY_TMPDIR"] = ray_tmpdir
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sys.path.insert(0, str(REPO))
    import ray
    from ray.cluster_utils import Cluster

    from runtime.vllm_env import apply_vllm_cpu_defaults

    apply_vllm_cpu_defaults()
    report: dict[str, Any] = {"phases": {}}
    t0 = time.monotonic()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, **NODE_MEMORY},
    )
    nodes = {"head": cluster.head_node}
    for name, extra in (("node_a", {"node_a": 1}), ("node_b", {"node_b": 1})):
        nodes[name] = cluster.add_node(
            num_cpus=2,
            resources={**extra, "trainer": 1},
            labels={"vopd-node": name[-1]},
            **NODE_MEMORY,
        )
    names = {node.node_id: name for name, node in nodes.items()}
    report["cluster_start_s"] = time.monotonic() - t0
    ray.init(address=cluster.address, configure_logging=False)
    try:
        for phase, work in (
            ("layouts", lambda: probe_layouts(names)),
            ("run", lambda: train_with_node_loss(cluster, nodes, names, args)),
        ):
            start = time.monotonic()
            try:
                report[phase] = work()
            except Exception:
                report[phase] = {"traceback": traceback.format_exc()}
                print(report[phase]["traceback"], flush=True)
            report["phases"][phase] = time.monotonic() - start
        report["names"] = names
    finally:
        report["ray_tmpdir"] = ray_tmpdir  # the nodes' logs, kept when a phase failed
        Path(args.report).write_text(json.dumps(report, indent=2, default=str))
        ray.shutdown()
        cluster.shutdown()
    if all("traceback" not in report.get(phase, {}) for phase in ("layouts", "run")):
        shutil.rmtree(ray_tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
