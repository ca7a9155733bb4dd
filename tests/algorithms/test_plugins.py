"""Plug-in strategies and model kinds: import paths, entry points, and the one-line refusals of
everything that cannot be one (no Ray here: what reaches Ray hosts is tested in tests/runtime)."""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from algo_setting import TINY_MODEL, Setting, make_context

from fedmobile_actors.algorithms import plugins
from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.algorithms.models.registry import build_model, model_kind
from fedmobile_actors.algorithms.registry import check_model, make_strategy, strategy_class
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import AlgorithmConfig, ModelConfig

_names = itertools.count()

STRATEGY_SOURCE = """
from fedmobile_actors.algorithms.fedavg import FedAvg

class Mine(FedAvg):
    name = "mine"

def not_a_class():
    pass

class NotAStrategy:
    pass

class Abstract(FedAvg.__mro__[1]):  # Strategy itself, without its abstract methods
    pass

class NeedsWings(FedAvg):
    model_needs = frozenset({"wings"})
"""

MODEL_SOURCE = """
from fedmobile_actors.algorithms.models.mlp import MlpNet
from torch import nn

def plain(shapes, num_classes, config):
    return MlpNet(shapes, num_classes, config)

def capable(shapes, num_classes, config):
    return MlpNet(shapes, num_classes, config)
capable.provides = frozenset({"modality_encoders", "linear_head"})

def two_args(shapes, num_classes):
    return None

def not_a_net(shapes, num_classes, config):
    return nn.Linear(2, 2)

class Net(MlpNet):
    provides = frozenset({"modality_encoders", "linear_head"})

class Module(nn.Module):
    pass

def odd(shapes, num_classes, config):
    return None
odd.provides = frozenset({"telepathy"})

NUMBER = 3
"""


def write_module(tmp_path: Path, monkeypatch: Any, source: str) -> str:
    """A fresh, uniquely named module in a directory outside the repository, on sys.path."""
    name = f"user_plugin_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def one_line(err: pytest.ExceptionInfo[ScenarioError]) -> str:
    (line,) = str(err.value).splitlines()
    return line


@pytest.fixture()
def strategies(tmp_path: Path, monkeypatch: Any) -> str:
    return write_module(tmp_path, monkeypatch, STRATEGY_SOURCE)


@pytest.fixture()
def models(tmp_path: Path, monkeypatch: Any) -> str:
    return write_module(tmp_path, monkeypatch, MODEL_SOURCE)


def test_a_strategy_by_import_path_runs(strategies: str, setting: Setting) -> None:
    """``module:Class`` resolves to the user's class, and make_strategy builds it."""
    context = replace(
        make_context(setting, "fedavg"), algorithm=AlgorithmConfig(name=f"{strategies}:Mine")
    )
    strategy = make_strategy(context)
    assert type(strategy).__name__ == "Mine" and isinstance(strategy, FedAvg)
    update = strategy.local_update(strategy.initial_state().arrays, setting.phones[0], 0, 0, 1)
    assert update.num_samples == len(setting.phones[0])


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("no_such_module_xyz:Thing", "cannot import 'no_such_module_xyz'"),
        ("no_such_module_xyz", "is not available; known: fedavg"),
        ("{m}:Missing", "has no attribute 'Missing'"),
        ("{m}:not_a_class", "is a function, not a Strategy subclass"),
        ("{m}:NotAStrategy", "does not subclass fedmobile_actors.algorithms.strategy.Strategy"),
        ("{m}:Abstract", "does not implement aggregate, evaluate, initial_state, local_update"),
        ("{m}:NeedsWings", "unknown capabilities wings"),
        ("{m}:Mine:Extra", "is not an import path"),
    ],
)
def test_what_is_not_a_strategy_is_one_line(strategies: str, name: str, words: str) -> None:
    name = name.format(m=strategies)
    with pytest.raises(ScenarioError) as err:
        strategy_class(name)
    line = one_line(err)
    assert line.startswith("algorithm.name: ") and words in line


def test_a_module_that_fails_to_import_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    """The user's module raising (or importing something absent) is reported with its reason,
    not as a missing module."""
    broken = write_module(tmp_path, monkeypatch, "import absent_dependency_xyz\n")
    with pytest.raises(ScenarioError) as err:
        strategy_class(f"{broken}:Thing")
    assert "importing" in one_line(err) and "absent_dependency_xyz" in one_line(err)
    raising = write_module(tmp_path, monkeypatch, "raise RuntimeError('no GPU\\nhere')\n")
    with pytest.raises(ScenarioError) as err:
        strategy_class(f"{raising}:Thing")
    assert "RuntimeError: no GPU here" in one_line(err)


def test_entry_points_register_names(tmp_path: Path, monkeypatch: Any, models: str) -> None:
    """An installed package's entry points (a dist-info on sys.path) name a strategy and a model
    kind; the names then work like built-ins and appear in the list of known names."""
    module = write_module(tmp_path, monkeypatch, STRATEGY_SOURCE)
    info = tmp_path / "user_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: user-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[fedmobile_actors.strategies]\nmine = {module}:Mine\n\n"
        f"[fedmobile_actors.models]\ncapable_net = {models}:capable\n"
    )
    assert strategy_class("mine").__name__ == "Mine"
    assert model_kind("capable_net").provides == {"modality_encoders", "linear_head"}
    check_model(AlgorithmConfig(name="mine"), ModelConfig(kind="capable_net"))
    with pytest.raises(ScenarioError, match=r"known: fedavg.*, mine;"):
        strategy_class("yours")


def test_a_model_by_import_path_builds_with_its_seed(models: str) -> None:
    """A builder function and a MultimodalNet subclass are both model kinds; the initial weights
    depend on the seed alone."""
    shapes = {"acc": (3, 8)}
    config = TINY_MODEL.model_copy(update={"kind": f"{models}:capable"})
    a = build_model(f"{models}:capable", shapes, 4, config, 1)
    b = build_model(f"{models}:capable", shapes, 4, config, 1)
    assert isinstance(a, MultimodalNet)
    assert all((x == y).all() for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert isinstance(build_model(f"{models}:Net", shapes, 4, config, 1), MultimodalNet)


@pytest.mark.parametrize(
    ("attr", "words"),
    [
        ("two_args", "has the wrong signature (shapes, num_classes); a model builder is called"),
        ("Module", "does not subclass fedmobile_actors.algorithms.models.base.MultimodalNet"),
        ("NUMBER", "is a int, not a model builder"),
        ("odd", "provides unknown capabilities telepathy"),
    ],
)
def test_what_is_not_a_model_kind_is_one_line(models: str, attr: str, words: str) -> None:
    with pytest.raises(ScenarioError) as err:
        model_kind(f"{models}:{attr}")
    assert one_line(err).startswith(f"model.kind: '{models}:{attr}'") and words in one_line(err)


def test_a_builder_returning_no_multimodal_net_is_one_line(models: str) -> None:
    with pytest.raises(ScenarioError) as err:
        build_model(f"{models}:not_a_net", {"acc": (3, 8)}, 4, TINY_MODEL, 0)
    assert "built a Linear, not a MultimodalNet" in one_line(err)


def test_a_plug_in_model_provides_nothing_unless_it_says_so(models: str) -> None:
    """FedAvg takes any model; FedMobile refuses one that does not declare a linear head over
    per-modality encoders, in one line naming what is missing."""
    check_model(AlgorithmConfig(name="fedavg"), ModelConfig(kind=f"{models}:plain"))
    check_model(AlgorithmConfig(name="fedmobile"), ModelConfig(kind=f"{models}:capable"))
    with pytest.raises(ScenarioError) as err:
        check_model(AlgorithmConfig(name="fedmobile"), ModelConfig(kind=f"{models}:plain"))
    line = one_line(err)
    assert "lacks linear_head, modality_encoders" in line and "'fedmobile'" in line


def test_built_in_strategies_refuse_plug_in_options() -> None:
    """``algorithm.options`` is for plug-ins; on a built-in it would be silently ignored."""
    with pytest.raises(ScenarioError) as err:
        check_model(AlgorithmConfig(name="fedavg", options={"beta": 0.9}), ModelConfig())
    assert one_line(err).startswith("algorithm.options: built-in strategy 'fedavg'")


def test_only_modules_outside_site_packages_are_shipped(strategies: str, tmp_path: Path) -> None:
    """A module in the user's directory is shipped to Ray hosts as its file; an installed package
    and the project's own modules are not (every node has them)."""
    shipped = plugins.shipped_paths(
        [f"{strategies}:Mine", "numpy:mean", "fedmobile_actors.algorithms.fedavg:FedAvg"]
    )
    assert shipped == [str((tmp_path / f"{strategies}.py").resolve())]
    assert plugins.plugin_references("fedavg", "conv1d") == []
    assert plugins.plugin_references(f"{strategies}:Mine", "m:b") == [f"{strategies}:Mine", "m:b"]


@pytest.mark.parametrize(
    ("algorithm", "kind", "words"),
    [
        ("nowhere_xyz.strategies:Mine", "conv1d", "no module named 'nowhere_xyz'"),
        ("{s}:NotAStrategy", "conv1d", "does not subclass"),
        ("fedavg", "{m}:two_args", "has the wrong signature"),
        ("fedmobile", "{m}:plain", "lacks linear_head, modality_encoders"),
    ],
)
def test_validate_command_says_it_in_one_line_and_exits_2(
    strategies: str, models: str, tmp_path: Path, capsys: Any, algorithm: str, kind: str, words: str
) -> None:
    """`fedmobile validate` of a scenario naming a bad plug-in: one line, exit code 2."""
    from fedmobile_actors.cli.main import main

    path = tmp_path / "plugin.yaml"
    name, model = algorithm.format(s=strategies), kind.format(m=models)
    path.write_text(f"algorithm: {{name: '{name}'}}\nmodel: {{kind: '{model}'}}\n")
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fedmobile: error: ") and words in line
