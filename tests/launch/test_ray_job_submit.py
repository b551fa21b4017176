"""`launch/cluster/ray_job_submit.sh` end to end: a Ray head started here with `ray start --head
--include-dashboard=true` (its job server), a tiny OPD run submitted through the script, the job
followed to SUCCEEDED, and its ledger read back.

The head runs in its own temp dir (`--temp-dir`, RAY_TMPDIR) on free ports: `ray start` records
its address in the temp dir, where a plain `ray.init()` elsewhere on the machine would otherwise
find and join it. It is stopped by signalling the `ray start --block` process started here (never
`ray stop`, which stops every Ray instance of the user)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch.ledger import read_ledger

REPO = Path(__file__).resolve().parents[2]
SUBMIT = REPO / "launch" / "cluster" / "ray_job_submit.sh"
RAY = Path(sys.executable).with_name("ray")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    """This environment without any Ray address or temp dir of the test session."""
    drop = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_TMPDIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", **extra)
    return env


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head with the dashboard (job server) on 127.0.0.1; yields the job server's URL."""
    temp = tempfile.mkdtemp(prefix="vopd-rh-", dir="/tmp")  # short: Ray's socket paths
    dashboard = _free_port()
    command = [str(RAY), "start", "--head", "--block", "--include-dashboard=true"]
    command += ["--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard)]
    command += ["--port", str(_free_port()), "--ray-client-server-port", str(_free_port())]
    command += ["--dashboard-agent-listen-port", str(_free_port()), "--temp-dir", temp]
    command += ["--num-cpus", "2", "--object-store-memory", str(200 * 1024 * 1024)]
    command += ["--disable-usage-stats"]
    log = open(Path(temp) / "head.log", "w")  # noqa: SIM115 (closed below)
    head = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=_env(RAY_TMPDIR=temp), cwd=temp
    )
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/version", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the Ray head's dashboard did not answer on {url} (exit {head.poll()}):\n"
                    + (Path(temp) / "head.log").read_text()[-4000:]
                )
            time.sleep(1)
        yield url
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its own processes
        try:
            head.wait(timeout=90)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.timeout(900)
def test_a_tiny_run_submitted_with_the_script_succeeds(
    ray_head: str, tiny_models_dir: Path, loop_data: Path, tmp_path: Path
) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    out = tmp_path / "run"  # absolute: the job runs in a copy of the repository
    overrides = {
        "out_dir": out,
        "model.student": tiny_models_dir / "qwen3_vl-student",
        "model.teacher": tiny_models_dir / "qwen3_vl-teacher",
        "data.train": loop_data / "train.json",
        "data.val": loop_data / "val.json",
        "data.video_root": loop_data / "videos",
        "trainer.steps": 2,
        "trainer.prompts_per_step": 2,
        "rollout.n": 2,
        "rollout.max_new_tokens": 12,
        "rollout.engine": "hf",
        "teacher.backend": "hf",
        "learner.num_ranks": 1,
        "learner.micro_batch_size": 4,
        "eval.every_steps": 2,
        "eval.max_samples": 2,
        "eval.max_new_tokens": 12,
        "checkpoint.every_steps": 2,
    }
    job = f"vopd-test-{uuid.uuid4().hex[:8]}"
    submitted = subprocess.run(
        ["bash", str(SUBMIT), "--address", ray_head, "--submission-id", job, "--no-wait"]
        + ["--env", "OMP_NUM_THREADS=1", "opd"]
        + [f"{key}={value}" for key, value in overrides.items()],
        cwd=REPO,
        env=_env(RAY_BIN=str(RAY), VOPD_REMOTE_PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    client = JobSubmissionClient(ray_head)
    deadline = time.monotonic() + 600
    while (status := client.get_job_status(job)) not in (
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.STOPPED,
    ):
        assert time.monotonic() < deadline, client.get_job_logs(job)[-4000:]
        time.sleep(2)
    logs = client.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-6000:]
    assert "finished 2 steps" in logs
    info = client.get_job_info(job)
    assert f"{sys.executable} -m launch.cli train opd out_dir={out}" in info.entrypoint
    # The ledger the job wrote: both steps, each with a verified weight sync, and its checkpoint.
    records = read_ledger(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert all(r["sync_checksum"] and r["tokens_trained"] > 0 for r in records)
    assert "val" in records[-1] and (out / "checkpoints" / "step_00000002").is_dir()
