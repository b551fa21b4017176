#!/usr/bin/env bash
# Every teacher signal at Qwen's vocabulary size (151,936 rows) on the demo task, at equal
# wall-clock: pads the demo's models to 151,936 rows (once, or again when the demo's models are
# newer than the padded copies), then runs benchmarks/teacher_signals.py for each seed, one arm
# at a time (the cost-only `exact_shipped` arm on the first seed only), and prints the table.
# Run on an otherwise idle machine. Usage (after `vopd prepare-demo`):
#   bash benchmarks/teacher_signals.sh [SEEDS=0,1,2] [BUDGET_S=150] [ARMS=all learning arms]
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-0,1,2}
BUDGET_S=${2:-150}
ARMS=${3:-exact_colocated,tail8_rkl,tail20_rkl,tail64_rkl,tail20_fkl,sampled}
SRC=artifacts/demo
DST=artifacts/demo_v151936
for model in student student_competent teacher; do
  if [[ ! -f "$DST/$model/config.json" || "$SRC/$model/config.json" -nt "$DST/$model/config.json" ]]; then
    rm -rf "$DST/$model"
    .venv/bin/vopd models pad "$SRC/$model" --out "$DST/$model" --vocab-size 151936
  fi
done
first=1
for seed in ${SEEDS//,/ }; do
  arms=$ARMS
  if (( first )); then arms="$ARMS,exact_shipped"; first=0; fi
  .venv/bin/python benchmarks/teacher_signals.py --seed "$seed" --arms "$arms" --budget-s "$BUDGET_S"
done
.venv/bin/python benchmarks/teacher_signals.py --report "${BUDGET_S} s"
