#!/usr/bin/env bash
# The fair head-to-head from the competent student, 3 seeds, through `vopd compare`: GRPO (lr
# swept over {3e-4, 1e-3} at the full budget, seed 0; the first pass had swept {1e-4, 3e-4}),
# TempSamp-R1 at GRPO's swept lr (3e-4) and exact reverse-KL OPD at the demo's lr (1e-3), every
# arm with 4,800 completions (300 steps of 16: OPD 16 prompts x 1, GRPO 2 x 8; TempSamp-R1 2 x 7
# sampled + 1 ground-truth row per group: 343 steps), val (100 videos) every 50 steps.
# Step-counted budgets: the learning curves do not depend on what else the machine runs (the
# report's seconds do).
# Usage (after `vopd prepare-demo`): bash benchmarks/fair_seeds.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/fair_seeds}
.venv/bin/vopd compare --start competent --objectives grpo,opd_full_rkl,tempsamp \
  --budget completions=4800 --seeds 0,1,2 --sweep-budget completions=4800 \
  --lrs grpo=3e-4,1e-3 --lrs tempsamp=3e-4 --lrs opd_full_rkl=1e-3 \
  --out "$OUT" demo_opd eval.every_steps=50 checkpoint.every_steps=1000 trainer.mismatch_every=0
