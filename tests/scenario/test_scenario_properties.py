"""Property tests: whatever a scenario file holds, loading it gives a Scenario or a ScenarioError.

Random YAML text, random values, and valid scenarios mutated (keys deleted, values replaced by
values of other types, unknown keys added, overrides of any text) must never raise anything
else: no traceback ever reaches a user.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario_helpers import SCENARIOS

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario import Scenario, load_scenario, scenario_to_yaml, validate_mapping

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["deadline", "async", "markov", "trace", "acc", "gyro", "fedmobile", "0.5"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)
YAMLISH = "abcxyz019 :-{}[],#&*!|>'\"%@`.\n\t?~"


def _library() -> list[dict[str, Any]]:
    """Every bundled scenario, resolved (so its mapping is complete and deep)."""
    return [
        yaml.safe_load(scenario_to_yaml(load_scenario(p))) for p in sorted(SCENARIOS.glob("*.yaml"))
    ]


LIBRARY = _library()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a nested mapping/list (the root excluded)."""
    found = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        root = root[key]
    return root


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A bundled scenario with 1-4 random mutations applied."""
    raw = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from(LIBRARY))))  # a deep copy
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(raw)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(raw, path)
        action = draw(st.sampled_from(["delete", "replace", "add_key"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(values)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
    return raw


def _loads_or_scenario_error(path: Path, overrides: tuple[str, ...] = ()) -> Scenario | None:
    try:
        return load_scenario(path, overrides)
    except ScenarioError as err:
        assert err.problems and all(isinstance(p, str) and p for p in err.problems)
        assert all("\n" not in p for p in err.problems)
        return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("props") / "scenario.yaml"


@SETTINGS
@given(raw=mutated_scenarios())
def test_mutated_scenario_loads_or_raises_scenario_error(
    raw: dict[str, Any], scratch: Path
) -> None:
    """Deleting keys, swapping value types and adding keys never escapes as another error."""
    scratch.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    scenario = _loads_or_scenario_error(scratch)
    if scenario is not None:
        for value in (scenario.rounds.deadline_s, scenario.fleet.failure_prob):
            assert math.isfinite(value)


@SETTINGS
@given(text=st.one_of(st.text(max_size=200), st.text(alphabet=YAMLISH, max_size=200)))
def test_random_yaml_text_loads_or_raises_scenario_error(text: str, scratch: Path) -> None:
    """Any text at all, YAML-like or not."""
    scratch.write_text(text, encoding="utf-8", errors="surrogatepass")
    _loads_or_scenario_error(scratch)


@SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_load_or_raise_scenario_error(data: bytes, scratch: Path) -> None:
    """Binary garbage, including invalid UTF-8 and NUL bytes."""
    scratch.write_bytes(data)
    _loads_or_scenario_error(scratch)


@SETTINGS
@given(
    overrides=st.lists(
        st.one_of(st.text(max_size=40), st.text(alphabet=YAMLISH, max_size=40)), max_size=3
    )
)
def test_random_overrides_load_or_raise_scenario_error(overrides: list[str], scratch: Path) -> None:
    """-o with any text: a valid override applies, anything else is a ScenarioError."""
    scratch.write_text("name: props\n", encoding="utf-8")
    _loads_or_scenario_error(scratch, tuple(overrides))


@SETTINGS
@given(
    path=st.sampled_from(
        [
            "fleet.phones",
            "fleet.tiers.0.share",
            "fleet.availability",
            "sweep.grid",
            "rounds.policy",
            "modalities.test_missing.gyro",
            "data.source.kind",
            "seed",
        ]
    ),
    value=values,
)
def test_override_of_a_real_field_with_any_value(path: str, value: Any, scratch: Path) -> None:
    """Real field paths set to arbitrary YAML values (dumped as flow YAML)."""
    scratch.write_text(yaml.safe_dump(LIBRARY[0]), encoding="utf-8")
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    _loads_or_scenario_error(scratch, (f"{path}={text}",))


@SETTINGS
@given(raw=st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), values, max_size=6))
def test_random_mappings_validate_or_raise_scenario_error(raw: dict[Any, Any]) -> None:
    """validate_mapping on arbitrary Python mappings (no YAML involved)."""
    try:
        validate_mapping(raw, "random")
    except ScenarioError as err:
        assert err.problems
