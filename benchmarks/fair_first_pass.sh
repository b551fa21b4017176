#!/usr/bin/env bash
# First pass of the fair head-to-head (one seed, step budgets, the demo's loop and assets):
# GRPO and exact-KL OPD from the competent student and exact / sampled-token OPD from the floor
# student; the paper's sampled-token OPD and top-20 + tail OPD from the competent student. Step budgets keep the
# comparison independent of what else the machine runs; the seconds are in each ledger.
# Usage (after `vopd prepare-demo`): bash benchmarks/fair_first_pass.sh [OUT]
# then: .venv/bin/python benchmarks/summarize_runs.py OUT --out benchmarks/results/fair_first_pass
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/fair_first_pass}
mkdir -p "$OUT"
D=artifacts/demo/data
COMMON=(model.teacher=artifacts/demo/teacher "data.train=$D/train.json" "data.val=$D/val.json"
  "data.test=$D/test.json" "data.video_root=$D/videos" trainer.budget_s=null eval.every_steps=50
  checkpoint.every_steps=1000 trainer.mismatch_every=0)
FLOOR=model.student=artifacts/demo/student
COMPETENT=model.student=artifacts/demo/student_competent
GRPO=(trainer.objective=grpo trainer.prompts_per_step=2 rollout.n=8 reward.format_weight=0.2
  reward.eos_weight=0.2)
run() {
  local name=$1; shift
  [ -f "$OUT/$name/summary.json" ] && return
  rm -rf "${OUT:?}/$name"
  echo "=== $name $(date +%T)"
  .venv/bin/vopd train launch/configs/demo_opd.yaml "out_dir=$OUT/$name" "${COMMON[@]}" "$@" \
    > "$OUT/$name.log" 2>&1
  echo "=== $name rc=$? $(date +%T)"
}
run grpo_comp_lr3e-4 "$COMPETENT" "${GRPO[@]}" learner.lr=3e-4 trainer.steps=300
run opdx_comp "$COMPETENT" trainer.objective=opd_full_rkl learner.lr=1e-3 trainer.steps=300
run opd_floor_lr1e-3 "$FLOOR" trainer.objective=opd learner.lr=1e-3 trainer.steps=200
run opd_floor_lr1e-4 "$FLOOR" trainer.objective=opd learner.lr=1e-4 trainer.steps=200
run grpo_comp_lr1e-4 "$COMPETENT" "${GRPO[@]}" learner.lr=1e-4 trainer.steps=300
run opdx_floor "$FLOOR" trainer.objective=opd_full_rkl learner.lr=1e-3 trainer.steps=200
run grpo_comp_lr3e-4_450 "$COMPETENT" "${GRPO[@]}" learner.lr=3e-4 trainer.steps=450
run opd_comp_lr1e-3 "$COMPETENT" trainer.objective=opd learner.lr=1e-3 trainer.steps=200
run opd_comp_lr1e-3_clip_base "$COMPETENT" trainer.objective=opd learner.lr=1e-3 trainer.steps=200 \
  "trainer.objective_kwargs={reward_clip: 1.0, baseline: batch_mean}"
run tail20_comp "$COMPETENT" trainer.objective=opd_topk_tail_rkl teacher.top_k=20 learner.lr=1e-3 \
  trainer.steps=200
