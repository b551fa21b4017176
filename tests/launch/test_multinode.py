"""Placement on a simulated multi-node Ray cluster (one machine, one raylet per node, each with
its own custom resources and labels; tests/launch/multinode_sim.py, run once per module in its
own process so that its cluster never meets the session's local Ray):

- every layout puts the pools where it says (probe actors with the pools' own options), and a
  tiny OPD run places its learner ranks, rollout worker and teacher worker where its per_pool
  layout says, forms the learner process group at rank 0's node and trains with
  checksum-verified weight sync;
- the run survives losing a node (its raylet removed mid-run, a spare node having joined): the
  rollout worker restarts and the learner group recovers from the last checkpoint on the bundles
  Ray re-placed on the spare, with the rendezvous at the new rank 0's node; losing the spare too,
  with no node left for the learner ranks, stops the run with a `NodeLostError` naming that node
  and its actors, the ledger and checkpoints intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SIM = Path(__file__).with_name("multinode_sim.py")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def sim(tiny_models_dir: Path, loop_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The simulation's report (the cluster, the layouts and the run: about 2 minutes)."""
    work = tmp_path_factory.mktemp("multinode")
    report = work / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_TMPDIR")}
    args = ["--models", tiny_models_dir, "--data", loop_data, "--work", work, "--report", report]
    done = subprocess.run(
        [sys.executable, str(SIM), *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    log = done.stdout[-6000:] + done.stderr[-6000:]
    assert done.returncode == 0 and report.is_file(), log
    data = json.loads(report.read_text())
    for phase in ("layouts", "run"):
        assert "traceback" not in data[phase], data[phase].get("traceback", "") + log
    return data


def _names(sim: dict[str, Any], rows: list[dict[str, Any]], key: str = "node_id") -> list[str]:
    """The node names ("node_a", ...) of a pool's actors in a placement report."""
    return [sim["names"].get(row[key], row[key]) for row in rows]


def _check_report(sim: dict[str, Any], report: dict[str, Any]) -> dict[str, list[str]]:
    """Every actor runs on its bundle's node, the learners' rendezvous is rank 0's node; the
    node names of each pool's actors."""
    pools = {pool: _names(sim, rows) for pool, rows in report["pools"].items()}
    for pool, rows in report["pools"].items():
        assert pools[pool] == _names(sim, rows, "bundle_node_id"), pool
    rendezvous, rank0 = report["rendezvous"], report["pools"]["learner"][0]
    assert rendezvous["node_id"] == rank0["node_id"]
    assert rendezvous["master_addr"] == rank0["node_ip"] and rendezvous["master_port"] > 0
    return pools


@pytest.mark.timeout(900)
def test_pools_land_where_the_layout_says_and_train(sim: dict[str, Any]) -> None:
    layouts = sim["layouts"]
    for case in ("packed", "spread", "packed_resources", "per_pool_labels"):
        # The probes' own view of their node, Ray's actor table and the bundles agree.
        assert layouts[case]["pools"] == layouts[case]["actor_table"] == layouts[case]["bundles"]

    def every(case: str) -> set[str]:
        return {node for nodes in layouts[case]["pools"].values() for node in nodes}

    assert len(every("packed")) == 1  # PACK: every actor on one node (they fit on one)
    assert every("spread") == {"node_a", "node_b"}  # SPREAD: over both worker nodes
    pools = layouts["packed_resources"]["pools"]  # custom resources act inside the shared group
    assert pools["learner"] == ["node_a", "node_a"] and pools["rollout"] == ["node_b"]
    pools = layouts["per_pool_labels"]["pools"]  # node labels, and a per-pool strategy
    assert pools["learner"] == ["node_a", "node_a"] and pools["rollout"] == ["node_b"]
    assert sorted(pools["teacher"]) == ["node_a", "node_b"]  # STRICT_SPREAD
    error = layouts["unplaceable"]["error"]  # nothing offers the resource: named, not a hang
    assert "not placed within 3 s (placement.timeout_s)" in error
    assert "learner rank 0, learner rank 1" in error and "'node_z': 1.0" in error

    run = sim["run"]
    before = _check_report(sim, run["before_loss"])
    assert run["before_loss"]["layout"] == "per_pool"
    assert sorted(before["learner"]) == ["node_a", "node_b"]  # STRICT_SPREAD over `trainer`
    assert before["rollout"] == ["node_b"] and before["teacher"] == ["node_a"]
    assert run["ledger_before_loss"] == [1, 2]
    for record in run["records"][:2]:
        assert record["sync_checksum"]  # the driver compared every engine's checksum
        assert record["tokens_trained"] > 0 and not record["skipped_update"]


@pytest.mark.timeout(900)
def test_a_lost_node_is_recovered_then_one_without_spare_is_named(sim: dict[str, Any]) -> None:
    run = sim["run"]
    node_c = next(node for node, name in sim["names"].items() if name == "node_c")
    # node_b died before step 3: its rollout worker and learner rank came back on node_c.
    (recovery,) = [e for e in run["events"] if e["event"] == "recovery"]
    assert recovery["failed_step"] == 3 and recovery["resumed_after"] == 2
    assert recovery["error"].startswith("learner group: ")  # a rank died, or its peer failed
    assert run["rollout_restarts"] == 1 and run["teacher_restarts"] == 0
    after = _check_report(sim, run["after_recovery"])
    assert sorted(after["learner"]) == ["node_a", "node_c"]
    assert after["rollout"] == ["node_c"] and after["teacher"] == ["node_a"]
    for key in ("pools", "rendezvous"):  # placement.json, rewritten after the recovery
        assert run["placement_json"][key] == run["after_recovery"][key]
    # Nothing lost, nothing trained twice: steps 1-4, each with its own draws, all verified.
    records = run["records"]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert [r["sample_ids"] for r in records] == run["expected_sample_ids"][:4]
    assert all(r["sync_checksum"] for r in records)
    kept = ["step_00000002", "step_00000004"]
    assert run["checkpoints_before_loss"] == run["checkpoints"] == kept
    state = json.loads((Path(run["out_dir"]) / "checkpoints/step_00000004/state.json").read_text())
    assert state["step"] == 4
    # node_c died before step 5's learner phase with no spare left: a clear error, naming it.
    error = run["error"]
    assert run["error_cause"] == "PlacementError"
    assert error.startswith(f"Ray node {node_c} (")
    assert "rollout worker 0" in error and "learner rank" in error
    assert "placement group vopd-learner (STRICT_SPREAD" in error and "--resume" in error
