#!/usr/bin/env bash
# Streaming teacher scoring on the demo (issue 16 item 4): the same 30 steps with teacher.stream
# off and on, one run after the other (never both at once: they would share the cores), in
# ROUNDS rounds whose order alternates (a shared machine's load drifts between runs).
# Usage (after `vopd prepare-demo`): bash benchmarks/teacher_stream.sh [OUT] [STEPS] [ROUNDS] [FIRST]
# then: .venv/bin/python benchmarks/teacher_stream_summary.py OUT
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/teacher_stream}
STEPS=${2:-30}
ROUNDS=${3:-1}
FIRST=${4:-1}
mkdir -p "$OUT"
D=artifacts/demo/data
for round in $(seq "$FIRST" $((FIRST + ROUNDS - 1))); do
  order="false true"
  [ $((round % 2)) -eq 0 ] && order="true false"
  for stream in $order; do
    name="stream_${stream}_r$round"
    rm -rf "${OUT:?}/$name"
    echo "=== $name $(date +%T)"
    .venv/bin/vopd train launch/configs/demo_opd.yaml "out_dir=$OUT/$name" \
      model.student=artifacts/demo/student model.teacher=artifacts/demo/teacher \
      "data.train=$D/train.json" "data.val=$D/val.json" "data.test=$D/test.json" \
      "data.video_root=$D/videos" trainer.budget_s=null "trainer.steps=$STEPS" \
      eval.every_steps=1000 checkpoint.every_steps=1000 "teacher.stream=$stream" \
      > "$OUT/$name.log" 2>&1
    echo "=== $name rc=$? $(date +%T)"
  done
done
