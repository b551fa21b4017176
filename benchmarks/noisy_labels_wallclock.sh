#!/usr/bin/env bash
# The same arms as benchmarks/noisy_labels.sh at equal wall-clock instead of equal learner FLOPs:
# 150 s of training per run (evaluation excluded), one run at a time on an otherwise idle
# machine, each arm at the lr its equal-FLOPs sweep chose (no sweep here). Seeds as given
# (default 0). Usage (after benchmarks/noisy_labels.sh): bash benchmarks/noisy_labels_wallclock.sh [OUT] [SEEDS]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/noisy_labels_wallclock}
SEEDS=${2:-0}
.venv/bin/vopd compare --start competent \
  --objectives opd_full_rkl,opd_topk_tail_rkl,seqkd,seqkd_sampled,sft,sft@noise25,sft@noise50,grpo@noise25 \
  --budget wallclock=150 --seeds "$SEEDS" --sweep-budget none \
  --lrs opd_full_rkl=1e-3 --lrs opd_topk_tail_rkl=1e-3 --lrs grpo@noise25=3e-4 \
  --lrs seqkd=2e-3 --lrs seqkd_sampled=2e-3 --lrs sft=2e-3 \
  --lrs sft@noise25=1e-3 --lrs sft@noise50=2e-3 \
  --set seqkd_sampled:eval.every_steps=13 \
  --out "$OUT" demo_opd eval.every_steps=50 checkpoint.every_steps=1000 trainer.mismatch_every=0
