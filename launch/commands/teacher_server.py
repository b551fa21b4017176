"""`vopd teacher-server`: serve teacher scoring over HTTP for a teacher on another machine."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

EPILOG = """\
endpoints: GET /health, GET /info (tokenizer hash, vision and scoring settings), POST /score
(JSON with video paths under --video-root, or safetensors with the frames). See
docs/TEACHER_SERVER.md.

security: binds 127.0.0.1 by default. Any other --host needs a bearer token, read from the
environment variable named by --token-env (default VOPD_TEACHER_TOKEN); without one the server
refuses to start. Clients send "Authorization: Bearer <token>".

exit status: 0 stopped cleanly; 1 start-up failure (model, token, bind); 2 usage error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `teacher-server` command to the `vopd` parser."""
    parser = subparsers.add_parser(
        "teacher-server",
        help="serve teacher token log-probs (sampled token + top-k) over HTTP",
        description="Score student completions with a teacher model over HTTP.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="teacher model directory")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8400, help="port (default 8400; 0 = any)")
    parser.add_argument(
        "--token-env",
        default="VOPD_TEACHER_TOKEN",
        metavar="VAR",
        help="environment variable holding the bearer token (default VOPD_TEACHER_TOKEN)",
    )
    parser.add_argument("--backend", choices=("vllm", "hf"), default="vllm")
    parser.add_argument("--top-k", type=int, default=0, help="teacher top-k per token (default 0)")
    parser.add_argument("--temperature", type=float, default=1.0, help="scoring temperature")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--max-model-len", type=int, default=4096, help="teacher context length")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per engine call")
    parser.add_argument(
        "--max-body-mb", type=float, default=256.0, help="request body limit in MiB (default 256)"
    )
    parser.add_argument("--max-concurrency", type=int, default=4, help="requests admitted at once")
    parser.add_argument(
        "--video-root",
        metavar="DIR",
        help="allow JSON requests naming video files under DIR (default: frames must be sent)",
    )
    parser.set_defaults(func=run_teacher_server)


def run_teacher_server(args: argparse.Namespace) -> int:
    """Start the scorer and serve until interrupted."""
    from teacher_server.backends import build_scorer
    from teacher_server.config import TeacherConfig
    from teacher_server.http_server import TeacherHTTPServer, TeacherService, check_bind

    token = os.environ.get(args.token_env) or None
    try:
        check_bind(args.host, token)
        _check_arguments(args)
        config = TeacherConfig(
            backend=args.backend,
            model=args.model,
            top_k=args.top_k,
            temperature=args.temperature,
            dtype=args.dtype,
            max_model_len=args.max_model_len,
            batch_size=args.batch_size,
        )
    except (PermissionError, ValueError) as exc:
        print(f"vopd teacher-server: {exc}", file=sys.stderr)
        return 1
    try:
        scorer = build_scorer(config)
    except (OSError, ValueError) as exc:
        print(f"vopd teacher-server: cannot load the teacher {args.model}: {exc}", file=sys.stderr)
        return 1
    service = TeacherService(
        scorer,
        token=token,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_concurrency=args.max_concurrency,
        video_root=args.video_root,
    )
    try:
        server = TeacherHTTPServer(service, args.host, args.port)
    except OSError as exc:
        print(f"vopd teacher-server: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    auth = "bearer token required" if token else "no auth (loopback only)"
    print(f"teacher server on {server.url} ({args.backend}, {auth})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """Reject arguments that cannot work before the model is loaded (ValueError naming them)."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    if not (math.isfinite(args.max_body_mb) and args.max_body_mb > 0):
        raise ValueError(f"--max-body-mb must be > 0, got {args.max_body_mb}")
    if args.max_concurrency < 1:
        raise ValueError(f"--max-concurrency must be >= 1, got {args.max_concurrency}")
    if not Path(args.model).is_dir():
        raise ValueError(f"--model {args.model}: no such model directory")
    if args.video_root is not None and not Path(args.video_root).is_dir():
        raise ValueError(f"--video-root {args.video_root}: no such directory")
