"""The layering of DESIGN.md, checked on every import of every module (top level or nested).

Each package may import only the packages below it; Ray is imported in ``runtime/`` only; and the
pure layers, the report layer and the CLI load without Ray.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fedmobile_actors"

#: The layers from the bottom up. ``seeding`` and ``errors`` are the shared vocabulary, below all.
LAYERS = (
    "seeding",
    "errors",
    "startup_trace",
    "scenario",
    "fleet",
    "data",
    "algorithms",
    "wire",
    "sim",
    "runtime",
    "report",
    "orchestration",
    "api",
    "cli",
)

#: Pairs of layers that sit side by side and must not import each other.
SIBLINGS = {("fleet", "data"), ("data", "fleet"), ("sim", "algorithms"), ("sim", "wire")}


def _own_layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports: 'ray', or a fedmobile_actors layer."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "fedmobile_actors":
                names = [f"fedmobile_actors.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "ray":
                found.add("ray")
            elif parts[0] == "fedmobile_actors" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE]


def test_every_layer_is_known() -> None:
    """A new package must be placed in LAYERS before it can be checked."""
    assert {_own_layer(p) for p in _modules()} <= set(LAYERS)


def test_no_module_imports_a_layer_above_its_own() -> None:
    offenders = []
    for path in _modules():
        own = _own_layer(path)
        for layer in _imports(path) - {"ray", own}:
            if layer not in LAYERS:
                continue  # __version__ and the like, from the package root
            if LAYERS.index(layer) > LAYERS.index(own) or (own, layer) in SIBLINGS:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {layer}")
    assert offenders == []


def test_only_runtime_imports_ray() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if _own_layer(p) != "runtime" and "ray" in _imports(p)
    ]
    assert offenders == []


@pytest.mark.integration
def test_layers_load_without_ray() -> None:
    """Importing every pure layer, report, orchestration and the CLI leaves ray unloaded."""
    modules = [
        f"fedmobile_actors.{'.'.join(p.relative_to(PACKAGE).with_suffix('').parts)}"
        for p in _modules()
        if (_own_layer(p) != "runtime" or p.stem in {"backend", "metrics", "inprocess"})
        and p.stem != "__main__"
    ]
    code = "import sys\n" + "".join(f"import {m.removesuffix('.__init__')}\n" for m in modules)
    code += "assert 'ray' not in sys.modules, 'ray was imported'\n"
    subprocess.run([sys.executable, "-c", code], check=True)
