#!/usr/bin/env bash
# Why the demo's floor student learns slowly under the exact reverse KL, and which teacher signal
# fixes it: OPD from the floor student (val mIoU near the blind floor) with the exact reverse KL,
# the top-20 + tail forward KL and the top-20 + tail reverse KL, step budgets (independent of what
# else the machine runs; the seconds are in each ledger), the demo's colocated layout.
# Usage (after `vopd prepare-demo`): bash benchmarks/floor_start_signals.sh [OUT] [SEED]
# then: .venv/bin/python benchmarks/summarize_runs.py OUT --out benchmarks/results/floor_start_signals
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/floor_start_signals}
SEED=${2:-0}
STEPS=${STEPS:-300}
mkdir -p "$OUT"
D=artifacts/demo/data
COMMON=(model.teacher=artifacts/demo/teacher model.student=artifacts/demo/student
  "data.train=$D/train.json" "data.val=$D/val.json" "data.video_root=$D/videos"
  trainer.budget_s=null "trainer.steps=$STEPS" "trainer.seed=$SEED" eval.every_steps=50
  checkpoint.every_steps=1000 trainer.mismatch_every=0
  rollout.colocate=true teacher.colocate=true rollout.weight_transport=object_store)
run() {
  local name=$1_s$SEED; shift
  [ -f "$OUT/$name/summary.json" ] && return
  rm -rf "${OUT:?}/$name"
  echo "=== $name $(date +%T)"
  .venv/bin/vopd train launch/configs/demo_opd.yaml "out_dir=$OUT/$name" "${COMMON[@]}" "$@" \
    > "$OUT/$name.log" 2>&1
  echo "=== $name rc=$? $(date +%T)"
}
for arm in ${ARMS:-fkl_tail20 rkl_exact rkl_tail20}; do
  case $arm in
    rkl_exact) run rkl_exact trainer.objective=opd_full_rkl learner.lr=1e-3 ;;
    fkl_tail20) run fkl_tail20 trainer.objective=opd_topk_tail_fkl teacher.top_k=20 learner.lr=1e-3 ;;
    rkl_tail20) run rkl_tail20 trainer.objective=opd_topk_tail_rkl teacher.top_k=20 learner.lr=1e-3 ;;
    fkl_tail8) run fkl_tail8 trainer.objective=opd_topk_tail_fkl teacher.top_k=8 learner.lr=1e-3 ;;
    fkl_tail64) run fkl_tail64 trainer.objective=opd_topk_tail_fkl teacher.top_k=64 learner.lr=1e-3 ;;
    *) echo "unknown arm $arm"; exit 2 ;;
  esac
done
