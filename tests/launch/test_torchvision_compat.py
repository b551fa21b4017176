"""torchvision imports in every process of the environment: tests, Ray workers, vLLM engines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from launch.torchvision_compat import PTH_NAME, shim_needed, site_packages_dir


def _probe(worker=None) -> tuple[int, str]:
    """Import torchvision's transforms in whatever process runs this; return (pid, version)."""
    import torchvision
    import torchvision.transforms.v2 as transforms

    transforms.Resize((4, 4))
    return os.getpid(), torchvision.__version__


def test_start_up_hook_is_installed() -> None:
    if not shim_needed():
        pytest.skip("torchvision matches torch here; no hook needed")
    assert (site_packages_dir() / PTH_NAME).is_file()


def test_fresh_interpreter_imports_torchvision_transforms() -> None:
    code = "import torchvision.transforms.v2 as t; print(t.Resize((2, 2)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_ray_actor_imports_torchvision_transforms(ray_session) -> None:
    ray = ray_session
    # The test module is not importable in Ray workers: ship its functions by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

    @ray.remote(num_cpus=0)
    class Probe:
        def run(self) -> tuple[int, str]:
            return _probe()

    actor = Probe.remote()
    pid, version = ray.get(actor.run.remote(), timeout=120)
    ray.kill(actor)
    assert pid != os.getpid()
    assert version


@pytest.mark.e2e
@pytest.mark.slow
def test_vllm_engine_process_imports_torchvision_transforms(tiny_models_dir: Path) -> None:
    """A vLLM engine core in its own process (multiprocessing mode) imports torchvision."""
    script = f"""
import os
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"
os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_torchvision_compat import _probe

if __name__ == "__main__":
    from vllm import LLM
    llm = LLM(model={str(tiny_models_dir / "qwen3_vl-student")!r}, dtype="float32",
              max_model_len=512, enforce_eager=True)
    (pid, version), = llm.collective_rpc(_probe)
    assert pid != os.getpid(), "engine ran in the test's own process"
    print("ENGINE_PID", pid, "TORCHVISION", version)
"""
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0 and "ENGINE_PID" in result.stdout, result.stderr[-3000:]
