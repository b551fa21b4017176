"""benchmarks/gpu_paths.py stays runnable between GPU runs: its dry run on the CPU (gloo, CPU
tensors) passes the same checks the GPU run makes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_the_gpu_checks_dry_run_on_the_cpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU machine runs benchmarks/gpu_paths.py itself (its checks differ there)")
    script = REPO / "benchmarks" / "gpu_paths.py"
    data, out = tmp_path / "data", tmp_path / "gpu_paths.json"
    subprocess.run([sys.executable, str(script), "--prepare", str(data)], check=True)
    assert (data / "models_v151936" / "qwen3_vl-teacher").is_dir()
    checks = "collective_two_ranks,learner_zero2,teacher,hf_engine"
    cmd = [sys.executable, str(script), f"--data={data}", f"--out={out}", f"--checks={checks}"]
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode != 0 and "needs a CUDA device" in refused.stderr
    subprocess.run([*cmd, "--allow-cpu"], check=True, capture_output=True, text=True)
    results = json.loads(out.read_text())["checks"]
    assert {name: r["ok"] for name, r in results.items()} == dict.fromkeys(checks.split(","), True)
    two = results["collective_two_ranks"]
    assert two["delivered"] and two["exit_codes"] == [0, 0]
    learner = results["learner_zero2"]
    assert learner["default_group"] == "gloo" and all(learner["checks"].values())
    assert learner["sft_losses"][-1] < learner["sft_losses"][0]
    assert results["teacher"]["max_abs_diff_logprobs"] == 0.0
    engine = results["hf_engine"]
    assert all(engine["greedy_equal_to_cpu"]) and engine["update_landed_in_live_model"]
