#!/usr/bin/env bash
# The fair head-to-head from the competent student with GRPO's and TempSamp-R1's known remedy for
# sample efficiency, batch reuse (trainer.ppo_epochs=2 x trainer.ppo_mini_batches=2: 4 updates
# per rollout batch, so the PPO clip acts), 3 seeds, every arm at 4,800 completions (GRPO 2
# prompts x 8; TempSamp-R1 2 x 7 sampled + 1 ground-truth row; exact reverse-KL OPD 16 x 1),
# GRPO / TempSamp-R1 at their swept lr 3e-4 (benchmarks/fair_seeds.sh), OPD at the demo's 1e-3,
# val (100 videos) every 50 steps. Step-counted budgets: the curves do not depend on the load.
# Then GRPO with one update per batch (no reuse), the same 3 seeds, into OUT_NOREUSE: what the
# reuse adds on the same build.
# Usage (after `vopd prepare-demo`): bash benchmarks/fair_reuse.sh [OUT] [OUT_NOREUSE]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/fair_reuse}
OUT_NOREUSE=${2:-artifacts/fair_noreuse}
.venv/bin/vopd compare --start competent --objectives grpo,tempsamp,opd_full_rkl \
  --budget completions=4800 --seeds 0,1,2 --sweep-budget none \
  --lrs grpo=3e-4 --lrs tempsamp=3e-4 --lrs opd_full_rkl=1e-3 \
  --set grpo:trainer.ppo_epochs=2 --set grpo:trainer.ppo_mini_batches=2 \
  --set tempsamp:trainer.ppo_epochs=2 --set tempsamp:trainer.ppo_mini_batches=2 \
  --out "$OUT" demo_opd eval.every_steps=50 checkpoint.every_steps=1000 trainer.mismatch_every=0
.venv/bin/vopd compare --start competent --objectives grpo --budget completions=4800 \
  --seeds 0,1,2 --sweep-budget none --lrs grpo=3e-4 \
  --out "$OUT_NOREUSE" demo_opd eval.every_steps=50 checkpoint.every_steps=1000 trainer.mismatch_every=0
