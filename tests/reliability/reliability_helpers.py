"""Helpers of the reliability tests: a cheap teacher scorer, small (bad) videos, raw HTTP clients.

`CheckingScorer` is the real `LocalScorer` with its real input checks (the teacher's own prompt
tokenisation compared with the student's ids, context length, vocabulary, vision placeholders,
video decoding through `tvg.video.build_vision_inputs`) and a deterministic result in place of a
model forward. Behind `TeacherService` it lets the tests send thousands of requests in seconds;
what it does not exercise is the model forward itself (tests/teacher_server/test_http.py fuzzes
the service with the real vLLM teacher).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rollout.batch import PromptSpec
from teacher_server.checks import tokenizer_hash
from teacher_server.config import TeacherConfig
from teacher_server.items import ScoreItem, TokenScores, resolve_vision
from teacher_server.scorer import LocalScorer
from tvg.frame_cache import FrameCache
from tvg.synth_render import encode_video
from tvg.video import VideoSettings, build_vision_inputs

TOKEN = "reliability-token-0123456789"
TOP_K = 2
TEMPERATURE = 1.0
MAX_MODEL_LEN = 512
MAX_BODY = 1024 * 1024
SETTINGS = VideoSettings(fps=2.0, max_frames=8, max_pixels=64 * 64, min_pixels=32 * 32)
QUERY = "When is the red square visible?"


class CheckingScorer(LocalScorer):
    """`LocalScorer`'s checks on the tiny models' tokenizer; results without a model forward."""

    backend = "checking-stub"

    def __init__(self, config: TeacherConfig, gate: threading.Event | None = None) -> None:
        """Build the shared tiny tokenizer (no model directory); `gate` blocks `score` until set."""
        from launch.tiny_models.tokenizer import build_tokenizer
        from runtime.prompting import vision_placeholder_ids

        self.config = config
        self.processor = None
        self.model_config = None
        self.tokenizer = build_tokenizer()
        self.banned_ids = vision_placeholder_ids(self.tokenizer)
        self.frame_cache = FrameCache(max_bytes=64 * 1024 * 1024)
        self._prompt_cache: dict[tuple[str, str], list[int]] = {}
        self.gate = gate
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """What /info reports (tokenizer hash and scoring settings; no vision processor)."""
        return {
            "backend": self.backend,
            "model": self.config.model,
            "tokenizer_hash": tokenizer_hash(self.tokenizer),
            "vocab_size": len(self.tokenizer),
            "vision_settings": {},
            "vision_hash": "",
            "temperature": self.config.temperature,
            "top_k": self.config.top_k,
            "max_model_len": self.config.max_model_len,
            "dtype": self.config.dtype,
            "banned_ids": list(self.banned_ids),
        }

    def score(self, items: Sequence[ScoreItem]) -> list[TokenScores]:
        """Run the real per-item checks, decode the video when not shipped, return fixed scores."""
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.gate is not None:
                self.gate.wait(timeout=30)
            out = []
            for item in items:
                ids = self.prompt_ids(item)
                self.check_lengths(item, len(ids))
                resolve_vision(item, self.frame_cache)
                n, k = int(item.completion_ids.shape[0]), self.config.top_k
                logprobs = -np.log1p(item.completion_ids.astype(np.float32) % 7)
                topk_ids = np.tile(np.arange(k, dtype=np.int32), (n, 1))
                topk_lp = np.full((n, k), -1.0, np.float32)
                out.append(TokenScores(logprobs, topk_ids, topk_lp, len(ids)))
            return out
        finally:
            with self._lock:
                self.active -= 1


def stub_config() -> TeacherConfig:
    """The scoring settings the stub server announces."""
    return TeacherConfig(
        backend="hf",
        model="checking-stub",
        top_k=TOP_K,
        temperature=TEMPERATURE,
        max_model_len=MAX_MODEL_LEN,
    )


def write_clip(path: Path, n_frames: int = 8, fps: int = 4, size: int = 64) -> Path:
    """A small valid mp4 (a red square on grey in frames 1-3)."""
    frames = np.full((n_frames, size, size, 3), 110, np.uint8)
    frames[1:4, 8:40, 8:40] = (220, 40, 30)
    encode_video(frames, path, fps=fps)
    return path


def write_bad_videos(root: Path, good: Path) -> dict[str, Path]:
    """Bad video files next to a good one: empty, truncated, text named .mp4, a directory."""
    out = {
        "empty": root / "empty.mp4",
        "truncated": root / "truncated.mp4",
        "text": root / "notes.mp4",
        "directory": root / "folder.mp4",
    }
    out["empty"].write_bytes(b"")
    data = good.read_bytes()
    out["truncated"].write_bytes(data[: len(data) // 3])
    out["text"].write_text("this is not a video\n" * 20)
    out["directory"].mkdir(exist_ok=True)
    return out


def completion_ids(tokenizer: Any, text: str = "The event happens in 0.5 - 1.0 seconds.") -> list:
    """Token ids of an answer (what a student would have sampled)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def valid_item(scorer: CheckingScorer, video: str = "clip.mp4") -> dict[str, Any]:
    """One well-formed JSON request item (video named relative to the server's root)."""
    from runtime.prompting import prompt_token_ids

    return {
        "sample_id": "s0",
        "query": QUERY,
        "prompt_style": "timelens",
        "video": video,
        "video_settings": SETTINGS.to_dict(),
        "completion_ids": completion_ids(scorer.tokenizer),
        "prompt_ids": prompt_token_ids(scorer.tokenizer, QUERY, "timelens"),
        "num_prompt_tokens": 0,
    }


def json_body(items: list[dict[str, Any]], **options: Any) -> bytes:
    """A JSON /score body."""
    return json.dumps({"version": 1, **options, "items": items}).encode()


def frames_body(scorer: CheckingScorer, clip: Path, **item_changes: Any) -> bytes:
    """A well-formed safetensors /score body shipping the clip's frames."""
    from teacher_server.wire import encode_frames_request

    item = valid_item(scorer)
    spec = PromptSpec("s0", str(clip), QUERY, video_settings=SETTINGS)
    score_item = ScoreItem(spec, item["completion_ids"], item["prompt_ids"])
    body = encode_frames_request([score_item], [build_vision_inputs(clip, SETTINGS)])
    if not item_changes:
        return body
    request = request_of_frames_body(body)
    request["items"][0].update(item_changes)
    return replace_frames_request(body, request)


def request_of_frames_body(body: bytes) -> dict[str, Any]:
    """The JSON request inside a safetensors body."""
    size = int.from_bytes(body[:8], "little")
    return json.loads(json.loads(body[8 : 8 + size])["__metadata__"]["request"])


def replace_frames_request(body: bytes, request: dict[str, Any]) -> bytes:
    """The same tensors with another JSON request in the metadata."""
    from safetensors.numpy import load, save

    return save(load(body), metadata={"request": json.dumps(request)})


def post(
    url_or_server: Any,
    body: bytes,
    content_type: str = "application/json",
    token: str | None = TOKEN,
    path: str = "/score",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST with http.client; (status, parsed JSON body or raw bytes)."""
    host, port = url_or_server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    all_headers = {"Content-Type": content_type}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    try:
        conn.request("POST", path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, _parse(response.read())
    finally:
        conn.close()


def get(server: Any, path: str, token: str | None = None) -> tuple[int, Any]:
    """GET with http.client; (status, parsed JSON body)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, _parse(response.read())
    finally:
        conn.close()


def raw_request(server: Any, data: bytes, timeout: float = 20.0) -> tuple[int | None, bytes]:
    """Send raw bytes, close the sending side, read the whole reply; (status or None, reply).

    Closing the sending side makes a server waiting for a longer body than was sent see the
    end of the stream at once instead of waiting for its socket timeout.
    """
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before reading everything
            pass
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    reply = b"".join(chunks)
    # Interim 1xx replies (100 Continue) precede the final one: keep the final reply.
    while (parse_status(reply) or 0) // 100 == 1 and b"\r\n\r\n" in reply:
        reply = reply.split(b"\r\n\r\n", 1)[1]
    return parse_status(reply), reply


def parse_status(reply: bytes) -> int | None:
    """The status code of a raw HTTP reply, or None when it has no status line."""
    line = reply.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None


def reply_json(reply: bytes) -> Any:
    """The JSON body of a raw HTTP reply (None when it has none)."""
    _, _, body = reply.partition(b"\r\n\r\n")
    return _parse(body) if body else None


def _parse(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return data
