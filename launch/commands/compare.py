"""`vopd compare [CONFIG] --objectives ... --budget ... --seeds ...`: the head-to-head report."""

from __future__ import annotations

import argparse
import math


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `compare` sub-command."""
    parser = subparsers.add_parser(
        "compare",
        help="objectives head to head under one budget, over seeds; writes a report directory",
        description=(
            "Run each objective (arm) from the same student, data order and seed under the same "
            "budget, each with its own protocol (--set ARM:KEY=VALUE), after an lr sweep per "
            "arm, evaluating on the val split at fixed step intervals; write REPORT.md (final "
            "val mIoU and time-to-target in training seconds, learner FLOPs, completions, "
            "distinct prompts and prompts seen, with ratios to GRPO; each arm's protocol; the lr "
            "sweeps and whether they separated), plots, plot_data.json, results.json and the "
            "ledgers to --out. Finished runs are reused and interrupted ones resume, so "
            "re-running the same command continues. CONFIG (default demo_opd) is the base "
            "config; with --assets (default artifacts/demo, built by `vopd prepare-demo`) the "
            "model and data paths and the reference points come from the prepared demo."
        ),
    )
    parser.add_argument("config", nargs="?", default="demo_opd", help="base YAML file or preset")
    parser.add_argument(
        "--objectives",
        default="opd,opd_full_rkl,grpo,tempsamp,sft,opd+tvdf",
        help="comma-separated arms: opd, opd_full_rkl, opd_topk_tail_rkl, grpo, tempsamp, sft, "
        "seqkd, seqkd_sampled, ARM+tvdf, and ARM@noiseNN (trained on NN%% corrupted labels)",
    )
    parser.add_argument(
        "--budget",
        default="wallclock=300",
        help="per run: wallclock=SECONDS (or 5m) | flops=N (learner FLOPs, or 3.3T) | "
        "samples=N (prompts seen) | completions=N (sampled rows; an arm that samples nothing: "
        "its training rows)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--out", default="runs/compare", help="report and runs directory")
    parser.add_argument(
        "--sweep-budget",
        default="wallclock=90",
        help="budget of each lr-sweep run (seed = first seed), e.g. wallclock=300, "
        "samples=2000 or completions=1600; 'none' skips the sweep (the middle lr is used)",
    )
    parser.add_argument(
        "--sweep-min-gap",
        type=float,
        default=2.0,
        metavar="MIOU",
        help="a sweep whose best final val mIoU leads the second best, or the blind floor, by "
        "less than this is reported as not separated (default 2)",
    )
    parser.add_argument(
        "--sweep-extend",
        default="none",
        metavar="BUDGET",
        help="rerun a not-separated sweep once at this longer budget and choose there "
        "(default none: only report it)",
    )
    parser.add_argument(
        "--lrs",
        action="append",
        default=[],
        metavar="ARM=LR,LR",
        help="an arm's lr sweep values (repeatable), e.g. grpo=1e-4,3e-4",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ARM:KEY=VALUE",
        help="an override for one arm only (repeatable), e.g. grpo:trainer.prompts_per_step=16 "
        "or grpo:trainer.objective_kwargs.filter_zero_variance=false",
    )
    parser.add_argument("--assets", default="artifacts/demo", help="prepared demo assets ('none')")
    parser.add_argument(
        "--start",
        choices=("floor", "competent"),
        default="floor",
        help="the prepared student every arm starts from (and GRPO / TempSamp-R1's KL reference): "
        "floor = the warm start at the blind floor, competent = val mIoU at 40-50%% of the "
        "teacher's gain over the floor (needs the assets)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        metavar="FLOOR,TEACHER",
        help="val mIoU of the blind floor and the teacher (else from the assets, else measured)",
    )
    parser.add_argument("--force", action="store_true", help="delete --out and start again")
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the report from the ledgers in --out"
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every arm")
    parser.set_defaults(func=_run)


def settings_from_args(args: argparse.Namespace):
    """CompareSettings from parsed arguments (ValueError with the flag named on bad input)."""
    from launch.compare import CompareSettings, arm_spec, parse_budget

    config, overrides = args.config, list(args.overrides)
    if "=" in config:  # no CONFIG given: the first positional is already an override
        config, overrides = "demo_opd", [config, *overrides]
    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    if not objectives:
        raise ValueError("--objectives: give at least one arm")
    for name in objectives:
        arm_spec(name)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--seeds {args.seeds!r}: comma-separated integers expected") from None
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    lrs: dict[str, tuple[float, ...]] = {}
    for item in args.lrs:
        arm, sep, values = item.partition("=")
        if not sep:
            raise ValueError(f"--lrs {item!r}: expected ARM=LR[,LR...]")
        try:
            lrs[arm.strip()] = tuple(float(v) for v in values.split(","))
        except ValueError:
            raise ValueError(f"--lrs {item!r}: learning rates must be numbers") from None
    arm_overrides: dict[str, tuple[str, ...]] = {}
    for item in args.set:
        arm, sep, override = item.partition(":")
        if not sep or "=" not in override:
            raise ValueError(f"--set {item!r}: expected ARM:KEY=VALUE")
        arm_overrides[arm.strip()] = (*arm_overrides.get(arm.strip(), ()), override)
    unknown = sorted((set(lrs) | set(arm_overrides)) - set(objectives))
    if unknown:
        raise ValueError(f"--lrs/--set name arms not in --objectives: {unknown}")
    references = None
    if args.reference:
        try:
            floor, teacher = (float(v) for v in args.reference.split(","))
        except ValueError:
            raise ValueError(f"--reference {args.reference!r}: expected FLOOR,TEACHER") from None
        references = {"floor": floor, "teacher": teacher}
    sweep = None if args.sweep_budget.lower() == "none" else parse_budget(args.sweep_budget)
    min_gap = float(getattr(args, "sweep_min_gap", 2.0))
    if not (math.isfinite(min_gap) and min_gap >= 0):
        raise ValueError(f"--sweep-min-gap {min_gap}: a non-negative number of mIoU points")
    extend_text = getattr(args, "sweep_extend", None) or "none"
    extend = None if extend_text.lower() == "none" else parse_budget(extend_text)
    if extend is not None:
        if sweep is None:
            raise ValueError("--sweep-extend needs a sweep (--sweep-budget is none)")
        if extend.kind == sweep.kind and extend.value <= sweep.value:
            raise ValueError(f"--sweep-extend {extend} must be longer than --sweep-budget {sweep}")
    return CompareSettings(
        config=config,
        objectives=objectives,
        budget=parse_budget(args.budget),
        seeds=seeds,
        out_dir=args.out,
        sweep_budget=sweep,
        lrs=lrs,
        assets_dir=None if args.assets.lower() == "none" else args.assets,
        overrides=tuple(overrides),
        arm_overrides=arm_overrides,
        references=references,
        start=args.start,
        sweep_min_gap=min_gap,
        sweep_extend=extend,
    )


def _run(args: argparse.Namespace) -> int:
    if args.report_only:
        from launch.compare_report import write_report

        try:
            write_report(args.out)
        except FileNotFoundError as exc:
            print(f"error: {exc}")
            return 2
        print(f"report: {args.out}/REPORT.md")
        return 0
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    from launch.compare import arm_config, arm_spec, run_compare

    try:  # check every arm's config before spending any compute
        for name in settings.objectives:
            arm = arm_spec(name)
            arm_config(settings, arm, arm.lrs[0], settings.seeds[0], settings.budget, args.out)
    except ValueError as exc:  # ConfigError is a ValueError
        print(f"error: {exc}")
        return 2
    if settings.start == "competent":
        from launch.demo_assets import load_assets

        entry = (load_assets(settings.assets_dir) or {}).get("student_competent", {})
        if entry.get("status") != "in band":
            print(f"[compare] warning: the competent student's status is {entry.get('status')!r}")
    summary = run_compare(settings, force=args.force)
    print(f"\nreport: {args.out}/REPORT.md")
    for name, arm in summary["arms"].items():
        final = arm["final_mIoU"]
        print(f"  {name:16s} val mIoU {final['mean']:5.1f} ± {final['std']:.1f} (lr {arm['lr']:g})")
    return 0
