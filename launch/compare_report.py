"""The comparison report of `vopd compare`, rebuilt from the runs' ledgers alone.

`<out>/compare.json` names the arms, their runs, lr sweeps and the reference points (blind floor,
teacher); every number below is read from `<run>/metrics.jsonl`. Written: REPORT.md, PNG plots of
validation mIoU against training wall-clock, learner FLOPs and samples seen (one thin line per
seed, a thick mean line per arm, the floor and the teacher as reference lines), a stacked bar of
time per phase, `plot_data.json` (exactly the plotted numbers) and `results.json` (the tables), and
a copy of every ledger under `ledgers/` so any plot can be redrawn.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from launch.ledger import read_ledger

TARGET_FRACTIONS = (0.5, 0.8, 0.9)
AXES = {  # x-axis key in a curve -> label
    "train_seconds": "training wall-clock (s, evaluation excluded)",
    "learner_flops": "learner FLOPs",
    "samples_seen": "samples (prompts) seen",
}
PHASES_SKIPPED = ("step",)
BASELINE = "grpo"


def run_curve(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The evaluation points of one run: cumulative training seconds, learner FLOPs and samples
    at every step that evaluated on the val split, with the val metrics there."""
    from launch.driver import training_seconds

    curve: dict[str, list[float]] = {k: [] for k in (*AXES, "step", "mIoU", "parse_rate")}
    seconds = flops = 0.0
    for record in records:
        seconds += training_seconds(record)
        flops += float(record.get("learner_flops") or 0.0)
        if "val" not in record:
            continue
        curve["step"].append(float(record["step"]))
        curve["train_seconds"].append(seconds)
        curve["learner_flops"].append(flops)
        curve["samples_seen"].append(float(record["samples_seen"]))
        curve["mIoU"].append(float(record["val"]["mIoU"]))
        curve["parse_rate"].append(float(record["val"].get("parse_rate", float("nan"))))
    return curve


def phase_seconds(records: list[dict[str, Any]]) -> dict[str, float]:
    """Total seconds per phase over a run (rollout, teacher, learner, sync, eval, ...)."""
    totals: dict[str, float] = {}
    for record in records:
        for name, value in record.get("time", {}).items():
            if name not in PHASES_SKIPPED:
                totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def targets(references: dict[str, float]) -> dict[str, float]:
    """Val mIoU targets: floor + f x (teacher - floor) for each fraction f of the teacher's gain."""
    floor, teacher = references["floor"], references["teacher"]
    return {f"{round(f * 100)}%": floor + f * (teacher - floor) for f in TARGET_FRACTIONS}


def compute_to_target(curve: dict[str, list[float]], target: float) -> dict[str, float] | None:
    """Seconds / FLOPs / samples at the first evaluation reaching `target` (None: never)."""
    for i, value in enumerate(curve["mIoU"]):
        if value >= target:
            return {axis: curve[axis][i] for axis in AXES}
    return None


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


def summarise(out: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Curves, phases, finals and compute-to-target of every arm (mean and spread over seeds)."""
    goals = targets(state["references"])
    arms: dict[str, Any] = {}
    for name, arm in state["arms"].items():
        runs = {seed: read_ledger(out / rel / "metrics.jsonl") for seed, rel in arm["runs"].items()}
        curves = {seed: run_curve(records) for seed, records in runs.items()}
        phases = {seed: phase_seconds(records) for seed, records in runs.items()}
        finals = [c["mIoU"][-1] for c in curves.values() if c["mIoU"]]
        reach: dict[str, Any] = {}
        for label, goal in goals.items():
            hits = [compute_to_target(c, goal) for c in curves.values()]
            reached = [h for h in hits if h is not None]
            reach[label] = {
                "reached": len(reached),
                "runs": len(hits),
                **{axis: _stats([h[axis] for h in reached]) for axis in AXES},
            }
        names = sorted({p for run in phases.values() for p in run})
        arms[name] = {
            "lr": arm["lr"],
            "lr_sweep": arm.get("lr_sweep", {}),
            "notes": arm.get("notes", ""),
            "overrides": arm.get("overrides", []) + arm.get("extra_overrides", []),
            "curves": curves,
            "phases": {p: _stats([run.get(p, 0.0) for run in phases.values()]) for p in names},
            "final_mIoU": _stats(finals),
            "final_parse_rate": _stats([c["parse_rate"][-1] for c in curves.values() if c["mIoU"]]),
            "train_seconds": _stats([c["train_seconds"][-1] for c in curves.values() if c["mIoU"]]),
            "load_avg_1m": _stats(
                [r["load_avg_1m"] for run in runs.values() for r in run if "load_avg_1m" in r]
            ),
            "targets": reach,
        }
    ratios = _ratios_to_baseline(arms)
    return {"references": state["references"], "targets": goals, "arms": arms, "ratios": ratios}


def _ratios_to_baseline(arms: dict[str, Any]) -> dict[str, Any]:
    """Each arm's mean compute-to-target over GRPO's, per target and axis. When GRPO never reached
    a target within the budget the ratio is an upper bound: arm's mean / GRPO's budget."""
    base = arms.get(BASELINE)
    if base is None:
        return {}
    out: dict[str, Any] = {}
    for name, arm in arms.items():
        if name == BASELINE:
            continue
        out[name] = {}
        for label, reach in arm["targets"].items():
            mine = reach["train_seconds"]["mean"]
            theirs = base["targets"][label]
            if reach["reached"] == 0:
                out[name][label] = {"ratio": None, "kind": "not reached"}
            elif theirs["reached"] == 0:
                bound = mine / base["train_seconds"]["mean"]
                out[name][label] = {"ratio": bound, "kind": "upper bound (GRPO not reached)"}
            else:
                ratio = mine / theirs["train_seconds"]["mean"]
                out[name][label] = {"ratio": ratio, "kind": "ratio"}
    return out


def plot_data(summary: dict[str, Any]) -> dict[str, Any]:
    """Exactly the numbers drawn in the plots."""
    return {
        "references": summary["references"],
        "curves": {name: arm["curves"] for name, arm in summary["arms"].items()},
        "phases": {
            name: {p: s["mean"] for p, s in arm["phases"].items()}
            for name, arm in summary["arms"].items()
        },
    }


def _plots(out: Path, data: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    colours = plt.get_cmap("tab10")
    refs = data["references"]
    for axis, label in AXES.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, (name, curves) in enumerate(data["curves"].items()):
            colour = colours(i % 10)
            for curve in curves.values():
                ax.plot(curve[axis], curve["mIoU"], color=colour, alpha=0.35, lw=1)
            mean_x, mean_y = _mean_curve(list(curves.values()), axis)
            ax.plot(mean_x, mean_y, color=colour, lw=2.2, label=f"{name} (mean of {len(curves)})")
        ax.axhline(refs["teacher"], color="black", ls="--", lw=1, label="teacher")
        ax.axhline(refs["floor"], color="grey", ls=":", lw=1, label="blind floor")
        ax.set_xlabel(label)
        ax.set_ylabel("val mIoU")
        if axis == "learner_flops":
            ax.set_xscale("symlog")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        name = f"val_miou_vs_{axis}.png"
        _save_figure(fig, out / name)
        plt.close(fig)
        files.append(name)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    arms = list(data["phases"])
    phases = sorted({p for values in data["phases"].values() for p in values})
    bottom = np.zeros(len(arms))
    for j, phase in enumerate(phases):
        heights = np.array([data["phases"][a].get(phase, 0.0) for a in arms])
        ax.bar(arms, heights, bottom=bottom, label=phase, color=colours(j % 10))
        bottom += heights
    ax.set_ylabel("seconds per run (mean over seeds)")
    ax.set_title("time per phase")
    ax.legend(fontsize=7)
    plt.setp(ax.get_xticklabels(), rotation=20)
    fig.tight_layout()
    _save_figure(fig, out / "time_per_phase.png")
    plt.close(fig)
    files.append("time_per_phase.png")
    return files


def _save_figure(fig: Any, path: Path) -> None:
    tmp = path.with_name(".tmp_" + path.name)
    fig.savefig(tmp, dpi=110, format="png")
    os.replace(tmp, path)


def _mean_curve(curves: list[dict[str, list[float]]], axis: str) -> tuple[list[float], list[float]]:
    """Mean over seeds, point by point up to the shortest run (evaluations are every N steps)."""
    length = min((len(c["mIoU"]) for c in curves), default=0)
    xs = [float(np.mean([c[axis][i] for c in curves])) for i in range(length)]
    ys = [float(np.mean([c["mIoU"][i] for c in curves])) for i in range(length)]
    return xs, ys


def _fmt(stats: dict[str, float], digits: int = 1, scale: float = 1.0) -> str:
    if not stats["n"]:
        return "—"
    mean, std = stats["mean"] / scale, stats["std"] / scale
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if stats["n"] > 1 else f"{mean:.{digits}f}"


def markdown(summary: dict[str, Any], state: dict[str, Any], plots: list[str]) -> str:
    """The human-readable report."""
    settings = state["settings"]
    refs = summary["references"]
    lines = [
        "# Objective comparison",
        "",
        f"Base config `{settings['config']}`, budget **{settings['budget']}** per run "
        f"(training wall-clock excludes evaluation), seeds {list(settings['seeds'])}, "
        f"lr sweep budget {settings['sweep_budget'] or 'none'} (seed {settings['seeds'][0]}). "
        "Every arm starts from the same student, sees the same data order for a seed and runs "
        "on the same machine, one run at a time.",
        "",
        f"Reference points (val): blind floor **{refs['floor']:.1f}**, teacher "
        f"**{refs['teacher']:.1f}** mIoU. Targets = floor + f x (teacher - floor): "
        + ", ".join(f"{k} = {v:.1f}" for k, v in summary["targets"].items())
        + ".",
        "",
        "## Final validation metrics at the budget",
        "",
        "| arm | lr | val mIoU | parse rate % | training s | seeds | machine load (1-min avg) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, arm in summary["arms"].items():
        lines.append(
            f"| {name} | {arm['lr']:g} | {_fmt(arm['final_mIoU'])} | "
            f"{_fmt(arm['final_parse_rate'])} | {_fmt(arm['train_seconds'], 0)} | "
            f"{arm['final_mIoU']['n']} | {_fmt(arm['load_avg_1m'])} |"
        )
    lines += [
        "",
        "## Compute to target (mean ± spread over the seeds that reached it)",
        "",
        "| arm | target | reached | training s | learner GFLOPs | samples | time vs GRPO |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, arm in summary["arms"].items():
        for label, reach in arm["targets"].items():
            ratio = summary["ratios"].get(name, {}).get(label)
            if name == BASELINE:
                ratio_text = "1 (baseline)" if reach["reached"] else "—"
            elif ratio is None or ratio["ratio"] is None:
                ratio_text = "—"
            elif ratio["kind"].startswith("upper"):
                ratio_text = f"< {ratio['ratio']:.2f} (GRPO never reached it)"
            else:
                ratio_text = f"{ratio['ratio']:.2f}"
            reached = f"{reach['reached']}/{reach['runs']}"
            if not reach["reached"]:
                reached += " (not reached)"
            lines.append(
                f"| {name} | {label} ({summary['targets'][label]:.1f}) | {reached} | "
                f"{_fmt(reach['train_seconds'], 0)} | {_fmt(reach['learner_flops'], 2, 1e9)} | "
                f"{_fmt(reach['samples_seen'], 0)} | {ratio_text} |"
            )
    lines += ["", "## What each arm is, and what was tried", ""]
    for name, arm in summary["arms"].items():
        sweep = ", ".join(f"{float(lr):g}: {value:.1f}" for lr, value in arm["lr_sweep"].items())
        lines.append(
            f"- **{name}** — {arm['notes']}. Overrides: `{' '.join(arm['overrides'])}`. "
            + (
                f"lr sweep (final val mIoU): {sweep}; chose {arm['lr']:g}."
                if sweep
                else f"lr {arm['lr']:g} (no sweep)."
            )
        )
    lines += ["", "## Time per phase (seconds per run, mean over seeds)", ""]
    phases = sorted({p for a in summary["arms"].values() for p in a["phases"]})
    lines.append("| arm | " + " | ".join(phases) + " |")
    lines.append("|---|" + "---|" * len(phases))
    for name, arm in summary["arms"].items():
        cells = [_fmt(arm["phases"][p], 1) if p in arm["phases"] else "—" for p in phases]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Plots", ""]
    lines += [f"![{p}]({p})" for p in plots]
    lines += [
        "",
        "Raw ledgers: `ledgers/` (one JSONL per run); the plotted numbers: `plot_data.json`; the "
        "tables: `results.json`.",
        "",
    ]
    return "\n".join(lines)


def write_report(out: str | Path) -> dict[str, Any]:
    """Rebuild every report file of `<out>` from compare.json and the ledgers; return the data."""
    out = Path(out)
    state = json.loads((out / "compare.json").read_text())
    summary = summarise(out, state)
    ledgers = out / "ledgers"
    ledgers.mkdir(exist_ok=True)
    for name, arm in state["arms"].items():
        for seed, rel in arm["runs"].items():
            shutil.copyfile(out / rel / "metrics.jsonl", ledgers / f"{name}_seed{seed}.jsonl")
    data = plot_data(summary)
    _write(out / "plot_data.json", json.dumps(_clean(data), indent=1))
    plots = _plots(out, data)
    _write(out / "results.json", json.dumps(_clean(summary), indent=1))
    _write(out / "REPORT.md", markdown(summary, state, plots))
    return summary


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(".tmp_" + path.name)
    tmp.write_text(text)
    os.replace(tmp, path)
