"""TeacherPool on real Ray actors with vLLM teachers: order, balance, restarts, timeouts, checks."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from teacher_server.checks import TeacherMismatchError
from teacher_server.config import TeacherConfig
from teacher_server.items import items_from_batch
from teacher_server.pool import TeacherPool, TeacherTimeoutError

TOP_K = 3


def _config(model: Path, **kw) -> TeacherConfig:
    """Teacher actors on the custom "teacher" resource, no CPU reservation (2-CPU test cluster)."""
    base = {
        "backend": "vllm",
        "model": str(model),
        "top_k": TOP_K,
        "temperature": 0.7,
        "max_model_len": 1024,
        "num_workers": 2,
        "num_cpus": 0,
        "resources": {"teacher": 1},
    }
    return TeacherConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def pool(ray_session, tiny_models_dir: Path):
    """Two vLLM teacher workers (qwen3_vl teacher, top-3, T = 0.7)."""
    pool = TeacherPool(_config(tiny_models_dir / "qwen3_vl-teacher"))
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def reference(tiny_models_dir: Path, student_batch, vllm_scorers):
    """The same items scored by one in-process vLLM scorer."""
    scorer = vllm_scorers(_config(tiny_models_dir / "qwen3_vl-teacher"))
    return scorer.score(items_from_batch(student_batch()))


@pytest.mark.e2e
def test_pool_fills_batch_in_order_and_records_ledger(pool, reference, student_batch) -> None:
    batch = student_batch()
    pool.score_batch(batch)
    for traj, ref in zip(batch.trajectories, reference, strict=True):
        np.testing.assert_allclose(traj.teacher_logprobs, ref.logprobs, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(traj.teacher_topk_ids, ref.topk_ids)
        assert traj.teacher_topk_logprobs.shape == (traj.num_completion_tokens, TOP_K)
    call = pool.last_call
    assert call.sequences == len(batch.trajectories)
    assert call.completion_tokens == batch.num_generated_tokens
    assert call.prompt_tokens == sum(t.num_prompt_tokens for t in batch.trajectories)
    assert len(call.workers) == 2 and all(w.sequences > 0 and w.seconds > 0 for w in call.workers)
    assert call.restarts == 0 and call.wall_s > 0 and batch.timings["teacher"] > 0
    json.dumps(call.as_dict())  # ledger-ready
    # The two actors are distinct processes holding the custom teacher resource.
    assert len({s["pid"] for s in pool.statuses()}) == 2


@pytest.mark.e2e
def test_killed_worker_is_restarted_and_nothing_is_lost(pool, reference, student_batch) -> None:
    import ray

    items = items_from_batch(student_batch()) * 8  # long enough to kill mid-request
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["results"] = pool.score(items)
        except Exception as exc:  # reported below
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    victim = None
    deadline = time.time() + 60
    while victim is None and time.time() < deadline and thread.is_alive():
        for index, status in enumerate(pool.statuses()):
            if status["in_flight"]:
                victim = index
                break
        time.sleep(0.01)
    assert victim is not None, "no worker was seen scoring"
    old_pid = pool.statuses()[victim]["pid"]
    ray.kill(pool.workers[victim], no_restart=True)
    thread.join(timeout=300)
    assert "error" not in out, out.get("error")
    results = out["results"]
    assert len(results) == len(items)
    n = len(reference)
    for i, res in enumerate(results):
        ref = reference[i % n]
        np.testing.assert_allclose(res.logprobs, ref.logprobs, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(res.topk_ids, ref.topk_ids)
    assert pool.last_call.restarts == 1
    assert pool.statuses()[victim]["pid"] != old_pid


@pytest.mark.e2e
def test_submitted_calls_share_one_restart_and_stream_in_order(
    pool, reference, student_batch
) -> None:
    """Two calls in flight at once; the worker killed under both is restarted once and both
    calls' shards on it are resent; a TeacherStream over two parts fills the merged batch as
    score_batch does."""
    import ray

    from teacher_server.stream import TeacherStream

    items = items_from_batch(student_batch())
    restarts = pool.total_restarts
    first, second = pool.submit(items * 4), pool.submit(items)
    assert first.pending and second.pending  # both sent before anything is collected
    ray.kill(pool.workers[0], no_restart=True)
    results = pool.collect([first, second])
    assert pool.total_restarts == restarts + 1
    for got, want in zip(results[0] + results[1], reference * 5, strict=True):
        np.testing.assert_allclose(got.logprobs, want.logprobs, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(got.topk_ids, want.topk_ids)
    for call in (first.call, second.call):
        assert call is not None and call.restarts >= 1
        assert all(0 < w.started <= w.finished for w in call.workers)
    assert {id(c) for c in pool.ledger[-2:]} == {id(first.call), id(second.call)}  # as done

    batch = student_batch()
    parts = [  # two "worker shards" over disjoint prompts, the later prompts first
        batch.replace_trajectories([t for t in batch.trajectories if t.prompt_index >= 1]),
        batch.replace_trajectories([t for t in batch.trajectories if t.prompt_index < 1]),
    ]
    stream = TeacherStream(pool, batch.prompts)
    for part in parts:
        stream.submit(part)
    assert len(stream.handles) == 2
    stream.fill(batch)
    assert len(stream.calls) == 2 and batch.timings["teacher"] > 0
    for traj, want in zip(batch.trajectories, reference, strict=True):
        np.testing.assert_allclose(traj.teacher_logprobs, want.logprobs, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(traj.teacher_topk_ids, want.topk_ids)


@pytest.mark.e2e
def test_pool_timeout_names_the_worker(pool, student_batch) -> None:
    items = items_from_batch(student_batch()) * 4
    with pytest.raises(TeacherTimeoutError, match=r"teacher worker [01] \(actor [0-9a-f]+"):
        pool.score(items, timeout_s=0.01)
    pool.score(items[:2])  # the pool keeps working afterwards


@pytest.mark.e2e
def test_start_up_checks_against_the_student(pool, tiny_models_dir: Path, tmp_path: Path) -> None:
    info = pool.check_student(str(tiny_models_dir / "qwen3_vl-student"), longest_sequence=1024)
    assert info["top_k"] == TOP_K and info["backend"] == "vllm"
    with pytest.raises(TeacherMismatchError, match="context length is 1024"):
        pool.check_student(str(tiny_models_dir / "qwen3_vl-student"), longest_sequence=2000)
    other = tmp_path / "student"
    shutil.copytree(tiny_models_dir / "qwen3_vl-student", other)
    template = other / "chat_template.jinja"
    template.write_text(template.read_text().replace("assistant", "model"))
    with pytest.raises(TeacherMismatchError, match="chat templates differ"):
        pool.check_student(str(other))
    with pytest.raises(TeacherMismatchError, match="different vision inputs"):
        pool.check_student(str(tiny_models_dir / "qwen2_5_vl-student"))
