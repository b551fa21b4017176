"""`vopd demo` and `vopd prepare-demo`: the main job on the embedded default."""

from __future__ import annotations

import argparse

QUICK = {  # a shortened run for tests and smoke checks: same code path, tiny budgets
    "n_train": 48,
    "n_val": 8,
    "n_test": 8,
    "teacher_steps": 12,
    "student_steps": 4,
    "eval_every": 12,
    # The competent student's search runs (2 steps, one evaluation) but is not required to land
    # in its band: it is recorded as "quick: not in band".
    "competent_max_steps": 2,
    "competent_eval_every": 2,
    "quick": True,
}
QUICK_OVERRIDES = ["trainer.steps=3", "trainer.prompts_per_step=4", "eval.every_steps=3"]


def _add_asset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="artifacts/demo", help="assets and report directory")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, models and training")
    parser.add_argument("--force", action="store_true", help="rebuild the cached assets")
    parser.add_argument(
        "--quick", action="store_true", help="tiny budgets (a smoke test of the same path)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` and `prepare-demo` sub-commands."""
    demo = subparsers.add_parser(
        "demo",
        help="the main job: prepare assets, run OPD, evaluate before/after (~15 min on 2 cores)",
        description=(
            "Prepare (or reuse) the demo assets, run on-policy distillation through the full "
            "distributed loop, and print the student's test metrics before and after next to "
            "the blind floor and the teacher. Extra key=value arguments override the run config "
            "(launch/configs/demo_opd.yaml)."
        ),
    )
    _add_asset_arguments(demo)
    demo.add_argument("overrides", nargs="*", help="key=value overrides of the OPD run")
    demo.set_defaults(func=_demo)
    prepare = subparsers.add_parser(
        "prepare-demo",
        help=(
            "build and cache the demo assets (data, trained teacher, floor student, competent "
            "student)"
        ),
        description=(
            "Build (or reuse) the demo's synthetic dataset, a teacher trained to competence, a "
            "student warm-started to the blind floor (it knows the answer format only) and a "
            "competent student (the floor student trained on until its val mIoU lies at 40-50% "
            "of the teacher's gain over the blind floor). Recorded in OUT/assets.json; cached "
            "stages are reused unless --force."
        ),
    )
    _add_asset_arguments(prepare)
    prepare.set_defaults(func=_prepare)


def _settings(args: argparse.Namespace):
    from launch.demo_assets import DemoAssetSettings

    extra = QUICK if args.quick else {}
    return DemoAssetSettings(out_dir=args.out, seed=args.seed, **extra)


def _prepare(args: argparse.Namespace) -> int:
    from launch.demo_assets import prepare_demo

    assets = prepare_demo(_settings(args), force=args.force)
    print(f"[prepare-demo] assets: {args.out}/assets.json")
    for role in ("teacher", "student"):
        metrics = assets["metrics"][role]["val"]
        print(f"  {role:8s} val mIoU {metrics['mIoU']:5.1f}  parse {metrics['parse_rate']:5.1f}%")
    print(f"  blind floor (val) mIoU {assets['blind_floor']['val']:.1f}")
    competent = assets["student_competent"]
    low, high = competent["band"]["mIoU"]
    print(
        f"  competent student val mIoU {competent['val']['mIoU']:5.1f}  test "
        f"{competent['test']['mIoU']:5.1f}  ({competent['status']}: band [{low:.1f}, "
        f"{high:.1f}], after {competent['step']} more steps)"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from launch.demo import print_demo_report, run_demo

    overrides = [*(QUICK_OVERRIDES if args.quick else []), *args.overrides]
    report = run_demo(_settings(args), overrides, force=args.force)
    print_demo_report(report)
    return 0
