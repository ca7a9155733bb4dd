"""A plug-in module in a directory outside the repository reaches Ray's hosts (runtime_env
``py_modules``) and gives the in-process metrics."""

from __future__ import annotations

import os
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
