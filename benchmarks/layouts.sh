#!/usr/bin/env bash
# One machine, three ways to run the demo's OPD loop (one run at a time, on an idle machine):
#   separate  the demo's separate pools: 2 vLLM rollout workers, 2 teacher workers, 2 ZeRO-2 ranks,
#             weights through the driver and the object store every step;
#   colo2     the colocated layout: 2 learner ranks, each owning its vLLM engine and running the
#             teacher's forward in process (rollout.colocate + teacher.colocate), 1 thread each;
#   colo1     the same with 1 rank of 2 threads;
#   offpolicy the separate layout one step off-policy (trainer.off_policy_steps=1): step t+1
#             samples on the rollout workers while step t is scored and trained;
#   peer      the single-process TRL peer (benchmarks/trl_peer.py; needs `pip install -e .[bench]`);
#   colo2_vllm / colo2_torch  colo2 with the engines' CPU linear layers on vLLM's own kernels
#             (every weight sync a layer-wise reload) / on torch's linear (rollout.cpu_linear;
#             colo2 itself runs the default, oneDNN with the weights kept: a sync copies + repacks);
#   colo2_hf  colo2 sampling with the transformers engine (rollout.engine=hf) instead of vLLM:
#             each rank's engine samples with the rank's own module (no weight copy);
#   separate_hf  the separate layout with transformers rollout workers (rollout.engine=hf).
# Usage (after `vopd prepare-demo`):
#   bash benchmarks/layouts.sh steps  [OUT] [REPEATS] [LAYOUTS]  # 40-step runs, REPEATS (3) per
#        layout (LAYOUTS, default "separate colo2 colo1", taking turns):
#        step time per phase and its run-to-run spread (no evaluation)
#   bash benchmarks/layouts.sh kernels [OUT] [REPEATS]  # 60-step colo2 runs per rollout.cpu_linear
#        kind (colo2_vllm, colo2, colo2_torch, alternating), REPEATS (3) each: the sync's share
#   bash benchmarks/layouts.sh series [OUT] [SEED] [LAYOUTS]  # 300 s of training per layout with
#        val evaluation every 25 steps (the peer too), for time to 50/80/90% of the gain
#        (STUDENT=competent bash benchmarks/layouts.sh series ...: from the competent student)
# then: .venv/bin/python benchmarks/layout_report.py OUT
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-steps}
OUT=${2:-artifacts/layouts}
mkdir -p "$OUT"
D=artifacts/demo/data
# STUDENT=competent starts every run from the SFT-warmed student (the peer too; then
# layout_report.py --student competent).
STUDENT=${STUDENT:-floor}
case "$STUDENT" in
  floor) STUDENT_DIR=artifacts/demo/student ;;
  competent) STUDENT_DIR=artifacts/demo/student_competent ;;
  *) echo "STUDENT must be floor or competent, got '$STUDENT'" >&2; exit 2 ;;
esac
COMMON=(model.student=$STUDENT_DIR model.teacher=artifacts/demo/teacher
  "data.train=$D/train.json" "data.val=$D/val.json" "data.test=$D/test.json"
  "data.video_root=$D/videos" checkpoint.every_steps=100000)
declare -A LAYOUT=(
  [separate]=""
  [colo2]="rollout.colocate=true rollout.weight_transport=object_store teacher.colocate=true rollout.num_workers=2 learner.num_ranks=2 learner.threads=1"
  [offpolicy]="trainer.off_policy_steps=1"
  [colo1]="rollout.colocate=true rollout.weight_transport=object_store teacher.colocate=true rollout.num_workers=1 learner.num_ranks=1 learner.threads=2"
)
LAYOUT[colo2_vllm]="${LAYOUT[colo2]} rollout.cpu_linear=vllm"
LAYOUT[colo2_torch]="${LAYOUT[colo2]} rollout.cpu_linear=torch"
# colo2 sampling with the transformers engine (rollout.engine=hf) instead of vLLM.
LAYOUT[colo2_hf]="${LAYOUT[colo2]} rollout.engine=hf"
LAYOUT[separate_hf]="rollout.engine=hf"
run() {  # run NAME LAYOUT EXTRA...
  local name=$1 layout=$2; shift 2
  [ -f "$OUT/$name/summary.json" ] && return
  rm -rf "${OUT:?}/$name"
  echo "=== $name $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  # shellcheck disable=SC2086
  .venv/bin/vopd train launch/configs/demo_opd.yaml "out_dir=$OUT/$name" "${COMMON[@]}" \
    ${LAYOUT[$layout]} "$@" > "$OUT/$name.log" 2>&1
  echo "=== $name rc=$? $(date +%T)"
}
step_runs() {  # step_runs REPEATS STEPS LAYOUT...: the layouts taking turns, no evaluation
  local repeats=$1 steps=$2; shift 2
  for r in $(seq 1 "$repeats"); do
    for layout in "$@"; do
      run "steps_${layout}_r$r" "$layout" trainer.steps="$steps" trainer.budget_s=null \
        eval.every_steps=100000 trainer.mismatch_every=0
    done
  done
}
if [ "$MODE" = steps ]; then
  # shellcheck disable=SC2086
  step_runs "${3:-3}" 40 ${4:-separate colo2 colo1}
elif [ "$MODE" = kernels ]; then
  step_runs "${3:-3}" 60 colo2_vllm colo2 colo2_torch
elif [ "$MODE" = series ]; then
  SEED=${3:-0}
  # The peer's evaluation grid: every 25 steps like ours (PEER_EVAL=...; series before
  # 2026-12-05 evaluated the peer every 20 s, a coarser grid than ours at ~9 s).
  PEER_EVAL=${PEER_EVAL:-25}
  for layout in ${4:-separate colo2 peer}; do
    if [ "$layout" = peer ]; then
      [ -f "$OUT/series_peer_s$SEED/summary.json" ] && continue
      echo "=== series_peer_s$SEED $(date +%T)"
      .venv/bin/python benchmarks/trl_peer.py --out "$OUT/series_peer_s$SEED" --seed "$SEED" \
        --student "$STUDENT" --budget-s 300 --eval-every-steps "$PEER_EVAL" \
        > "$OUT/series_peer_s$SEED.log" 2>&1
      echo "=== series_peer_s$SEED rc=$? $(date +%T)"
    else
      run "series_${layout}_s$SEED" "$layout" trainer.seed="$SEED" trainer.budget_s=300 \
        trainer.steps=100000 eval.every_steps=25
    fi
  done
else
  echo "usage: $0 steps|kernels|series [OUT] ..." >&2
  exit 2
fi
