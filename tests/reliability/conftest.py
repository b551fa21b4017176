"""Fixtures of the reliability tests: small (bad) videos and teacher services on a cheap scorer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_helpers import (
    MAX_BODY,
    TOKEN,
    CheckingScorer,
    stub_config,
    write_bad_videos,
    write_clip,
)

from teacher_server.http_server import TeacherHTTPServer, TeacherService


@pytest.fixture(scope="session")
def video_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one good clip (clip.mp4) and bad ones (empty, truncated, text, a folder)."""
    root = tmp_path_factory.mktemp("reliability_videos")
    write_bad_videos(root, write_clip(root / "clip.mp4"))
    return root


@pytest.fixture(scope="session")
def stub_scorer() -> CheckingScorer:
    """The cheap scorer with the real input checks (shared tiny tokenizer)."""
    return CheckingScorer(stub_config())


def _serve(service: TeacherService) -> Iterator[TeacherHTTPServer]:
    server = TeacherHTTPServer(service, "127.0.0.1", 0)
    server.start_background()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def stub_server(stub_scorer: CheckingScorer, video_root: Path) -> Iterator[TeacherHTTPServer]:
    """The teacher HTTP service on 127.0.0.1 (token on, 1 MiB bodies, video root set)."""
    service = TeacherService(
        stub_scorer,
        token=TOKEN,
        max_body_bytes=MAX_BODY,
        max_concurrency=4,
        video_root=str(video_root),
    )
    yield from _serve(service)


@pytest.fixture
def gated_server(video_root: Path) -> Iterator[tuple[TeacherHTTPServer, threading.Event]]:
    """A service (max_concurrency=2) whose scorer blocks until the returned event is set."""
    gate = threading.Event()
    scorer = CheckingScorer(stub_config(), gate=gate)
    service = TeacherService(
        scorer, token=TOKEN, max_body_bytes=MAX_BODY, max_concurrency=2, video_root=str(video_root)
    )
    server = TeacherHTTPServer(service, "127.0.0.1", 0)
    server.start_background()
    try:
        yield server, gate
    finally:
        gate.set()
        server.shutdown()
        server.server_close()
