"""Soak: a long tiny OPD run with the resident memory (RSS) of every process sampled every step.

Builds (or reuses) the tiny Qwen3-VL student and teacher and a small synthetic level-1 dataset
under a work directory (default artifacts/soak/), then runs the demo preset's loop
(`launch/configs/demo_opd.yaml`: exact reverse KL, 2 ZeRO-2 learner ranks, 1 vLLM rollout worker,
1 transformers teacher worker) at a tiny size — 4 prompts per step, evaluation every 50 steps, a
checkpoint every 100 — through `launch.driver.Driver` in this process, calling `train_step()` in
its own loop. After Driver start-up (step 0) and after every step it samples, with psutil, the RSS
(and USS / PSS) of this (driver) process and of every process under it: the Ray actors (process
titles `ray::RolloutWorker`, `ray::TeacherWorker`, `ray::Learner`, ...), idle Ray workers, the
raylet, the GCS and Ray's agents. Only this process's descendants are read, so other Ray sessions
on the machine are not counted. It also records the driver's Ray object references
(`get_all_reference_counts`), the teacher pool's per-call ledger length and, every 10 steps, the
driver's gc object count.

Per process it reports the RSS at the end of warm-up (default: after step `steps // 10`, i.e. 20 of
200), at the end, the maximum, the growth after warm-up ((final - warm-up) / warm-up) and a
least-squares slope over the post-warm-up samples in MB per 100 steps; a process passes when its
growth stays under the limit (default 10%). Processes that exist at both the warm-up step and the
end are judged; short-lived ones (idle Ray workers) are listed for information.

Usage:
    .venv/bin/python benchmarks/soak.py [--steps 200] [--warmup 20] [--objective opd_full_rkl]
        [--out benchmarks/results/soak.json] [--set key=value ...]
Writes the results JSON (command, machine, per-process table, verdict), the per-step samples as
CSV (<out stem>_samples.csv) and a plot (<out stem>_rss.png), with repository-relative paths only,
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import gc
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "soak.json"
ARTIFACTS = REPO / "artifacts" / "soak"
GROWTH_LIMIT_PCT = 10.0
MB = 1024.0 * 1024.0
GC_EVERY = 10  # gc.get_objects() is slow on a process holding torch + vLLM: sample it sparsely

# Ray's own helper processes, recognised by a fragment of their command line.
RAY_HELPERS = (
    ("log_monitor.py", "ray_log_monitor"),
    ("dashboard/agent.py", "ray_dashboard_agent"),
    ("runtime_env/agent/main.py", "ray_runtime_env_agent"),
    ("dashboard/dashboard.py", "ray_dashboard"),
    ("monitor.py", "ray_monitor"),
)


# ---------------------------------------------------------------------------- pure analysis
def growth_pct(warm: float, final: float) -> float:
    """Growth from `warm` to `final` in percent of `warm` (inf when warm <= 0 and final > 0)."""
    if warm <= 0:
        return 0.0 if final <= warm else float("inf")
    return (final - warm) / warm * 100.0


def slope_per_100_steps(steps: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of `values` against `steps`, in value units per 100 steps (0 for < 2
    points or a single distinct step)."""
    x = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.size < 2 or np.ptp(x) == 0:
        return 0.0
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum() * 100.0)


def value_at_or_after(steps: Sequence[int], values: Sequence[float], step: int) -> float | None:
    """The value sampled at `step`, else the first one after it; None when there is none."""
    for s, v in sorted(zip(steps, values, strict=True)):
        if s >= step:
            return float(v)
    return None


def analyse_series(
    steps: Sequence[int],
    values_mb: Sequence[float],
    warmup: int,
    last_step: int,
    limit_pct: float = GROWTH_LIMIT_PCT,
) -> dict[str, Any]:
    """Analyse one process's memory series (MB per sampled step) after warm-up.

    Returns the value at the end of warm-up (`warmup_mb`, the sample at `warmup` or the first after
    it), the final value (`final_mb`), the maximum after warm-up (`max_mb`), `growth_pct`
    ((final - warm-up) / warm-up), `max_growth_pct`, the least-squares `slope_mb_per_100_steps`
    over the samples from warm-up on, and `judged` / `passed`: a series is judged when it has a
    sample at `warmup` and at `last_step` (a process alive across the whole post-warm-up window),
    and it passes when its growth stays under `limit_pct`. Unjudged series have `passed` None.
    """
    pairs = sorted(zip(steps, values_mb, strict=True))
    after = [(s, v) for s, v in pairs if s >= warmup]
    present = {s for s, _ in pairs}
    result: dict[str, Any] = {
        "first_step": pairs[0][0] if pairs else None,
        "last_step": pairs[-1][0] if pairs else None,
        "samples": len(pairs),
    }
    if not after:
        return {**result, "judged": False, "passed": None}
    warm = after[0][1]
    final = after[-1][1]
    peak = max(v for _, v in after)
    judged = warmup in present and last_step in present
    growth = growth_pct(warm, final)
    result.update(
        warmup_mb=round(warm, 2),
        final_mb=round(final, 2),
        max_mb=round(peak, 2),
        growth_pct=round(growth, 2),
        max_growth_pct=round(growth_pct(warm, peak), 2),
        slope_mb_per_100_steps=round(slope_per_100_steps(*zip(*after, strict=True)), 3),
        judged=judged,
        passed=(growth < limit_pct) if judged else None,
    )
    return result


def verdict(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Overall pass/fail over the judged processes of an analysis table."""
    judged = {k: v for k, v in table.items() if v.get("judged")}
    failed = sorted(k for k, v in judged.items() if not v["passed"])
    return {"passed": bool(judged) and not failed, "judged": sorted(judged), "failed": failed}


def classify(cmdline: Sequence[str], name: str) -> str:
    """A process's kind from its command line / name: "ray::<Actor class>" titles give the class
    (method suffix dropped: "ray::Learner.train_step" -> "Learner"), "ray::IDLE" -> "ray_idle",
    the raylet and the GCS by name, Ray's helper scripts by path, anything else by name."""
    first = cmdline[0] if cmdline else ""
    if first.startswith("ray::"):
        title = first[len("ray::") :].split()[0] if first[len("ray::") :].strip() else ""
        title = title.split(".")[0]
        return "ray_idle" if title in ("", "IDLE") else title
    if name in ("raylet", "gcs_server"):
        return name
    joined = " ".join(cmdline)
    for fragment, kind in RAY_HELPERS:
        if fragment in joined:
            return kind
    return name or "unknown"


# ---------------------------------------------------------------------------- sampling
@dataclass
class ProcessSampler:
    """Samples RSS / USS / PSS of the root (driver) process and all its descendants.

    Labels are stable per (pid, kind): the first `Learner` seen is "Learner#0", the next one
    "Learner#1"; a restarted actor (new pid) gets the next free index, so it shows up as a
    separate series.
    """

    root_pid: int
    full_info: bool = True
    labels: dict[tuple[int, str], str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def _label(self, pid: int, kind: str) -> str:
        key = (pid, kind)
        if key not in self.labels:
            if pid == self.root_pid:
                self.labels[key] = "driver"
            else:
                index = self.counters.get(kind, 0)
                self.counters[kind] = index + 1
                self.labels[key] = f"{kind}#{index}"
        return self.labels[key]

    def sample(self) -> dict[str, dict[str, Any]]:
        """{label: {pid, kind, rss_mb, uss_mb, pss_mb}} for the root and every live descendant."""
        import psutil

        root = psutil.Process(self.root_pid)
        procs: list[psutil.Process] = [root]
        with contextlib.suppress(psutil.Error):
            procs += root.children(recursive=True)
        out: dict[str, dict[str, Any]] = {}
        for proc in procs:
            try:
                with proc.oneshot():
                    kind = (
                        "driver"
                        if proc.pid == self.root_pid
                        else (classify(proc.cmdline(), proc.name()))
                    )
                    row: dict[str, Any] = {"pid": proc.pid, "kind": kind}
                    if self.full_info:
                        info = proc.memory_full_info()
                        row["uss_mb"] = round(info.uss / MB, 3)
                        row["pss_mb"] = round(getattr(info, "pss", 0) / MB, 3)
                    else:
                        info = proc.memory_info()
                    row["rss_mb"] = round(info.rss / MB, 3)
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            out[self._label(proc.pid, kind)] = row
        return out


def driver_diagnostics(driver: Any, step: int) -> dict[str, Any]:
    """Cheap leak indicators in the driver: Ray object references it holds, the teacher pool's
    per-call ledger length, the load average and (every GC_EVERY steps) the gc object count."""
    out: dict[str, Any] = {"load1": round(os.getloadavg()[0], 2)}
    try:
        import ray

        core = ray._private.worker.global_worker.core_worker
        out["driver_object_refs"] = len(core.get_all_reference_counts())
    except Exception:  # private API: a diagnostic only
        out["driver_object_refs"] = None
    for name in ("teacher", "reference"):
        pool = getattr(driver, name, None)
        if pool is not None and hasattr(pool, "ledger"):
            out[f"{name}_pool_ledger_len"] = len(pool.ledger)
    if step % GC_EVERY == 0:
        out["driver_gc_objects"] = len(gc.get_objects())
    return out


# ---------------------------------------------------------------------------- set-up
def ensure_assets(work: Path, n_train: int, n_val: int, seed: int) -> tuple[Path, Path]:
    """Build (or reuse) the tiny Qwen3-VL student/teacher and the synthetic dataset under `work`;
    return (models dir, data dir)."""
    from launch.tiny_models import build_tiny_models
    from tvg.synth import write_dataset

    models = work / "models"
    build_tiny_models(models, families=("qwen3_vl",), seed=seed)  # reused when already built
    data = work / f"data-l1-s{seed}-{n_train}-{n_val}"
    if not (data / "stats.json").is_file():
        tmp = data.with_name(data.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        write_dataset(tmp, n_train=n_train, n_val=n_val, n_test=0, seed=seed)
        shutil.rmtree(data, ignore_errors=True)
        os.replace(tmp, data)
    return models, data


def run_overrides(args: argparse.Namespace, models: Path, data: Path, run_dir: Path) -> list[str]:
    """The demo_opd preset's overrides for the tiny soak run (absolute paths: Ray workers need not
    share the driver's working directory; the results file writes them repository-relative)."""
    n = args.n if args.n is not None else (1 if args.objective.startswith("opd") else 4)
    return [
        f"out_dir={run_dir}",
        f"model.student={models / 'qwen3_vl-student'}",
        f"model.teacher={models / 'qwen3_vl-teacher'}",
        f"data.train={data / 'train.json'}",
        f"data.val={data / 'val.json'}",
        f"data.video_root={data / 'videos'}",
        f"trainer.objective={args.objective}",
        f"trainer.steps={args.steps}",
        "trainer.budget_s=null",
        f"trainer.prompts_per_step={args.prompts_per_step}",
        f"trainer.seed={args.seed}",
        f"rollout.n={n}",
        f"eval.every_steps={args.eval_every}",
        f"checkpoint.every_steps={args.checkpoint_every}",
        "checkpoint.keep_last=1",
        *args.set,
    ]


def rel(path: Path | str) -> str:
    """`path` relative to the repository when it lies inside it, else unchanged."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(path)


def machine_info() -> dict[str, Any]:
    """Cores, memory, platform and library versions of this machine."""
    import psutil

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "processor": platform.machine(),
        "python": platform.python_version(),
    }
    for module in ("torch", "vllm", "ray", "deepspeed", "transformers", "psutil"):
        try:
            info[module] = __import__(module).__version__
        except Exception:
            info[module] = None
    return info


# ---------------------------------------------------------------------------- outputs
def analyse(
    samples: list[dict[str, Any]], warmup: int, last_step: int, limit_pct: float
) -> dict[str, dict[str, Any]]:
    """Per-label analysis of the RSS series (plus the USS growth, for diagnosis)."""
    series: dict[str, dict[str, list[float]]] = {}
    kinds: dict[str, str] = {}
    for record in samples:
        for label, row in record["procs"].items():
            s = series.setdefault(label, {"step": [], "rss": [], "uss": []})
            s["step"].append(record["step"])
            s["rss"].append(row["rss_mb"])
            s["uss"].append(row.get("uss_mb", float("nan")))
            kinds[label] = row["kind"]
    table: dict[str, dict[str, Any]] = {}
    for label, s in series.items():
        result = analyse_series(s["step"], s["rss"], warmup, last_step, limit_pct)
        uss = analyse_series(s["step"], s["uss"], warmup, last_step, limit_pct)
        result["kind"] = kinds[label]
        if "growth_pct" in uss:
            result["uss_warmup_mb"] = uss["warmup_mb"]
            result["uss_final_mb"] = uss["final_mb"]
            result["uss_growth_pct"] = uss["growth_pct"]
        table[label] = result
    order = ("driver", "RolloutWorker", "TeacherWorker", "Learner", "raylet", "gcs_server")

    def key(label: str) -> tuple[int, str]:
        kind = kinds[label]
        return (order.index(kind) if kind in order else len(order), label)

    return {label: table[label] for label in sorted(table, key=key)}


def write_samples_csv(path: Path, samples: list[dict[str, Any]]) -> None:
    """One row per (step, process): step, seconds since start, label, kind, pid, RSS/USS/PSS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "t_s", "label", "kind", "pid", "rss_mb", "uss_mb", "pss_mb"])
        for record in samples:
            for label, row in record["procs"].items():
                writer.writerow(
                    [
                        record["step"],
                        record["t_s"],
                        label,
                        row["kind"],
                        row["pid"],
                        row["rss_mb"],
                        row.get("uss_mb", ""),
                        row.get("pss_mb", ""),
                    ]
                )


def plot(path: Path, samples: list[dict[str, Any]], table: dict[str, Any], warmup: int) -> None:
    """RSS per judged process against the step, warm-up end marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # more than 10 series: no repeated colours
    for label, row in table.items():
        if not row.get("judged"):
            continue
        xs = [r["step"] for r in samples if label in r["procs"]]
        ys = [r["procs"][label]["rss_mb"] for r in samples if label in r["procs"]]
        ax.plot(xs, ys, label=f"{label} ({row['growth_pct']:+.1f}%)")
    ax.axvline(warmup, color="grey", linestyle="--", linewidth=1, label=f"warm-up end ({warmup})")
    ax.set_xlabel("step")
    ax.set_ylabel("RSS (MB)")
    ax.set_yscale("log")
    ax.set_title("Soak: RSS per process (tiny OPD run)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(table: dict[str, dict[str, Any]], warmup: int) -> str:
    """The per-process table as Markdown."""
    lines = [
        f"| process | RSS after step {warmup} (MB) | final (MB) | max (MB) | growth | "
        "slope (MB / 100 steps) | USS growth | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in table.items():
        if "growth_pct" not in r:
            continue
        mark = {True: "pass", False: "**FAIL**", None: "not judged"}[r["passed"]]
        if r["passed"] is None:
            mark += f" (steps {r['first_step']}-{r['last_step']})"
        uss = f"{r['uss_growth_pct']:+.1f}%" if "uss_growth_pct" in r else ""
        lines.append(
            f"| {label} | {r['warmup_mb']:,.1f} | {r['final_mb']:,.1f} | {r['max_mb']:,.1f} | "
            f"{r['growth_pct']:+.1f}% | {r['slope_mb_per_100_steps']:+.2f} | {uss} | {mark} |"
        )
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` atomically, with every path inside the repository made relative."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    text = json.dumps(payload, indent=1, default=str).replace(str(REPO) + "/", "")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def series_summary(samples: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """First, min, max and last value of a driver diagnostic across samples; `at`: the step of
    the last value."""
    values = [(r["step"], r["diag"].get(key)) for r in samples if r["diag"].get(key) is not None]
    if not values:
        return None
    vs = [v for _, v in values]
    return {"first": vs[0], "min": min(vs), "max": max(vs), "last": vs[-1], "at": values[-1][0]}


# ---------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="training steps")
    p.add_argument(
        "--warmup", type=int, default=None, help="warm-up steps (default: steps // 10, >= 1)"
    )
    p.add_argument("--objective", default="opd_full_rkl", help="trainer.objective")
    p.add_argument("--n", type=int, default=None, help="samples per prompt (default 1, GRPO 4)")
    p.add_argument("--prompts-per-step", type=int, default=4)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--n-val", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-pct", type=float, default=GROWTH_LIMIT_PCT, help="growth limit, %%")
    p.add_argument("--work-dir", default=str(ARTIFACTS), help="models, data and the run")
    p.add_argument("--out", default=str(RESULTS), help="results JSON")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override"
    )
    a = p.parse_args(argv)
    if a.warmup is None:
        a.warmup = max(1, a.steps // 10)
    if not 0 <= a.warmup < a.steps:
        p.error("--warmup must be in [0, steps)")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and write its results; exit status 1 when a judged process fails."""
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    for key, value in {
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(key, value)
    from runtime.vllm_env import apply_vllm_cpu_defaults

    apply_vllm_cpu_defaults()
    from tqdm import tqdm

    from launch.config import load_config

    command = shlex.join(
        [".venv/bin/python", "benchmarks/soak.py", *(sys.argv[1:] if argv is None else argv)]
    )
    out = Path(args.out).resolve()
    samples_path = out.with_name(out.stem + "_samples.csv")
    plot_path = out.with_name(out.stem + "_rss.png")
    work = Path(args.work_dir).resolve()
    wall0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC)
    print(f"[soak] assets under {rel(work)}")
    models, data = ensure_assets(work, args.n_train, args.n_val, args.seed)
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = run_overrides(args, models, data, run_dir)
    config = load_config("demo_opd", overrides)

    from launch.driver import Driver

    sampler = ProcessSampler(os.getpid())
    samples: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    driver = Driver(config)
    startup_s = time.perf_counter() - t_start
    t_loop = time.perf_counter()
    sample_s = 0.0

    def take(step: int, record: dict[str, Any] | None) -> None:
        nonlocal sample_s
        t = time.perf_counter()
        procs = sampler.sample()
        diag = driver_diagnostics(driver, step)
        if record is not None:
            diag["step_s"] = round(float(record["time"]["step"]), 3)
            diag["evaluated"] = "val" in record
            diag["checkpointed"] = "checkpoint" in record
        samples.append(
            {
                "step": step,
                "t_s": round(time.perf_counter() - t_loop, 2),
                "procs": procs,
                "diag": diag,
            }
        )
        sample_s += time.perf_counter() - t

    records: list[dict[str, Any]] = []
    try:
        take(0, None)
        bar = tqdm(range(args.steps), desc=f"soak {args.objective}", unit="step")
        for _ in bar:
            record = driver.train_step()
            take(driver.step, record)
            records.append(
                {k: record.get(k) for k in ("step", "loss", "iou_mean")}
                | {"val": record.get("val")}
            )
            procs = samples[-1]["procs"]
            bar.set_postfix(
                driver=f"{procs['driver']['rss_mb']:.0f}MB",
                total=f"{sum(p['rss_mb'] for p in procs.values()) / 1024:.2f}GB",
            )
        bar.close()
    finally:
        driver.shutdown()
        import ray

        ray.shutdown()
    loop_s = time.perf_counter() - t_loop
    last_step = samples[-1]["step"]
    table = analyse(samples, args.warmup, last_step, args.limit_pct)
    overall = verdict(table)
    write_samples_csv(samples_path, samples)
    files = {"samples_csv": rel(samples_path)}
    if not args.no_plot:
        plot(plot_path, samples, table, args.warmup)
        files["plot"] = rel(plot_path)
    totals = [sum(p["rss_mb"] for p in r["procs"].values()) for r in samples]
    steps_all = [r["step"] for r in samples]
    total = analyse_series(steps_all, totals, args.warmup, last_step, args.limit_pct)
    payload = {
        "what": (
            "Soak: RSS of the driver and of every Ray process under it, sampled after every step "
            "of a tiny OPD run (demo_opd preset, tiny sizes)"
        ),
        "command": command,
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(),
        "config": {
            "preset": "demo_opd",
            "overrides": overrides,
            "steps": args.steps,
            "warmup": args.warmup,
            "warmup_rule": "values after step `warmup` (default steps // 10) are the baseline",
            "limit_pct": args.limit_pct,
            "dataset": {"dir": rel(data), "n_train": args.n_train, "n_val": args.n_val},
        },
        "seconds": {
            "wall": round(time.perf_counter() - wall0, 1),
            "driver_startup": round(startup_s, 1),
            "loop": round(loop_s, 1),
            "sampling": round(sample_s, 1),
        },
        "verdict": overall,
        "processes": table,
        "sum_of_rss": total,
        "driver_diagnostics": {
            key: series_summary(samples, key)
            for key in (
                "driver_object_refs",
                "teacher_pool_ledger_len",
                "reference_pool_ledger_len",
                "driver_gc_objects",
                "load1",
            )
        },
        "training": {"first": records[:1], "last": records[-1:]},
        "files": files,
    }
    write_json(out, payload)
    print()
    print(markdown_table(table, args.warmup))
    print(
        f"\nsum of RSS: {total['warmup_mb']:,.0f} MB after step {args.warmup} -> "
        f"{total['final_mb']:,.0f} MB ({total['growth_pct']:+.1f}%)"
    )
    print(
        f"verdict: {'PASS' if overall['passed'] else 'FAIL'} "
        f"(limit {args.limit_pct:g}% after warm-up; failed: {overall['failed'] or 'none'})"
    )
    print(f"wall-clock {payload['seconds']['wall']} s; wrote {rel(out)}, {files}")
    print(f"command: {command}")
    return 0 if overall["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
