"""The `vopd` command line: one sub-command per module in `launch.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each entry is a module in launch/commands exposing `register(subparsers)`; the sub-command's
# handler is stored as `func` on its parser defaults and returns a process exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "models",
    "demo",
    "train",
    "data",
    "score",
    "synth",
    "teacher_server",
    "eval",
    "curriculum",
    "compare",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the `vopd` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="vopd",
        description="video-opd: on-policy distillation for temporal video grounding.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"launch.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `vopd` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
