"""What `vopd curriculum build` writes: per-sample scores (JSONL), the selected subset (JSONL),
a histogram plot (PNG) and a summary (JSON). Files are written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curriculum.difficulty import DifficultySampler
from curriculum.rules import iou_bins
from curriculum.tvdf import TVDFSampler


def tvdf_rows(sampler: TVDFSampler, ids: Sequence[str]) -> list[dict[str, Any]]:
    """One row per training sample: teacher IoUs (k) and their mean, student IoU, delta,
    whether the teacher is reliable on it, and its rank in the selection (None: not selected)."""
    assert sampler.selection is not None and sampler.teacher_ious is not None
    assert sampler.student_ious is not None
    rank = {int(i): r for r, i in enumerate(sampler.selection.indices)}
    return [
        {
            "index": i,
            "id": sample_id,
            "teacher_ious": [round(float(v), 6) for v in sampler.teacher_ious[i]],
            "teacher_iou": round(float(sampler.teacher_ious[i].mean()), 6),
            "student_iou": round(float(sampler.student_ious[i]), 6),
            "delta": round(float(sampler.selection.delta[i]), 6),
            "reliable": bool(sampler.selection.reliable[i]),
            "selected": i in rank,
            "rank": rank.get(i),
        }
        for i, sample_id in enumerate(ids)
    ]


def difficulty_rows(sampler: DifficultySampler, ids: Sequence[str]) -> list[dict[str, Any]]:
    """One row per training sample: student IoU, its IoU bin and its sampling probability."""
    assert sampler.student_ious is not None and sampler.probs is not None
    bins = iou_bins(sampler.student_ious, sampler.bins)
    return [
        {
            "index": i,
            "id": sample_id,
            "student_iou": round(float(sampler.student_ious[i]), 6),
            "bin": int(bins[i]),
            "probability": float(sampler.probs[i]),
            "selected": bool(sampler.probs[i] > 0),
        }
        for i, sample_id in enumerate(ids)
    ]


def _write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows as JSON lines, atomically."""
    _write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def plot_histograms(
    path: Path, panels: Sequence[tuple[str, np.ndarray, np.ndarray | None]], title: str
) -> None:
    """One histogram per panel (title, every sample's values, the selected samples' values or
    None), side by side, saved as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, values, chosen) in zip(axes[0], panels, strict=True):
        lo = -1.0 if name.startswith("delta") else 0.0
        bins = np.linspace(lo, 1.0, 21)
        ax.hist(values, bins=bins, color="#9db4d0", label=f"all ({len(values)})")
        if chosen is not None:
            ax.hist(chosen, bins=bins, histtype="step", lw=2, color="#c0392b",
                    label=f"selected ({len(chosen)})")  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel(name.split(" ")[0])
        ax.set_ylabel("samples")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_report(
    out_dir: str | Path, sampler: TVDFSampler | DifficultySampler, ids: Sequence[str]
) -> dict[str, str]:
    """Write scores.jsonl (every sample), subset.jsonl (the selection: TVDF's subset in rank
    order; for difficulty sampling every sample that can be drawn, with its probability),
    histogram.png and summary.json under `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(sampler, TVDFSampler):
        rows = tvdf_rows(sampler, ids)
        subset = sorted((r for r in rows if r["selected"]), key=lambda r: r["rank"])
        picked = np.array([r["selected"] for r in rows])
        teacher = np.array([r["teacher_iou"] for r in rows])
        student = np.array([r["student_iou"] for r in rows])
        delta = np.array([r["delta"] for r in rows])
        panels = [
            ("teacher IoU (mean of k)", teacher, teacher[picked]),
            ("student IoU", student, student[picked]),
            ("delta = teacher - student", delta, delta[picked]),
        ]
        title = f"TVDF {sampler.rule.rule}: {len(subset)} of {len(rows)} selected"
    else:
        rows = difficulty_rows(sampler, ids)
        subset = [r for r in rows if r["selected"]]
        student = np.array([r["student_iou"] for r in rows])
        draws = np.random.default_rng(0).choice(len(rows), size=20 * len(rows), p=sampler.probs)
        panels = [
            ("student IoU", student, None),
            ("student IoU of drawn samples", student[draws], None),
        ]
        title = "difficulty sampling (TimeLens): student IoU before / after weighting"
    paths = {name: out / name for name in ("scores.jsonl", "subset.jsonl", "histogram.png")}
    write_jsonl(paths["scores.jsonl"], rows)
    write_jsonl(paths["subset.jsonl"], subset)
    plot_histograms(paths["histogram.png"], panels, title)
    summary = {"kind": sampler.kind, "rounds": sampler.rounds, "selected": len(subset)}
    paths["summary.json"] = out / "summary.json"
    _write_text(paths["summary.json"], json.dumps(summary, indent=2) + "\n")
    return {name: str(path) for name, path in paths.items()}
