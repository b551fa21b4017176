"""Weight sync per step: the object-store transport versus the collective one (gloo here).

Builds a tiny Qwen3-VL model of `--size` with Qwen's real 151,936-row vocabulary
(`launch.tiny_models`: the embedding and the untied LM head dominate its bytes), starts a real
learner (`trainer.learner_group.LearnerGroup`, `--ranks` ZeRO-3 ranks, fp32) and `--workers`
vLLM rollout workers (`rollout.group.RolloutGroup`), and times `--updates` weight syncs the way
the driver runs them (`RolloutGroup.sync_from` with checksums, then every engine's checksum read
back and compared). Every transport runs in a fresh driver process (its own Ray instance), so its
peak RSS is its own. Reported per transport: seconds per update (the first, which also forms the
collective group, and the median of the rest), the driver's peak RSS before and after the syncs
(`resource.getrusage`), the tensor bytes that went through the object store (what the learner
returned to the driver plus what the driver `ray.put`), and the bytes broadcast.

Usage:
    .venv/bin/python benchmarks/weight_sync.py [--size small] [--workers 2] [--updates 3]
        [--ranks 1] [--bucket-mb 256]
Writes benchmarks/results/weight_sync.json (`--size small`; other sizes weight_sync_<size>.json,
e.g. `--size ladder_0_5b`, the model ladder's ~0.5 B rung) with the command, and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))  # before benchmarks/ (its rollout.py would shadow the package)
from launch.tiny_models.configs import SIZES  # noqa: E402

TRANSPORTS = ("object_store", "collective")


def _peak_rss_mib() -> float:
    """This process's peak resident set so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _CountingSender:
    """The learner group, counting the tensor bytes its export hands to this process."""

    def __init__(self, learners: Any) -> None:
        self.learners = learners
        self.exported_bytes = 0

    def export_weights(self, bucket_bytes: int, skip_prefixes: Any) -> Any:
        buckets = self.learners.export_weights(bucket_bytes, skip_prefixes)
        self.exported_bytes += sum(t.numel() * t.element_size() for b in buckets for _, t in b)
        return buckets

    def open_weight_group(self, world_size: int, backend: str, timeout_s: float) -> Any:
        return self.learners.open_weight_group(world_size, backend, timeout_s)

    def broadcast_weights(self, *args: Any) -> Any:
        return self.learners.broadcast_weights(*args)


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """(child process) Time `args.updates` syncs through `args.transport`."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from rollout.engine_config import EngineConfig
    from rollout.group import GroupConfig, RolloutGroup
    from trainer.learner import LearnerSettings
    from trainer.learner_group import LearnerGroup

    # Room for one update's buckets: 2 GiB, or 1.5x the model when that is larger.
    model_bytes = Path(args.model, "model.safetensors").stat().st_size
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=max(2 * 1024**3, int(1.5 * model_bytes)),
        log_to_driver=False,
        configure_logging=False,
    )
    learners = rollout = None
    try:
        learners = LearnerGroup(
            LearnerSettings(model_dir=args.model, zero_stage=3, precision="fp32"),
            world_size=args.ranks,
        )
        rollout = RolloutGroup(
            EngineConfig(model=args.model, threads=1),
            GroupConfig(
                num_workers=args.workers,
                cpus_per_worker=0.5,
                bucket_bytes=args.bucket_mb * 1024 * 1024,
                transport=args.transport,
            ),
        )
        sender = _CountingSender(learners)
        rss_before = _peak_rss_mib()
        seconds = []
        checksum = ""
        for version in range(1, args.updates + 1):
            started = time.perf_counter()
            checksum, _ = rollout.sync_from(sender, version=version, checksum=True)
            found = rollout.checksums()
            seconds.append(time.perf_counter() - started)
            if any(c != checksum for c in found):
                raise RuntimeError(f"checksums {found} != {checksum}")
        transport = rollout.transport
        return {
            "transport": args.transport,
            "backend": getattr(transport, "backend", ""),
            "sync_s": seconds,
            "first_sync_s": seconds[0],
            "median_sync_s_after_first": statistics.median(seconds[1:] or seconds),
            "driver_peak_rss_mib_before_syncs": round(rss_before, 1),
            "driver_peak_rss_mib_after_syncs": round(_peak_rss_mib(), 1),
            "object_store_bytes_per_update": (
                sender.exported_bytes + getattr(transport, "bytes_put", 0)
            )
            // args.updates,
            "broadcast_bytes_per_update": getattr(transport, "bytes_sent", 0) // args.updates,
            "object_store_bytes": sender.exported_bytes + getattr(transport, "bytes_put", 0),
            "exported_to_driver_bytes": sender.exported_bytes,
            "ray_put_bytes": getattr(transport, "bytes_put", 0),
            "broadcast_bytes": getattr(transport, "bytes_sent", 0),
            "checksum": checksum,
        }
    finally:
        if rollout is not None:
            rollout.shutdown()
        if learners is not None:
            learners.shutdown()
        ray.shutdown()


def same_checksum(rows: list[dict[str, Any]]) -> bool | None:
    """Whether every transport that finished reported the same checksum (None: fewer than two
    finished)."""
    sums = [r["checksum"] for r in rows if "checksum" in r]
    return len(set(sums)) == 1 if len(sums) >= 2 else None


def main() -> None:
    """Build the model, run each transport in its own process, write and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=tuple(SIZES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--bucket-mb", type=int, default=256)
    parser.add_argument("--models-dir", default="", help="where to build the model (temp dir)")
    parser.add_argument(
        "--transports", default=",".join(TRANSPORTS), help="which to run, in this order"
    )
    parser.add_argument("--transport", default="", help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--model", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.transport:
        Path(args.out).write_text(json.dumps(run_one(args)))
        return

    from launch.tiny_models.build import ModelSpec, build_tiny_model

    models = Path(args.models_dir or tempfile.mkdtemp(prefix="weight_sync_models_"))
    model = build_tiny_model(models, ModelSpec(size=args.size, vocab_size=151936))
    from safetensors import safe_open

    with safe_open(str(model / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        model_bytes = sum(f.get_tensor(k).numel() * 4 for k in keys)
    rows = []
    for transport in args.transports.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            child = [sys.executable, __file__, *sys.argv[1:], "--transport", transport]
            child += ["--model", str(model), "--out", out.name]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            code = subprocess.run(child, env=env, cwd=ROOT).returncode
            if code != 0:  # e.g. killed for memory: a result too, recorded as such
                rows.append({"transport": transport, "failed": f"exit code {code}"})
                continue
            rows.append(json.loads(Path(out.name).read_text()))
    shown = list(sys.argv[1:])
    if "--models-dir" in shown:  # a scratch directory: not part of the measurement
        at = shown.index("--models-dir")
        del shown[at : at + 2]
    command = "benchmarks/weight_sync.py " + " ".join(shown)
    result = {
        "command": f".venv/bin/python {command}".strip(),
        "model": f"qwen3_vl-{args.size}, vocab 151936, float32",
        "model_tensors": len(keys),
        "model_bytes": model_bytes,
        "learner_ranks": args.ranks,
        "rollout_workers": args.workers,
        "updates": args.updates,
        "bucket_mb": args.bucket_mb,
        "load_average_at_end": os.getloadavg(),
        # Whether the transports that finished installed the same weights (None: under two).
        "same_checksum": same_checksum(rows),
        "results": rows,
    }
    # small: weight_sync.json (the first measurement's name); other sizes: weight_sync_<size>.json
    name = "weight_sync.json" if args.size == "small" else f"weight_sync_{args.size}.json"
    results = RESULTS / name
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"model {result['model']}: {model_bytes / 2**20:.0f} MiB, {len(keys)} tensors")
    print("| transport | first sync s | median sync s | driver peak RSS MiB (before -> after)"
          " | object-store MiB per update | broadcast MiB per update |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "failed" in r:
            print(f"| {r['transport']} | failed: {r['failed']} | | | | |")
            continue
        print(
            f"| {r['transport']} | {r['first_sync_s']:.2f} | {r['median_sync_s_after_first']:.2f}"
            f" | {r['driver_peak_rss_mib_before_syncs']:.0f} -> "
            f"{r['driver_peak_rss_mib_after_syncs']:.0f} | "
            f"{r['object_store_bytes_per_update'] / 2**20:.0f}"
            f" | {r['broadcast_bytes_per_update'] / 2**20:.0f} |"
        )


if __name__ == "__main__":
    main()
