"""The algorithms layer never imports Ray (DESIGN: Ray lives in fedmobile_actors/runtime only)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fedmobile_actors.algorithms as algorithms


def test_importing_every_algorithms_module_leaves_ray_unimported() -> None:
    modules = [
        f"fedmobile_actors.algorithms.{m.name}" for m in pkgutil.iter_modules(algorithms.__path__)
    ]
    assert "fedmobile_actors.algorithms.fedmobile" in modules
    code = "; ".join(f"import {m}" for m in modules)
    code += "; import sys; print(any(k == 'ray' or k.startswith('ray.') for k in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
