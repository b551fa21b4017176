"""The teacher HTTP service on loopback: identical results, auth, limits, fuzzed bad requests."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teacher_server.checks import tokenizer_hash
from teacher_server.client import RemoteScorer
from teacher_server.config import TeacherConfig
from teacher_server.http_server import TeacherHTTPServer, TeacherService
from teacher_server.items import TeacherInputError, items_from_batch
from teacher_server.wire import encode_frames_request, encode_json_request
from tvg.video_settings import VideoSettings

TOKEN = "test-token-1234"
TOP_K = 3
MAX_BODY = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tiny_models_dir: Path, teacher_videos, vllm_scorers):
    """A vLLM teacher behind the HTTP service on 127.0.0.1 (token on, video root = test clips)."""
    config = TeacherConfig(
        model=str(tiny_models_dir / "qwen3_vl-teacher"),
        top_k=TOP_K,
        temperature=0.7,
        max_model_len=1024,
    )
    service = TeacherService(
        vllm_scorers(config),
        token=TOKEN,
        max_body_bytes=MAX_BODY,
        video_root=str(Path(teacher_videos[0]).parent),
    )
    server = TeacherHTTPServer(service, "127.0.0.1", 0)
    server.start_background()
    yield server
    server.shutdown()
    server.server_close()


def _post(server, body: bytes, content_type: str, token: str | None = TOKEN, path="/score"):
    """Raw POST over http.client; returns (status, parsed JSON or raw body)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    try:
        return response.status, json.loads(data)
    except json.JSONDecodeError:
        return response.status, data


def _get(server, path: str, token: str | None = None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = conn.getresponse()
    status, data = response.status, json.loads(response.read())
    conn.close()
    return status, data


@pytest.mark.e2e
def test_remote_and_local_results_are_identical(server, student_batch, teacher_videos) -> None:
    items = items_from_batch(student_batch())
    local = server.service.scorer.score(items)
    frames = RemoteScorer(server.url, token=TOKEN).score(items)
    # JSON mode: paths relative to the server's video root.
    for item in items:
        item.prompt = type(item.prompt)(
            **{**item.prompt.__dict__, "video": Path(item.prompt.video).name}
        )
    paths = RemoteScorer(server.url, token=TOKEN, send_frames=False).score(items)
    for a, b, c in zip(local, frames, paths, strict=True):
        assert a.equals(b) and a.equals(c)
        assert a.topk_ids.shape[1] == TOP_K and a.num_prompt_tokens == b.num_prompt_tokens


@pytest.mark.e2e
def test_remote_backend_plugs_into_the_pool(server, ray_session, student_batch, monkeypatch):
    from teacher_server.pool import TeacherPool

    monkeypatch.setenv("VOPD_TEST_TEACHER_TOKEN", TOKEN)
    config = TeacherConfig(
        backend="remote",
        url=server.url,
        token_env="VOPD_TEST_TEACHER_TOKEN",
        top_k=TOP_K,
        temperature=0.7,
        num_workers=2,
        num_cpus=0,
        resources={"teacher": 1},
    )
    pool = TeacherPool(config)
    try:
        batch = pool.score_batch(student_batch())
        local = server.service.scorer.score(items_from_batch(student_batch()))
        for traj, ref in zip(batch.trajectories, local, strict=True):
            np.testing.assert_array_equal(traj.teacher_logprobs, ref.logprobs)
            np.testing.assert_array_equal(traj.teacher_topk_ids, ref.topk_ids)
        assert pool.info()[0]["tokenizer_hash"] == server.service.info()["tokenizer_hash"]
    finally:
        pool.shutdown()


@pytest.mark.e2e
def test_health_info_and_auth(server, tiny_models_dir: Path, student_batch) -> None:
    from transformers import AutoTokenizer

    assert _get(server, "/health") == (200, {"status": "ok"})
    assert _get(server, "/info")[0] == 401
    assert _get(server, "/info", "wrong")[0] == 401
    status, info = _get(server, "/info", TOKEN)
    student = AutoTokenizer.from_pretrained(tiny_models_dir / "qwen3_vl-student")
    assert status == 200 and info["tokenizer_hash"] == tokenizer_hash(student)
    assert info["auth"] is True and info["temperature"] == 0.7 and info["top_k"] == TOP_K
    body = encode_json_request(items_from_batch(student_batch())[:1])
    for token in (None, "", "wrong", TOKEN[:-1], TOKEN + "x"):
        status, reply = _post(server, body, "application/json", token=token)
        assert status == 401, (token, status)
        assert "token" in reply["error"]
    with pytest.raises(TeacherInputError, match="401"):
        RemoteScorer(server.url, token="wrong").score(items_from_batch(student_batch())[:1])


@pytest.mark.e2e
def test_limits_and_reasons(server, student_batch) -> None:
    items = items_from_batch(student_batch())
    # The limit is enforced from Content-Length, before the body is read.
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("POST", "/score")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(MAX_BODY + 1))
    conn.endheaders()
    response = conn.getresponse()
    reply = json.loads(response.read())
    conn.close()
    assert response.status == 413 and "exceeds" in reply["error"]
    status, reply = _post(server, encode_json_request(items, temperature=1.0), "application/json")
    assert status == 400 and "temperature 0.7" in reply["error"]
    items[0].prompt = type(items[0].prompt)(**{**items[0].prompt.__dict__, "video": "../x.mp4"})
    status, reply = _post(server, encode_json_request(items[:1]), "application/json")
    assert status == 400 and "outside the server's video root" in reply["error"]
    items[0].prompt = type(items[0].prompt)(**{**items[0].prompt.__dict__, "video": "no.mp4"})
    status, reply = _post(server, encode_json_request(items[:1]), "application/json")
    assert status == 422 and "no.mp4" in reply["error"]
    assert _get(server, "/nope", TOKEN)[0] == 404


@pytest.mark.e2e
def test_video_tokens_past_the_context_get_422(server, student_batch) -> None:
    """Frames upscaled to 1024 x 1024 expand to ~2,000 video tokens, past the teacher's 1,024:
    only the engine counts them, and its refusal is the request's fault (422, not 500)."""
    import dataclasses

    item = items_from_batch(student_batch())[0]
    big = {**item.prompt.video_settings.to_dict(), "min_pixels": 1024 * 1024}
    big["max_pixels"] = 1024 * 1024
    item.prompt = dataclasses.replace(
        item.prompt, video=Path(item.prompt.video).name, video_settings=VideoSettings(**big)
    )
    status, reply = _post(server, encode_json_request([item]), "application/json")
    assert status == 422, (status, reply)
    assert "maximum model length" in reply["error"] and item.prompt.sample_id in reply["error"]
    ok = items_from_batch(student_batch())[0]
    ok.prompt = dataclasses.replace(ok.prompt, video=Path(ok.prompt.video).name)
    status, reply = _post(server, encode_json_request([ok]), "application/json")
    assert status == 200 and len(reply["results"]) == 1  # the engine still scores


def _valid_frames_body(student_batch) -> tuple[bytes, dict]:
    from tvg.video import build_vision_inputs

    item = items_from_batch(student_batch())[0]
    vision = build_vision_inputs(item.prompt.video, item.prompt.video_settings)
    body = encode_frames_request([item], [vision])
    request = json.loads(body[8 : 8 + int.from_bytes(body[:8], "little")])["__metadata__"]
    return body, json.loads(request["request"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ITEM_FIELDS = (
    "query",
    "prompt_style",
    "video",
    "video_settings",
    "completion_ids",
    "prompt_ids",
    "num_prompt_tokens",
    "frames",
    "metadata",
    "sample_id",
)


@pytest.mark.e2e
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_malformed_requests_only_get_4xx(server, student_batch, data) -> None:
    from safetensors.numpy import save

    kind = data.draw(st.sampled_from(["bytes", "json", "mutated_json", "mutated_frames", "type"]))
    content_type = "application/json"
    if kind == "bytes":
        content_type = data.draw(st.sampled_from(["application/json", "application/x-safetensors"]))
        body = data.draw(st.binary(max_size=256))
    elif kind == "json":
        body = json.dumps(data.draw(json_values)).encode()
    elif kind == "type":
        # Any header value a client can send (printable latin-1: http.client refuses CR/LF/NUL).
        alphabet = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
        content_type = data.draw(st.text(alphabet=alphabet, max_size=20)).strip() or "x"
        body = b"{}"
    else:
        frames_body, request = _valid_frames_body(student_batch)
        item = request["items"][0]
        field = data.draw(st.sampled_from(ITEM_FIELDS))
        if data.draw(st.booleans()):
            item.pop(field, None)
        else:
            item[field] = data.draw(json_values)
        if kind == "mutated_json":
            item.pop("frames", None)
            body = json.dumps(request).encode()
        else:
            content_type = "application/x-safetensors"
            from safetensors.numpy import load

            tensors = load(frames_body)
            if data.draw(st.booleans()):
                shape = data.draw(st.tuples(*[st.integers(1, 6)] * 4))
                tensors["frames.0"] = np.zeros(shape, np.uint8)
            body = save(tensors, metadata={"request": json.dumps(request)})
    status, reply = _post(server, body, content_type)
    assert status < 500, (kind, status, reply)
    if status != 200:
        assert 400 <= status < 500 and reply["error"], (status, reply)


@pytest.mark.e2e
def test_server_survives_fuzzing(server) -> None:
    assert _get(server, "/health") == (200, {"status": "ok"})


def test_cli_refuses_public_bind_without_token(tiny_models_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VOPD_TEACHER_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "launch.cli", "teacher-server", "--model", "x", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "refusing to bind" in proc.stderr and "without a bearer token" in proc.stderr


@pytest.mark.e2e
def test_cli_serves_health_and_scores(tiny_models_dir: Path, student_batch) -> None:
    env = {**os.environ, "VOPD_T": "cli-token"}
    cmd = [
        sys.executable,
        "-m",
        "launch.cli",
        "teacher-server",
        "--model",
        str(tiny_models_dir / "qwen3_vl-teacher"),
        "--port",
        "0",
        "--backend",
        "hf",
        "--token-env",
        "VOPD_T",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        line = ""
        for _ in range(500):  # libraries may log to stdout first
            line = proc.stdout.readline()
            if not line or line.startswith("teacher server on"):
                break
        assert "teacher server on http://127.0.0.1:" in line, line
        url = line.split()[3]
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # never block on a pipe
        client = RemoteScorer(url, token="cli-token")
        assert client.health() == {"status": "ok"} and client.info()["backend"] == "hf"
        results = client.score(items_from_batch(student_batch())[:2])
        assert len(results) == 2 and results[0].logprobs.shape[0] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
