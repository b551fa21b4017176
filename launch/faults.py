"""Fault injection: rehearse a failure at a chosen step of a run (`fault.kill=KIND@STEP`, or
`vopd train ... --inject-fault KIND@STEP`).

KIND is what dies, STEP the (1-based) training step at which it dies:

- `teacher`: teacher worker 0 is killed (`ray.kill`, no restart) just before the teacher phase;
  the `TeacherPool` starts a fresh worker and resends its shard.
- `rollout`: rollout worker 0 is killed just before the rollout phase; the `RolloutGroup` starts a
  fresh worker at the current weights version and resends its shard.
- `learner`: the last learner rank is killed just before the learner phase; the driver sees the
  dead rank (`LearnerError`), restarts the learner group and rewinds to the last checkpoint in
  process (`Driver.recover`).
- `driver`: the driver process exits with `DRIVER_FAULT_EXIT_CODE` after step STEP's update,
  before its weight sync and ledger record (the ledger is flushed first); re-running the same
  command with `--resume` continues from the last checkpoint.

A fault fires once per run directory: it is written to `<out>/faults.jsonl` before it fires, and
a resumed run (or a run rewound by a recovery) skips a fault already there. Recoveries are written
to the same file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAULT_KINDS = ("teacher", "rollout", "learner", "driver")
# The phase of `Driver.train_step` that each kind fires before ("sync": after the update).
FAULT_PHASES = {"teacher": "teacher", "rollout": "rollout", "learner": "learner", "driver": "sync"}
# Exit status of a driver killed by `driver@STEP` (sysexits' EX_TEMPFAIL: run it again).
DRIVER_FAULT_EXIT_CODE = 75
EVENTS_FILE = "faults.jsonl"
KILL_WAIT_S = 30.0


@dataclass(frozen=True)
class FaultSpec:
    """One fault: `kind` in FAULT_KINDS dies at training step `step` (1-based)."""

    kind: str
    step: int

    def __str__(self) -> str:
        return f"{self.kind}@{self.step}"


def parse_fault(text: str) -> FaultSpec:
    """Parse `KIND@STEP`; raise ValueError saying what is wrong."""
    kind, sep, step = str(text).strip().partition("@")
    kind = kind.strip().lower()
    if not sep or kind not in FAULT_KINDS:
        raise ValueError(f"expected KIND@STEP with KIND in {'|'.join(FAULT_KINDS)}, got {text!r}")
    try:
        number = int(step.strip())
    except ValueError:
        raise ValueError(f"STEP of {text!r} must be an integer >= 1") from None
    if number < 1:
        raise ValueError(f"STEP of {text!r} must be an integer >= 1")
    return FaultSpec(kind, number)


class FaultInjector:
    """Fires a configured fault at its phase and step (see the module docstring).

    The driver calls `before(phase, step, driver)` at each phase of a step; without a fault (or
    once it has fired) that does nothing.
    """

    def __init__(self, spec: FaultSpec | None, out_dir: str | Path, resume: bool = False) -> None:
        """Arm `spec` for the run in `out_dir`; a resumed run skips a fault that already fired."""
        self.spec = spec
        self.path = Path(out_dir) / EVENTS_FILE
        if not resume and self.path.exists():
            self.path.unlink()  # a fresh run in an old directory: earlier faults do not count
        self.fired = spec is not None and any(
            e.get("event") == "fault" and e.get("fault") == str(spec) for e in self.events()
        )

    @classmethod
    def from_text(cls, text: str | None, out_dir: str | Path, resume: bool) -> FaultInjector:
        """An injector for a `fault.kill` value (None: no fault)."""
        return cls(parse_fault(text) if text else None, out_dir, resume)

    def events(self) -> list[dict[str, Any]]:
        """Faults fired and recoveries made in this run directory, oldest first."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def log_event(self, event: dict[str, Any]) -> None:
        """Append one event (flushed and fsynced: it must survive the fault it announces)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.time(), "pid": os.getpid(), **event}, sort_keys=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def before(self, phase: str, step: int, driver: Any) -> None:
        """Fire the fault if it is due at `phase` of training step `step` (1-based)."""
        spec = self.spec
        if spec is None or self.fired or spec.step != step or FAULT_PHASES[spec.kind] != phase:
            return
        self.fired = True
        target = _TARGETS[spec.kind](driver)
        self.log_event({"event": "fault", "fault": str(spec), "phase": phase, "target": target})
        print(f"[fault] injecting {spec} before the {phase} phase: {target}", flush=True)
        if spec.kind == "driver":
            exit_driver(driver)
        elif spec.kind == "teacher":
            kill_actor(driver.teacher.workers[0])
        elif spec.kind == "rollout":
            kill_actor(driver.rollout.workers[0])
        else:
            kill_actor(driver.learners.ranks[-1])


_TARGETS = {
    "teacher": lambda d: "teacher worker 0",
    "rollout": lambda d: "rollout worker 0",
    "learner": lambda d: f"learner rank {len(d.learners.ranks) - 1}",
    "driver": lambda d: f"driver pid {os.getpid()} (exit {DRIVER_FAULT_EXIT_CODE})",
}


def kill_actor(actor: Any, wait_s: float = KILL_WAIT_S) -> None:
    """`ray.kill` an actor (no restart) and wait until Ray reports it dead, so that the next call
    to it fails for certain (ray.kill itself is asynchronous)."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError

    ray.kill(actor, no_restart=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=max(0.1, deadline - time.monotonic()))
        except RayActorError:
            return
        except GetTimeoutError:
            break
        time.sleep(0.05)
    raise TimeoutError(f"fault injection: actor {actor} still alive {wait_s:.0f} s after ray.kill")


def exit_driver(driver: Any) -> None:
    """End the driver process abruptly (no clean-up, no atexit) after flushing the ledger."""
    driver.ledger.close()  # records are fsynced as written; this flushes TensorBoard
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(DRIVER_FAULT_EXIT_CODE)
