"""Scenario layer: YAML -> typed, validated, frozen ``Scenario`` (the only place YAML is read)."""

from fedmobile_actors.scenario.loader import (
    load_scenario,
    read_settings,
    scenario_to_yaml,
    validate_mapping,
)
from fedmobile_actors.scenario.schema import Scenario

__all__ = [
    "Scenario",
    "load_scenario",
    "read_settings",
    "scenario_to_yaml",
    "validate_mapping",
]
