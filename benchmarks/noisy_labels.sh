#!/usr/bin/env bash
# Where on-policy distillation earns its place: OPD against sequence-level KD and against
# supervised training on clean and noisy labels (and GRPO on noisy labels), all from the
# competent student, 3 seeds, every run with the same learner compute (3.3e12 learner FLOPs,
# ~300 steps of 16 rows; a step-independent budget, so the curves do not depend on what else the
# machine runs; the seconds are in each ledger). Noisy arms train on a seeded corrupted copy of
# the training annotations (`vopd data corrupt`, shift / shrink / swap, seed 0) and are evaluated
# on the clean val split. The paper's sampled-token OPD and top-20 + tail OPD on the TVDF subset
# ran later (added to the same --out: every earlier run is reused). lrs: OPD at the demo's 1e-3 (exact; top-20 + tail as the estimator that
# ships 20 values per position), GRPO at its swept 3e-4 (benchmarks/fair_seeds.sh); every
# supervised arm swept over {1e-3, 2e-3} at the full budget (the sweep's winner is its seed-0 run).
# Usage (after `vopd prepare-demo`): bash benchmarks/noisy_labels.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/noisy_labels}
.venv/bin/vopd compare --start competent \
  --objectives opd_full_rkl,opd_topk_tail_rkl,opd,opd_topk_tail_rkl+tvdf,seqkd,seqkd_sampled,sft,sft@noise25,sft@noise50,grpo@noise25 \
  --budget flops=3.3e12 --seeds 0,1,2 --sweep-budget flops=3.3e12 \
  --lrs opd_full_rkl=1e-3 --lrs opd_topk_tail_rkl=1e-3 --lrs opd=1e-3 \
  --lrs opd_topk_tail_rkl+tvdf=1e-3 --lrs grpo@noise25=3e-4 \
  --lrs seqkd=1e-3,2e-3 --lrs seqkd_sampled=1e-3,2e-3 --lrs sft=1e-3,2e-3 \
  --lrs sft@noise25=1e-3,2e-3 --lrs sft@noise50=1e-3,2e-3 \
  --set seqkd_sampled:eval.every_steps=13 \
  --out "$OUT" demo_opd eval.every_steps=50 checkpoint.every_steps=1000 trainer.mismatch_every=0
