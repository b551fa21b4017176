#!/usr/bin/env bash
# The rest of the papers' arms on the same build and protocol as benchmarks/fair_reuse.sh (and
# fair_floor): the paper's sampled-token OPD (`opd`), top-20 + tail OPD (`opd_topk_tail_rkl`),
# exact reverse-KL OPD on the TVDF subset (`opd_full_rkl+tvdf`: TVDF against the uniform sampling
# of fair_reuse's `opd_full_rkl`) and SFT on the ground truth (`sft`), 3 seeds, 4,800 completions
# each (SFT: its training rows), val (100 videos) every 50 steps. lrs: the OPD arms at the demo's
# 1e-3 (the lr the exact arm uses in fair_reuse), SFT at 2e-3 (the winner of its {1e-3, 2e-3}
# sweep in benchmarks/noisy_labels.sh). START picks the student every arm starts from.
# Usage (after `vopd prepare-demo`): bash benchmarks/fair_rest.sh [competent|floor] [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
START=${1:-competent}
OUT=${2:-artifacts/fair_rest_$START}
.venv/bin/vopd compare --start "$START" \
  --objectives opd,opd_topk_tail_rkl,opd_full_rkl+tvdf,sft \
  --budget completions=4800 --seeds 0,1,2 --sweep-budget none \
  --lrs opd=1e-3 --lrs opd_topk_tail_rkl=1e-3 --lrs opd_full_rkl+tvdf=1e-3 --lrs sft=2e-3 \
  --out "$OUT" demo_opd eval.every_steps=50 checkpoint.every_steps=1000 trainer.mismatch_every=0
