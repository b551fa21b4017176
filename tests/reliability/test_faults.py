"""Fault injection (`fault.kill=KIND@STEP`, `vopd train --inject-fault`): a teacher worker, a
rollout worker, a learner rank or the driver killed at a chosen step of a tiny OPD run. Each run
finishes (the pool / group restarts the actor and resends its work; the driver restarts the
learner group from the last checkpoint; a killed driver is resumed with --resume) and its final
ledger equals an uninterrupted run's: the same sample ids per step (none lost or trained twice),
bitwise-identical weights (sync checksums), the same losses and validation metrics.

The runs sample and score with the transformers reference engines (the same worker / pool code,
restarts and weight replay, at a fraction of vLLM's start-up cost, which keeps the file short);
VOPD_FAULT_TEST_ENGINE=vllm runs them on vLLM (tests/rollout/test_group.py and
tests/teacher_server/test_pool.py kill vLLM workers too). The unit tests at the top (config, CLI
flag, injector, learner-group timeouts) need no models.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from loop_runs import loop_overrides

from launch.config import ConfigError, RunConfig, load_config
from launch.faults import DRIVER_FAULT_EXIT_CODE, FaultInjector, FaultSpec, parse_fault
from launch.ledger import read_ledger

REPO = Path(__file__).resolve().parents[2]
STEPS = 4  # checkpoints (and evaluations) after steps 2 and 4
ENGINE = os.environ.get("VOPD_FAULT_TEST_ENGINE", "hf")  # rollout engine and teacher backend


# ---------------------------------------------------------------------------- unit tests
@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("teacher@3", FaultSpec("teacher", 3)),
        (" Rollout @ 1 ", FaultSpec("rollout", 1)),
        ("learner@12", FaultSpec("learner", 12)),
        ("driver@2", FaultSpec("driver", 2)),
    ],
)
def test_parse_fault(text: str, spec: FaultSpec) -> None:
    assert parse_fault(text) == spec
    assert str(spec) == f"{spec.kind}@{spec.step}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("teacher", "KIND@STEP"),
        ("gpu@3", "KIND@STEP"),
        ("teacher@", "integer"),
        ("learner@x", "integer"),
        ("learner@0", ">= 1"),
        ("learner@-2", ">= 1"),
    ],
)
def test_bad_fault_specs_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(text)
    with pytest.raises(ConfigError, match=f"fault.kill: .*{message}"):
        load_config("opd", [f"fault.kill={text}"])


def test_fault_must_fit_the_run_and_the_objective() -> None:
    assert load_config("opd", ["fault.kill=teacher@3", "trainer.steps=3"]).fault.kill == (
        "teacher@3"
    )
    with pytest.raises(ConfigError, match="after the run's last step"):
        load_config("opd", ["fault.kill=driver@4", "trainer.steps=3"])
    with pytest.raises(ConfigError, match="has no teacher phase"):
        load_config("grpo", ["fault.kill=teacher@1"])
    with pytest.raises(ConfigError, match="samples nothing"):
        load_config("sft", ["fault.kill=rollout@1"])
    with pytest.raises(ConfigError, match=r"learner\.timeout_s must be > 0"):
        load_config("opd", ["learner.timeout_s=0"])
    with pytest.raises(ConfigError, match=r"trainer\.max_recoveries must be >= 0"):
        load_config("opd", ["trainer.max_recoveries=-1"])


def test_cli_flag_maps_to_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    from launch.cli import main

    assert main(["train", "opd", "--inject-fault", "learner@2", "--print-config"]) == 0
    assert "kill: learner@2" in capsys.readouterr().out
    assert main(["train", "opd", "--inject-fault", "disk@2", "--print-config"]) == 2
    assert "fault.kill: expected KIND@STEP" in capsys.readouterr().out


def test_injector_fires_once_per_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import launch.faults as faults

    killed: list[Any] = []
    monkeypatch.setattr(faults, "kill_actor", killed.append)

    class Group:
        workers = ("worker0", "worker1")
        ranks = ("rank0", "rank1")

    class FakeDriver:
        teacher = rollout = learners = Group()

    driver = FakeDriver()
    injector = FaultInjector(parse_fault("learner@2"), tmp_path)
    for step in (1, 2, 3):
        for phase in ("rollout", "teacher", "learner", "sync"):
            injector.before(phase, step, driver)
    assert killed == ["rank1"]  # the last rank, once, before the learner phase of step 2
    (event,) = injector.events()
    assert event["event"] == "fault" and event["fault"] == "learner@2"
    assert event["target"] == "learner rank 1"
    # A resumed run (same directory) does not fire it again; a fresh run does.
    FaultInjector(parse_fault("learner@2"), tmp_path, resume=True).before("learner", 2, driver)
    assert killed == ["rank1"]
    FaultInjector(parse_fault("learner@2"), tmp_path, resume=False).before("learner", 2, driver)
    assert killed == ["rank1", "rank1"]
    # No fault configured: nothing happens at any phase.
    FaultInjector.from_text(None, tmp_path, resume=True).before("learner", 2, driver)
    assert len(killed) == 2


def test_recoveries_are_bounded(tmp_path: Path) -> None:
    from launch.driver import Driver

    driver = object.__new__(Driver)  # no actors: the limit is checked before anything restarts
    driver.config = load_config("opd", ["trainer.max_recoveries=0"])
    driver.recoveries, driver.step = 0, 2
    with pytest.raises(RuntimeError, match=r"step 3 and trainer.max_recoveries=0 .*rank 1 died"):
        driver.recover(RuntimeError("learner group: train step failed on rank 1 died"))


def _fake_group(ray: Any, timeout_s: float) -> Any:
    from trainer.learner_group import LearnerGroup

    class FakeRank:  # local: shipped to the workers by value
        """Stands in for a learner rank: answers after `seconds`, or dies."""

        def call(self, seconds: float) -> float:
            time.sleep(seconds)
            return seconds

        def die(self) -> None:
            os._exit(1)

    group = object.__new__(LearnerGroup)  # the call / timeout logic without DeepSpeed ranks
    group.timeout_s = timeout_s
    actor = ray.remote(num_cpus=0)(FakeRank)
    group.ranks = [actor.remote(), actor.remote()]
    return group


def test_learner_group_call_times_out_naming_the_rank(ray_session) -> None:
    from trainer.learner_group import LearnerTimeoutError

    group = _fake_group(ray_session, timeout_s=2.0)
    try:
        assert group._get([r.call.remote(0.0) for r in group.ranks], "train step") == [0.0, 0.0]
        refs = [group.ranks[0].call.remote(0.0), group.ranks[1].call.remote(60.0)]
        start = time.monotonic()
        with pytest.raises(LearnerTimeoutError) as caught:
            group._get(refs, "train step")
        assert time.monotonic() - start < 20
        assert isinstance(caught.value, TimeoutError)
        assert re.fullmatch(
            r"learner group: train step did not finish within 2 s \(learner\.timeout_s\) "
            r"on rank 1 \(actor [0-9a-f]+\)",
            str(caught.value),
        )
    finally:
        group.shutdown()


def test_dead_learner_rank_is_reported_at_once(ray_session) -> None:
    from trainer.learner_group import LearnerError

    group = _fake_group(ray_session, timeout_s=120.0)
    try:
        # Rank 0 would block for a minute (like a rank stuck in a collective with the dead one).
        refs = [group.ranks[0].call.remote(60.0), group.ranks[1].die.remote()]
        start = time.monotonic()
        with pytest.raises(LearnerError, match=r"train step failed on rank 1 \(actor [0-9a-f]+"):
            group._get(refs, "train step")
        assert time.monotonic() - start < 30  # not the timeout, not rank 0's minute
    finally:
        group.shutdown()


def test_a_taken_rendezvous_port_is_recognised(ray_session) -> None:
    """A rank whose process group cannot bind its port fails start-up with EADDRINUSE; the
    group then starts again on another port (`LearnerGroup.__init__`)."""
    from trainer.learner_group import LearnerError, LearnerGroup, port_in_use

    class PortTaken:
        def __init__(self) -> None:
            raise OSError("The server socket has failed to listen: EADDRINUSE, address in use")

        def ready(self) -> int:
            return 0

    group = object.__new__(LearnerGroup)
    group.timeout_s = 60.0
    group.ranks = [ray_session.remote(num_cpus=0)(PortTaken).remote()]
    try:
        with pytest.raises(LearnerError, match="start-up failed on rank 0") as caught:
            group._get([group.ranks[0].ready.remote()], "start-up")
        assert port_in_use(caught.value)
        assert not port_in_use(LearnerError("start-up failed on rank 0: out of memory"))
    finally:
        group.shutdown()


# ---------------------------------------------------------------------------- end to end
def _overrides(out: Path, data: Path, models: Path, **extra: str) -> list[str]:
    """The loop tests' tiny OPD run (tests/loop_runs.py) on the ENGINE engines."""
    engines = {"rollout.engine": ENGINE, "teacher.backend": ENGINE}
    return loop_overrides(out, data, models, STEPS, **{**engines, **extra})


def _run(config: RunConfig) -> dict[str, Any]:
    """Run in process; the ledger, the fault/recovery events and the restart counters."""
    from launch.driver import Driver

    driver = Driver(config)
    try:
        driver.run()
        counters = {
            "rollout_restarts": driver.rollout.restarts,
            "teacher_restarts": driver.teacher.total_restarts,
            "recoveries": driver.recoveries,
        }
        events = driver.faults.events()
    finally:
        driver.shutdown()
    return {
        "records": read_ledger(Path(config.out_dir) / "metrics.jsonl"),
        "events": events,
        **counters,
    }


@pytest.fixture(scope="module")
def baseline(loop_data: Path, tiny_models_dir: Path, ray_session, tmp_path_factory) -> list[dict]:
    """The uninterrupted run every fault run is compared with (shared by the module)."""
    out = tmp_path_factory.mktemp("faults") / "baseline"
    run = _run(load_config("opd", _overrides(out, loop_data, tiny_models_dir)))
    assert run["rollout_restarts"] == run["teacher_restarts"] == run["recoveries"] == 0
    return run["records"]


# Ledger fields that depend only on the data, the seed and the weights (not on wall-clock, host
# load or paths): a faulted run must reproduce them exactly.
DETERMINISTIC_FIELDS = (
    "sample_ids",
    "samples_seen",
    "weights_version",
    "sync_checksum",
    "completions",
    "tokens_prompt",
    "tokens_generated",
    "tokens_teacher_scored",
    "tokens_trained",
    "reward_mean",
    "iou_mean",
    "teacher_rkl_sampled",
    "logprob_mismatch_max",
    "entropy",
    "loss",
    "grad_norm",
    "skipped_update",
    "lr",
    "val",
)


def _assert_same_run(records: list[dict], baseline: list[dict]) -> None:
    """The final ledger equals the uninterrupted run's: steps, samples, weights, metrics."""
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    ids = [i for r in records for i in r["sample_ids"]]
    assert ids == [i for r in baseline for i in r["sample_ids"]]  # none lost, none twice
    assert len(ids) == STEPS * 3
    assert all(r["sync_checksum"] for r in records)  # bitwise-identical weights, below
    assert ("val" in baseline[1]) and ("val" in baseline[3])
    for a, b in zip(baseline, records, strict=True):
        for name in DETERMINISTIC_FIELDS:
            assert a.get(name) == b.get(name), f"step {a['step']}: {name}"


@pytest.mark.e2e
@pytest.mark.slow
def test_killed_teacher_worker_is_restarted_and_its_shard_resent(
    baseline: list[dict], loop_data: Path, tiny_models_dir: Path, tmp_path: Path
) -> None:
    config = load_config(
        "opd",
        _overrides(tmp_path / "run", loop_data, tiny_models_dir, **{"fault.kill": "teacher@3"}),
    )
    run = _run(config)
    assert run["teacher_restarts"] == 1 and run["recoveries"] == 0
    assert [e["fault"] for e in run["events"]] == ["teacher@3"]
    _assert_same_run(run["records"], baseline)


@pytest.mark.e2e
@pytest.mark.slow
def test_killed_rollout_worker_is_restarted_at_the_current_weights(
    baseline: list[dict], loop_data: Path, tiny_models_dir: Path, tmp_path: Path
) -> None:
    # Step 2: the restarted engine must replay weights version 1 before it resamples the shard.
    config = load_config(
        "opd",
        _overrides(tmp_path / "run", loop_data, tiny_models_dir, **{"fault.kill": "rollout@2"}),
    )
    run = _run(config)
    assert run["rollout_restarts"] == 1 and run["recoveries"] == 0
    assert [e["fault"] for e in run["events"]] == ["rollout@2"]
    _assert_same_run(run["records"], baseline)


@pytest.mark.e2e
@pytest.mark.slow
def test_killed_learner_rank_restarts_the_group_from_the_last_checkpoint(
    baseline: list[dict], loop_data: Path, tiny_models_dir: Path, tmp_path: Path
) -> None:
    # Step 4: step 3 is already in the ledger; the run rewinds to the step-2 checkpoint, drops
    # step 3's record and trains steps 3 and 4 again.
    config = load_config(
        "opd",
        _overrides(tmp_path / "run", loop_data, tiny_models_dir, **{"fault.kill": "learner@4"}),
    )
    run = _run(config)
    assert run["recoveries"] == 1
    fault, recovery = run["events"]
    assert fault["fault"] == "learner@4" and fault["target"] == "learner rank 1"
    assert recovery["event"] == "recovery"
    assert recovery["failed_step"] == 4 and recovery["resumed_after"] == 2
    assert "rank 1" in recovery["error"]
    _assert_same_run(run["records"], baseline)


@pytest.mark.e2e
@pytest.mark.slow
def test_killed_driver_exits_then_resumes_from_the_last_checkpoint(
    baseline: list[dict],
    loop_data: Path,
    tiny_models_dir: Path,
    tmp_path: Path,
    ray_session,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from launch.cli import main

    out = tmp_path / "run"
    args = ["train", "opd", *_overrides(out, loop_data, tiny_models_dir)]
    args += ["--inject-fault", "driver@3"]
    # `vopd train` in its own process, joining this session's Ray (as a driver on a cluster).
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    killed = subprocess.run(
        [sys.executable, "-m", "launch.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == DRIVER_FAULT_EXIT_CODE, (
        killed.stdout[-3000:] + killed.stderr[-3000:]
    )
    # Killed after step 3's update, before its record: the ledger ends at step 2.
    assert [r["step"] for r in read_ledger(out / "metrics.jsonl")] == [1, 2]
    # The same command with --resume (here in this process, to spare a second start-up): the
    # fault already fired in this run directory, so it does not fire again.
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "[resume] continuing after step 2" in capsys.readouterr().out
    events = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    assert [e["fault"] for e in events] == ["driver@3"]
    assert events[0]["pid"] != os.getpid()  # fired in the killed process
    _assert_same_run(read_ledger(out / "metrics.jsonl"), baseline)
