"""Cluster launch: the paper-scale presets load and hold the papers' settings, and the launch
scripts parse, print their usage and compose the right commands (nothing starts Ray here)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from launch.config import PRESET_DIR, RunConfig, load_config

REPO = Path(__file__).resolve().parents[2]
SUBMIT = REPO / "launch" / "cluster" / "ray_job_submit.sh"
SBATCH = REPO / "launch" / "cluster" / "slurm_ray.sbatch"
CLUSTER_PRESETS = ("video_opd_8b", "tempsamp_r1_7b")
BASH = shutil.which("bash") or "/bin/bash"


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run a script with bash, without any inherited Ray address."""
    clean = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "SLURM_JOB_ID")}
    clean.pop("RAY_API_SERVER_ADDRESS", None)
    clean.update(env)
    return subprocess.run(
        [BASH, *args], capture_output=True, text=True, timeout=60, env=clean, cwd=REPO
    )


def _gpus_in_use(config: RunConfig) -> float:
    """GPUs the actor pools reserve (teacher only when the objective needs one)."""
    gpus = config.rollout.num_workers * config.resources.rollout_gpus
    gpus += config.learner.num_ranks * config.resources.learner_gpus
    if config.trainer.objective.startswith("opd"):
        gpus += config.teacher.num_workers * config.resources.teacher_gpus
    return gpus


@pytest.mark.parametrize("name", CLUSTER_PRESETS)
def test_cluster_presets_load_and_size_one_8_gpu_node(name: str) -> None:
    config = load_config(name)
    assert (PRESET_DIR / f"{name}.yaml").is_file()
    assert config.learner.precision == "bf16"
    assert config.learner.zero_stage == 3
    assert config.learner.lr == pytest.approx(1e-6)
    assert config.data.fps == pytest.approx(2.0)
    assert config.model.freeze_vision is True
    assert _gpus_in_use(config) == 8
    assert config.resources.rollout_gpus == 1 and config.resources.learner_gpus == 1
    # Placeholders the user overrides: absolute, and never this machine's paths.
    for path in (config.model.student, config.data.train, config.data.video_root, config.out_dir):
        assert path and path.startswith("/") and not path.startswith(("/work", "/home", "/tmp"))


def test_video_opd_preset_matches_the_paper() -> None:
    config = load_config("video_opd_8b")
    assert "Qwen3-VL-8B" in config.model.student
    assert "Qwen3-VL-32B" in config.model.teacher
    assert config.trainer.objective == "opd"
    assert config.rollout.n == 1
    assert config.trainer.prompts_per_step == 32  # 8 GPUs x batch 1 x grad-accum 4
    assert config.trainer.steps == 79  # one epoch over 2,500 samples
    assert config.learner.micro_batch_size == 1
    assert config.learner.warmup_steps == 3  # 3% of 79, rounded up
    assert config.data.max_frames == 768
    assert config.data.max_pixels == 768 * 32 * 32  # 768 Qwen3-VL tokens per frame
    assert config.curriculum.kind == "tvdf"
    assert config.curriculum.rule == "top_k"
    assert config.curriculum.subset_size == 2500
    assert config.teacher.backend == "vllm"
    assert config.resources.teacher_gpus == 1


def test_tempsamp_preset_has_groups_of_four_with_one_ground_truth_row() -> None:
    config = load_config("tempsamp_r1_7b")
    assert "Qwen2.5-VL-7B" in config.model.student
    assert config.trainer.objective == "tempsamp"
    # inject_ground_truth appends one GT row to the n sampled rows: G = n + 1 = 4.
    assert config.rollout.n + 1 == 4
    assert config.reward.format_weight == pytest.approx(0.1)
    assert config.trainer.objective_kwargs["variant"] == "mixed"
    assert config.data.prompt_style == "tempsamp"


def test_ground_truth_row_is_appended_to_the_sampled_rows() -> None:
    """The G = n + 1 arithmetic the TempSamp preset relies on, on a hand-made batch."""
    import numpy as np

    from launch.step_logic import inject_ground_truth
    from rollout.batch import PromptSpec, RolloutBatch, Trajectory

    class Tokenizer:
        def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
            return {"input_ids": [ord(c) % 50 for c in text]}

    spec = PromptSpec(
        sample_id="s", video="v.mp4", query="q", spans=[(1.0, 2.0)], prompt_style="tempsamp"
    )
    sampled = [
        Trajectory(
            prompt_index=0,
            sample_index=i,
            prompt_ids=np.array([1, 2], np.int32),
            completion_ids=np.array([3], np.int32),
            logprobs=np.zeros(1, np.float32),
            finish_reason="stop",
            text="<answer> 1.00 to 2.00 </answer>",
        )
        for i in range(3)
    ]
    batch = RolloutBatch(prompts=[spec], trajectories=sampled)
    inject_ground_truth(batch, Tokenizer(), eos_id=0)
    group = batch.group(0)
    assert len(group) == 4
    assert [t.is_ground_truth for t in group] == [False, False, False, True]


def test_cluster_preset_overrides_for_two_nodes_validate() -> None:
    opd = load_config(
        "video_opd_8b", ["rollout.num_workers=2", "teacher.num_workers=6", "learner.num_ranks=8"]
    )
    assert _gpus_in_use(opd) == 16
    tempsamp = load_config("tempsamp_r1_7b", ["rollout.num_workers=8", "learner.num_ranks=8"])
    assert _gpus_in_use(tempsamp) == 16


@pytest.mark.parametrize("script", [SUBMIT, SBATCH])
def test_scripts_parse_and_are_strict(script: Path) -> None:
    assert subprocess.run([BASH, "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert os.access(script, os.X_OK)
    assert "/work/" not in text


def test_sbatch_starts_a_head_and_workers_and_stops_ray() -> None:
    text = SBATCH.read_text()
    assert re.search(r"ray_bin\"? start --head --node-ip-address=\S+ --port=", text)
    assert re.search(r"--num-gpus=\"\$gpus\"", text)
    assert re.search(r"start --address=\"\$RAY_ADDRESS\"", text)
    assert text.count("--block") >= 2
    assert "--include-dashboard=false" in text
    assert "0.0.0.0" not in text
    assert 'export RAY_ADDRESS="$head_ip:$port"' in text
    assert "-m launch.cli train" in text
    assert re.search(r"\"\$ray_bin\" stop", text)
    assert "#SBATCH --nodes=" in text


def test_sbatch_usage_and_refusal_outside_slurm() -> None:
    shown = _run([str(SBATCH), "--help"])
    assert shown.returncode == 0
    assert "Usage:" in shown.stdout and "--curriculum-first" in shown.stdout
    assert _run([str(SBATCH)]).returncode != 0  # no PRESET
    outside = _run([str(SBATCH), "video_opd_8b"])
    assert outside.returncode != 0
    assert "not inside a Slurm job" in outside.stderr


def test_submit_usage_and_missing_arguments() -> None:
    shown = _run([str(SUBMIT), "--help"])
    assert shown.returncode == 0
    assert "Usage:" in shown.stdout and "ray job submit" in shown.stdout
    no_preset = _run([str(SUBMIT)])
    assert no_preset.returncode != 0
    assert "PRESET is required" in no_preset.stderr
    no_address = _run([str(SUBMIT), "video_opd_8b"])
    assert no_address.returncode != 0
    assert "address" in no_address.stderr
    assert _run([str(SUBMIT), "--bogus", "video_opd_8b"]).returncode != 0


def _dry_run(*args: str, **env: str) -> list[str]:
    done = _run([str(SUBMIT), "--dry-run", *args], **env)
    assert done.returncode == 0, done.stderr
    return shlex.split(done.stdout)


def test_submit_composes_ray_job_submit() -> None:
    argv = _dry_run(
        "--address",
        "http://127.0.0.1:8265",
        "--env",
        'NCCL_DEBUG=INFO "x"',
        "video_opd_8b",
        "model.student=/models/Qwen3-VL-8B-Instruct",
        "data.train=/data/with space/train.jsonl",
        "--resume",
    )
    assert argv[:3] == ["ray", "job", "submit"]
    assert argv[argv.index("--address") + 1] == "http://127.0.0.1:8265"
    assert argv[argv.index("--working-dir") + 1] == "."
    runtime_env = json.loads(argv[argv.index("--runtime-env-json") + 1])
    assert runtime_env["env_vars"]["HF_HUB_OFFLINE"] == "1"
    assert runtime_env["env_vars"]["NCCL_DEBUG"] == 'INFO "x"'
    assert ".git" in runtime_env["excludes"]
    entry = argv[argv.index("--") + 1 :]
    assert entry == [
        "python",
        "-m",
        "launch.cli",
        "train",
        "video_opd_8b",
        "model.student=/models/Qwen3-VL-8B-Instruct",
        "data.train=/data/with space/train.jsonl",
        "--resume",
    ]


def test_submit_reads_the_address_from_the_environment_and_builds_curriculum_jobs() -> None:
    argv = _dry_run(
        "--curriculum",
        "--no-wait",
        "tempsamp_r1_7b",
        RAY_API_SERVER_ADDRESS="http://10.0.0.1:8265",
        VOPD_REMOTE_PYTHON="/opt/venv/bin/python",
    )
    assert argv[argv.index("--address") + 1] == "http://10.0.0.1:8265"
    assert "--no-wait" in argv[: argv.index("--")]
    assert argv[argv.index("--") + 1 :] == [
        "/opt/venv/bin/python",
        "-m",
        "launch.cli",
        "curriculum",
        "build",
        "--config",
        "tempsamp_r1_7b",
    ]


def test_submit_checks_the_config_before_submitting() -> None:
    bad = _run(
        [str(SUBMIT), "--address", "http://x:8265", "--dry-run", "video_opd_8b", "rollout.nn=3"]
    )
    assert bad.returncode != 0
    assert "rollout.nn" in bad.stderr
    assert "ray job submit" not in bad.stdout
