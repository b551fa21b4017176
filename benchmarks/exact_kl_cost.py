"""What the exact reverse KL adds to the learner per completion position, by vocabulary size.

The exact form (`opd_full_rkl`) reads the teacher's whole next-token distribution at every trained
position and sums over all V ids; the top-k + tail form (`opd_topk_tail_rkl`) reads K + 1 values.
Both need the student's log-softmax over V (its own log-probs), so the difference between them is
the exact term alone: an O(V) cost per completion position that does not depend on the model's
size. This times, on one CPU thread (a demo learner rank's setting), forward + backward of:

  logsoftmax_only  the student's log-softmax over V and one gathered log-prob (the common part);
  topk             the same plus the top-K + tail reverse KL against a teacher's top K;
  exact            the same plus the exact reverse KL against the teacher's whole rows;

over `--rows` x `--tokens` positions (default 8 x 24: one rank's half of a demo step), median of
`--repeats`. Writes benchmarks/results/exact_kl_cost.json with the command that made it.

Usage:
  .venv/bin/python benchmarks/exact_kl_cost.py [--vocab 400,151936] [--rows 8] [--tokens 24]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.results_io import write_results  # noqa: E402 (after the path set-up)

RESULTS = ROOT / "benchmarks" / "results" / "exact_kl_cost.json"
KINDS = ("logsoftmax_only", "topk", "exact")


def time_kind(kind: str, teacher: Any, k: int, repeats: int) -> float:
    """Median seconds of one forward + backward of `kind` against `teacher`, (rows, tokens, V)
    log-probs, over its rows x tokens positions."""
    import torch

    from trainer.objectives.opd import opd_full_rkl_loss, opd_topk_tail_rkl_loss

    generator = torch.Generator().manual_seed(1)
    mask = torch.ones(teacher.shape[:2])
    teacher_top, teacher_ids = teacher.topk(min(k, teacher.shape[-1]), -1)

    def once() -> float:
        logits = torch.randn(teacher.shape, generator=generator).requires_grad_(True)
        start = time.perf_counter()
        student = torch.log_softmax(logits, -1)
        if kind == "exact":
            loss = opd_full_rkl_loss(student, teacher, mask).loss
        elif kind == "topk":
            loss = opd_topk_tail_rkl_loss(student.gather(-1, teacher_ids), teacher_top, mask).loss
        else:
            loss = student.gather(-1, teacher_ids[..., :1]).mean()
        loss.backward()
        return time.perf_counter() - start

    once()  # warm-up
    return statistics.median(once() for _ in range(repeats))


def measure(vocabs: list[int], rows: int, tokens: int, k: int, repeats: int) -> dict[str, Any]:
    """Seconds per kind and vocabulary size, and the exact term's cost per position."""
    import torch

    torch.set_num_threads(1)
    positions = rows * tokens
    out: dict[str, Any] = {}
    for vocab in vocabs:
        generator = torch.Generator().manual_seed(0)
        teacher = torch.log_softmax(torch.randn(rows, tokens, vocab, generator=generator) * 3, -1)
        seconds = {kind: time_kind(kind, teacher, k, repeats) for kind in KINDS}
        out[str(vocab)] = {
            "seconds": {kind: round(s, 5) for kind, s in seconds.items()},
            "exact_minus_topk_ms_per_position": round(
                (seconds["exact"] - seconds["topk"]) / positions * 1e3, 4
            ),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the results JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", default="400,151936", help="comma-separated vocabulary sizes")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--k", type=int, default=20, help="the top-k signal's K")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    vocabs = [int(v) for v in args.vocab.split(",") if v.strip()]
    if not vocabs or min(vocabs) < 2 or args.rows < 1 or args.tokens < 1 or args.k < 1:
        parser.error("--vocab sizes must be >= 2 and --rows, --tokens, --k >= 1")
    results = measure(vocabs, args.rows, args.tokens, args.k, args.repeats)
    for vocab, row in results.items():
        cells = ", ".join(f"{kind} {s * 1e3:.0f} ms" for kind, s in row["seconds"].items())
        print(
            f"V={vocab}: {cells}; exact term "
            f"{row['exact_minus_topk_ms_per_position']:.3f} ms per position"
        )
    payload = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": 1},
        "positions": args.rows * args.tokens,
        "k": args.k,
        "results": results,
    }
    write_results(Path(args.out), payload, "benchmarks/exact_kl_cost.py", argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
