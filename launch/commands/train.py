"""`vopd train CONFIG [key=value ...]`: run the training loop on a config file or preset."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train with a config file or preset (opd, opd_full_rkl, grpo, tempsamp, sft)",
        description=(
            "Run the on-policy loop (rollout -> teacher/rewards -> learner -> weight sync). "
            "CONFIG is a YAML file or a preset name from launch/configs/; key=value arguments "
            "override any field, e.g. trainer.steps=50 learner.lr=5e-4."
        ),
    )
    parser.add_argument("config", help="YAML file or preset name")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--print-config", action="store_true", help="print the config and exit")
    parser.add_argument(
        "--inject-fault",
        metavar="KIND@STEP",
        help=(
            "rehearse a failure (same as fault.kill=KIND@STEP; docs/FAULTS.md): KIND is teacher, "
            "rollout, learner or driver, STEP the 1-based training step; the driver fault exits "
            "with status 75, then re-run the same command with --resume"
        ),
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from launch.config import ConfigError, config_to_yaml, load_config

    try:
        overrides = list(args.overrides)
        if args.inject_fault:
            overrides.append(f"fault.kill={args.inject_fault}")
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    if args.print_config:
        print(config_to_yaml(config))
        return 0
    from launch.driver import Driver
    from launch.placement import NodeLostError, PlacementError
    from teacher_server.checks import TeacherMismatchError

    try:
        driver = Driver(config, resume=args.resume)
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    except TeacherMismatchError as exc:
        print(f"error: start-up check failed, nothing trained: {exc}")
        return 2
    except PlacementError as exc:
        print(f"error: the actor pools could not be placed, nothing trained: {exc}")
        return 1
    try:
        summary = driver.run()
    except NodeLostError as exc:
        print(f"error: {exc}")
        return 1
    finally:
        driver.shutdown()
    last = summary["last"]
    print(f"finished {summary['steps']} steps; metrics: {summary['out_dir']}/metrics.jsonl")
    if "val" in last:
        print("val: " + ", ".join(f"{k} {v:.1f}" for k, v in last["val"].items() if k != "n"))
    return 0
