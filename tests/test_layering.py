"""The layering of DESIGN.md: Ray lives in runtime/ only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fedmobile_actors"


def _imports_ray(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ray" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ray":
            return True
    return False


def test_no_module_outside_runtime_imports_ray() -> None:
    """Only fedmobile_actors/runtime/ may import ray, anywhere in a file (top level or nested)."""
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "runtime" not in p.relative_to(PACKAGE).parts and _imports_ray(p)
    ]
    assert offenders == []


def test_pure_layers_and_inprocess_backend_load_without_ray() -> None:
    """Importing every pure layer and the in-process backend leaves ray unloaded."""
    code = (
        "import sys\n"
        "import fedmobile_actors.scenario, fedmobile_actors.fleet, fedmobile_actors.data\n"
        "import fedmobile_actors.algorithms.registry, fedmobile_actors.sim, fedmobile_actors.wire\n"
        "import fedmobile_actors.report, fedmobile_actors.runtime.backend\n"
        "import fedmobile_actors.runtime.driver, fedmobile_actors.cli.main\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
