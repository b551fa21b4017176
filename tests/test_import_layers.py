"""The house picture: which package may import which, and no import circle between packages.

Imports follow the data (docs/ARCHITECTURE.md): launch on top; trainer, teacher_server and
curriculum below it; rollout below those; the shared model runtime below rollout; the task (tvg)
at the bottom. trainer and teacher_server take only the batch types from rollout (the colocated
layout's rank, trainer/hybrid.py, also the engine it owns).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tvg", "runtime", "rollout", "teacher_server", "trainer", "curriculum", "launch")
ALLOWED = {
    "tvg": set(),
    "runtime": {"tvg"},
    "rollout": {"runtime", "tvg"},
    "teacher_server": {"rollout.batch", "runtime", "tvg"},
    "trainer": {"rollout.batch", "runtime", "teacher_server.checks", "tvg"},
    "curriculum": {"rollout", "runtime", "tvg"},
    "launch": {"tvg", "runtime", "rollout", "teacher_server", "trainer", "curriculum"},
}
# Files allowed more than their package: the colocated layout's learner rank owns a rollout
# engine in its process (it builds one and speaks the engine's weight-bucket protocol).
FILE_EXCEPTIONS = {
    "trainer/hybrid.py": {"rollout.engine_config", "rollout.weight_sync", "rollout.worker"},
}


def _imports(package: str) -> dict[str, set[str]]:
    """{imported module of another package: files importing it} for one package."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in PACKAGES and top != package:
                    found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def _allowed(module: str, rules: set[str]) -> bool:
    return any(module == rule or module.startswith(rule + ".") for rule in rules)


def test_every_import_between_packages_goes_down() -> None:
    wrong = [
        f"{file}: imports {module}"
        for package in PACKAGES
        for module, files in _imports(package).items()
        for file in sorted(files)
        if not _allowed(module, ALLOWED[package] | FILE_EXCEPTIONS.get(file, set()))
    ]
    assert wrong == [], "imports against the layering:\n" + "\n".join(wrong)


def test_no_circle_between_packages() -> None:
    graph = {p: {m.split(".")[0] for m in _imports(p)} for p in PACKAGES}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for package in PACKAGES:
        if package not in state:
            visit(package, [])
