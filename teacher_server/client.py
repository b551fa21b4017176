"""`RemoteScorer`: the HTTP client backend (`teacher.backend=remote`), a drop-in `Scorer`.

It builds the vision inputs locally with the task layer's one function (`build_vision_inputs`)
and ships the frames in a safetensors request, so the remote teacher sees the student's exact
pixels and timestamps without a shared disk (`send_frames=False` sends video paths instead, for a
server started with `--video-root` on a shared filesystem). Standard library only (urllib).
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from teacher_server.items import ScoreItem, TeacherInputError, TokenScores, resolve_vision
from teacher_server.wire import (
    JSON_TYPE,
    SAFETENSORS_TYPE,
    decode_response,
    encode_frames_request,
    encode_json_request,
)
from tvg.frame_cache import FrameCache


class RemoteTeacherError(RuntimeError):
    """The teacher server could not be reached or failed (5xx)."""


class RemoteScorer:
    """Scores items on a `vopd teacher-server` over HTTP."""

    backend = "remote"

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout_s: float = 600.0,
        send_frames: bool = True,
        frame_cache: FrameCache | None = None,
    ) -> None:
        """Point at a server (e.g. "http://127.0.0.1:8400"); nothing is sent yet."""
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.send_frames = send_frames
        self.frame_cache = frame_cache if frame_cache is not None else FrameCache()
        self._info: dict[str, Any] | None = None

    def _request(self, path: str, body: bytes | None = None, content_type: str = "") -> bytes:
        """One HTTP request; 4xx -> TeacherInputError, other failures -> RemoteTeacherError."""
        headers = {"Accept": JSON_TYPE}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            self.url + path, data=body, headers=headers, method="POST" if body else "GET"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            reason = exc.read().decode(errors="replace")
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                reason = json.loads(reason).get("error", reason)
            if 400 <= exc.code < 500:
                raise TeacherInputError(f"teacher server {self.url}: {exc.code} {reason}") from exc
            raise RemoteTeacherError(f"teacher server {self.url}: {exc.code} {reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteTeacherError(f"teacher server {self.url} unreachable: {exc}") from exc

    def health(self) -> dict[str, Any]:
        """GET /health."""
        return json.loads(self._request("/health"))

    def info(self) -> dict[str, Any]:
        """GET /info (cached): model, tokenizer hash, vision settings, scoring settings."""
        if self._info is None:
            self._info = json.loads(self._request("/info"))
        return dict(self._info)

    def score(self, items: Sequence[ScoreItem]) -> list[TokenScores]:
        """Per completion token: sampled-token log-prob and top-k, for every item, in order."""
        if not items:
            return []
        if self.send_frames:
            visions = [resolve_vision(item, self.frame_cache) for item in items]
            body = encode_frames_request(items, visions)
            content_type = SAFETENSORS_TYPE
        else:
            body, content_type = encode_json_request(items), JSON_TYPE
        return decode_response(self._request("/score", body, content_type), len(items))
