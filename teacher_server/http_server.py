"""The teacher HTTP service: the same scoring as a local worker, for a teacher on another machine.

Endpoints: GET /health (no auth; {"status": "ok"}), GET /info (model, tokenizer hash, vision and
scoring settings, limits), POST /score (see `teacher_server.wire`). Standard library only
(`http.server.ThreadingHTTPServer`).

Safety: binds 127.0.0.1 by default and refuses any other address without a bearer token; the
token is compared with `hmac.compare_digest`; bodies above `max_body_bytes` get 413 before they
are read; at most `max_concurrency` authorised /score requests are admitted at once, counted from
before their body is read (429 beyond), so at most that many bodies are held in memory; one
request scores at a time on the engine; malformed requests get a 4xx with the reason as
{"error": ...}, including the protocol errors `http.server` itself detects (unknown method,
unsupported HTTP version: 405 / 400 instead of its 501 / 505); JSON requests that would make the
server decode more than `MAX_DECODE_PIXELS` pixels are refused; never pickle. Sockets time out
after `socket_timeout_s` so a stalled client cannot hold a thread.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from teacher_server.items import TeacherInputError
from teacher_server.scorer import Scorer
from teacher_server.wire import API_VERSION, JSON_TYPE, BadRequest, encode_response, parse_request
from tvg.video_errors import VideoError
from tvg.video_settings import VideoSettings

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 256 * 1024 * 1024
# JSON requests name a video that the server decodes itself: their settings may not ask for more
# than this many pixels over all frames (max_frames x per-frame budget; ~2.4 GB of uint8 RGB).
# Qwen-VL's own video defaults (768 frames x 768 * 28 * 28 pixels) stay well below it.
MAX_DECODE_PIXELS = 768 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a bearer token."""
    if not is_loopback(host) and not token:
        raise PermissionError(
            f"refusing to bind the teacher server to {host!r} without a bearer token: set one "
            "in the environment variable named by --token-env, or bind 127.0.0.1"
        )


class TeacherService:
    """Request handling independent of the socket layer: auth, limits, parsing, scoring."""

    def __init__(
        self,
        scorer: Scorer,
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        max_concurrency: int = 4,
        video_root: str | None = None,
    ) -> None:
        """Wrap a scorer with the service's limits (both must be >= 1)."""
        if int(max_concurrency) < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if int(max_body_bytes) < 1:
            raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
        self.scorer = scorer
        self.token = token or None
        self.max_body_bytes = int(max_body_bytes)
        self.max_concurrency = int(max_concurrency)
        self.video_root = os.path.realpath(video_root) if video_root else None
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._engine = threading.Lock()
        self._info = scorer.info()
        self.requests = 0
        self.tokens_scored = 0

    def authorised(self, header: str | None) -> bool:
        """True when no token is configured or the Authorization header carries it."""
        if self.token is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer ") :].encode(), self.token.encode())

    def try_admit(self) -> bool:
        """Take one of the `max_concurrency` request slots without waiting; False when full."""
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        """Give back a slot taken by `try_admit`."""
        self._slots.release()

    def info(self) -> dict[str, Any]:
        """The /info payload."""
        return {
            **self._info,
            "api_version": API_VERSION,
            "auth": self.token is not None,
            "max_body_bytes": self.max_body_bytes,
            "max_concurrency": self.max_concurrency,
            "accepts": ["application/x-safetensors"]
            + (["application/json"] if self.video_root else []),
            "requests": self.requests,
            "tokens_scored": self.tokens_scored,
        }

    def _check_videos(self, items: list[Any]) -> None:
        """JSON requests name files: only allowed under the server's video root."""
        for i, item in enumerate(items):
            if item.vision is not None:
                continue
            if self.video_root is None:
                raise BadRequest(
                    "this server does not read video files (no --video-root): send the frames "
                    "as application/x-safetensors"
                )
            pixels = decode_pixel_bound(item.prompt.video_settings)
            if pixels > MAX_DECODE_PIXELS:
                raise BadRequest(
                    f"items[{i}].video_settings ask for up to {pixels} decoded pixels "
                    f"(max_frames x per-frame budget), above this server's {MAX_DECODE_PIXELS}"
                )
            path = os.path.realpath(os.path.join(self.video_root, item.prompt.video))
            if os.path.commonpath([path, self.video_root]) != self.video_root:
                raise BadRequest(f"items[{i}].video is outside the server's video root")
            item.prompt = dataclasses.replace(item.prompt, video=path)

    def score(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        """Handle a /score body: (status, JSON body). Admission (`try_admit`) is the caller's:
        the HTTP handler takes a slot before it reads the body."""
        try:
            items, options = parse_request(body, content_type)
            info = self._info
            if options.get("temperature", info["temperature"]) != info["temperature"]:
                raise BadRequest(
                    f"this server scores at temperature {info['temperature']}, the request "
                    f"asked for {options['temperature']}"
                )
            if options.get("top_k", info["top_k"]) != info["top_k"]:
                raise BadRequest(
                    f"this server returns top_k={info['top_k']}, the request asked for "
                    f"{options['top_k']}"
                )
            self._check_videos(items)
        except BadRequest as exc:
            return 400, _error(str(exc))
        try:
            start = time.perf_counter()
            with self._engine:
                results = self.scorer.score(items)
            seconds = time.perf_counter() - start
            self.requests += 1
            self.tokens_scored += sum(int(i.completion_ids.shape[0]) for i in items)
            return 200, encode_response(results, seconds)
        except (TeacherInputError, VideoError) as exc:
            return 422, _error(str(exc))


def decode_pixel_bound(settings: VideoSettings) -> int:
    """An upper bound of the pixels `build_vision_inputs` decodes under `settings` (all frames)."""
    floor = max(settings.min_pixels, settings.size_factor**2)
    per_frame = max(settings.max_pixels, floor)
    total = settings.max_frames * per_frame
    if settings.max_total_pixels is not None:
        total = min(total, max(settings.max_total_pixels, settings.max_frames * floor))
    return total


def _error(reason: str) -> bytes:
    """A JSON error body."""
    return json.dumps({"error": reason}).encode()


def make_handler(service: TeacherService, socket_timeout_s: float = 60.0) -> type:
    """A request handler class bound to `service`."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "vopd-teacher/1"
        timeout = socket_timeout_s

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s - %s", self.address_string(), format % args)

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """Protocol errors found by `http.server` (request line, unknown method, header
            limits, HTTP version): a 4xx with a JSON reason, never its 501 / 505."""
            if code == HTTPStatus.NOT_IMPLEMENTED:  # unknown method
                code = HTTPStatus.METHOD_NOT_ALLOWED
            elif code >= 500:  # HTTP version not supported: the client's request is at fault
                code = HTTPStatus.BAD_REQUEST
            self.close_connection = True
            # Before the request line is understood the version is the default HTTP/0.9, which
            # would send the reply without its status line; answer with one.
            if self.request_version == "HTTP/0.9":
                self.request_version = "HTTP/1.0"
            self._send(int(code), _error(message or HTTPStatus(code).phrase))

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _auth(self) -> bool:
            if service.authorised(self.headers.get("Authorization")):
                return True
            self._send(401, _error("missing or wrong bearer token"))
            return False

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, json.dumps({"status": "ok"}).encode())
            elif self.path == "/info":
                if self._auth():
                    self._send(200, json.dumps(service.info()).encode())
            elif self.path == "/score":
                self._send(405, _error("use POST for /score"))
            else:
                self._send(404, _error(f"no endpoint {self.path!r}"))

        def do_POST(self) -> None:
            if self.path != "/score":
                code = 405 if self.path in ("/health", "/info") else 404
                self._send(code, _error(f"no POST endpoint {self.path!r}"))
                return
            if not self._auth():
                return
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding") or length is None:
                self._send(411, _error("a Content-Length header is required"))
                self.close_connection = True
                return
            length = length.strip()
            if not (length.isascii() and length.isdigit()) or len(length) > 20:
                self._send(400, _error("bad Content-Length (need a non-negative integer)"))
                self.close_connection = True
                return
            size = int(length)
            if size > service.max_body_bytes:
                self._send(413, _error(f"body of {size} bytes exceeds {service.max_body_bytes}"))
                self.close_connection = True
                return
            if not service.try_admit():
                busy = f"busy: {service.max_concurrency} requests already in progress"
                self._send(429, _error(busy))
                self.close_connection = True
                return
            try:
                body = self.rfile.read(size)
                if len(body) != size:
                    self._send(400, _error("body shorter than Content-Length"))
                    return
                try:
                    status, payload = service.score(body, self.headers.get("Content-Type", ""))
                except Exception:
                    log.exception("teacher scoring failed")
                    status, payload = 500, _error("internal error while scoring (see server log)")
                self._send(status, payload)
            finally:
                service.release()

        def _not_allowed(self) -> None:
            self._send(405, _error(f"method {self.command} not allowed"))

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_TRACE = do_CONNECT = _not_allowed

    return Handler


class TeacherHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer serving a `TeacherService` (daemon threads)."""

    daemon_threads = True

    def __init__(self, service: TeacherService, host: str, port: int) -> None:
        """Bind (port 0 picks a free port); refuses non-loopback hosts without a token."""
        check_bind(host, service.token)
        self.service = service
        super().__init__((host, port), make_handler(service))

    @property
    def url(self) -> str:
        """http://host:port of the bound socket."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (tests, benchmarks); returns the thread."""
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="teacher-http")
        thread.start()
        return thread
