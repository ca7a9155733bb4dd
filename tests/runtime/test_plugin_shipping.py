"""A plug-in module in a directory outside the repository reaches Ray's hosts (runtime_env
``py_modules``) and gives the in-process metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from fedmobile_actors import api
from fedmobile_actors.runtime.ray_backend import plugin_runtime_env

REPO = Path(__file__).resolve().parents[2]
PLUGIN = """
from fedmobile_actors.algorithms.fedprox import FedProx
from fedmobile_actors.algorithms.models.mlp import MlpNet


class HalfProx(FedProx):
    '''FedProx with half the proximal weight: a strategy that lives in the user's directory.'''

    def extra_loss(self, payload):
        term = super().extra_loss(payload)
        return lambda model: 0.5 * term(model)


def small_mlp(shapes, num_classes, config):
    return MlpNet(shapes, num_classes, config)


small_mlp.provides = frozenset({"modality_encoders", "linear_head"})
"""
OVERRIDES = {
    "algorithm.name": "tmp_user_plugin:HalfProx",
    "model.kind": "tmp_user_plugin:small_mlp",
    "model.mlp_hidden": [16],
    "rounds.rounds": 2,
    "fleet.phones": 6,
    "data.source.samples": 600,
    "output.plots": False,
}


def rows(result: api.RunResult) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in result.metrics]


@pytest.mark.integration
def test_a_module_outside_the_repo_runs_on_ray(
    ray_session: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    user_dir = tmp_path / "user code"
    user_dir.mkdir()
    (user_dir / "tmp_user_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    monkeypatch.syspath_prepend(str(user_dir))
    scenario = api.validate(REPO / "scenarios" / "quickstart.yaml", OVERRIDES)
    env = plugin_runtime_env(scenario)
    assert env is not None
    assert env["env_vars"]["PYTHONPATH"].split(os.pathsep)[0] == str(user_dir.resolve())
    in_process = api.run(scenario, {"runtime.backend": "inprocess"}, output_dir=tmp_path)
    on_ray = api.run(scenario, {"runtime.hosts": 2}, output_dir=tmp_path)
    assert on_ray.status == "finished" and rows(on_ray) == rows(in_process)
    assert asdict(on_ray.info)["algorithm"] == "tmp_user_plugin:HalfProx"


@pytest.mark.slow
@pytest.mark.integration
def test_a_ray_started_by_the_run_ships_the_module_as_py_modules(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The command's own Ray (a fresh process whose cwd is elsewhere): the hosts import a copy of
    the module that Ray unpacked from the job's ``py_modules``, not the user's file, and the
    metrics equal the in-process run's."""
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    log = tmp_path / "imports.log"
    source = f"with open({str(log)!r}, 'a') as f:\n    f.write(__file__ + '\\n')\n"
    (user_dir / "shipped_user_plugin.py").write_text(source + textwrap.dedent(PLUGIN))
    overrides = {
        **OVERRIDES,
        "algorithm.name": "shipped_user_plugin:HalfProx",
        "model.kind": "shipped_user_plugin:small_mlp",
    }
    texts = [f"-o{k}={api._yaml_value(v)}" for k, v in overrides.items()]
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from fedmobile_actors.cli.main import main; sys.exit(main(sys.argv[2:]))"
    )
    quickstart = str(REPO / "scenarios" / "quickstart.yaml")
    command = [sys.executable, "-c", script, str(user_dir), "run", quickstart, *texts, "-q"]
    command += ["--hosts", "2", "--num-cpus", "2", "--output", str(tmp_path / "ray")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = log.read_text().split()
    assert str(user_dir / "shipped_user_plugin.py") in imported  # the driver's own import
    assert any("py_modules" in path for path in imported)  # the actors' unpacked copies
    (ray_dir,) = (tmp_path / "ray").iterdir()
    monkeypatch.syspath_prepend(str(user_dir))
    overrides["runtime.backend"] = "inprocess"
    in_process = api.run(quickstart, overrides, output_dir=tmp_path / "inprocess")
    assert rows(in_process) == rows(api.load_run(ray_dir))
