"""Expand a scenario's ``sweep:`` block into one resolved scenario per (grid point, seed).

Why the expansion re-validates each point from the user's own keys: a grid value may switch a
union member (``fleet.availability.model: markov``), and substituting it into a fully resolved
scenario would keep the old member's fields (``p_online``) and be rejected. The scenario's
explicitly set keys (``model_dump(exclude_unset=True)``) are what the user wrote after merging
and overrides, so a point is exactly "this file, with these values".
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario import fields
from fedmobile_actors.scenario.loader import set_path, validate_mapping
from fedmobile_actors.scenario.schema import MissingDistillConfig, Scenario

#: Values longer than this in a run name are shown by their position in the grid instead.
_MAX_VALUE_CHARS = 40


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep.

    ``params`` maps each swept dotted path to its value here, plus ``"seed"``; ``scenario`` is the
    resolved scenario of the run (its name suffixed with the params, its sweep block removed).
    """

    params: dict[str, Any] = field(hash=False)
    scenario: Scenario


def expand_sweep(scenario: Scenario) -> list[SweepPoint]:
    """Every (variant, grid point, seed) of ``scenario.sweep``, in a stable order.

    Order: the variants in the order the file gives them (one unnamed variant when there are
    none), for each the Cartesian product of the grid's values, keys in file order and the last
    key varying fastest, each point repeated for every seed in ``sweep.seeds``. A variant's
    values are set first, then the grid's. ``params`` has ``"variant"`` only when the sweep has
    variants. A scenario without a sweep block is a ``ScenarioError`` (``fedmobile run`` is for
    those).
    """
    sweep = scenario.sweep
    if sweep is None:
        raise ScenarioError(
            [f"{scenario.name}: no sweep block; add sweep: {{grid: ..., seeds: [...]}}"]
        )
    base = {k: v for k, v in scenario.model_dump(mode="json", exclude_unset=True).items()}
    base.pop("sweep", None)
    base["base_dir"] = scenario.base_dir
    keys = list(sweep.grid)
    labels = _short_labels(keys)
    value_labels = {key: _value_labels(sweep.grid[key]) for key in keys}
    variants: list[tuple[str | None, Mapping[str, Any]]] = list(sweep.variants.items()) or [
        (None, {})
    ]
    points: list[SweepPoint] = []
    for variant, settings in variants:
        with_variant = _substituted(base, settings, f"{scenario.name}: sweep.variants[{variant!r}]")
        for combo in itertools.product(*(enumerate(sweep.grid[k]) for k in keys)):
            values = {key: value for key, (_, value) in zip(keys, combo, strict=True)}
            raw = _substituted(with_variant, values, f"{scenario.name}: sweep.grid")
            suffix = [] if variant is None else [f"variant={variant}"]
            suffix += [
                f"{label}={value_labels[key][index]}"
                for key, label, (index, _) in zip(keys, labels, combo, strict=True)
            ]
            for seed in sweep.seeds:
                params: dict[str, Any] = {} if variant is None else {"variant": variant}
                params |= {**values, "seed": seed}
                name = "-".join([scenario.name, *suffix, f"seed={seed}"])
                point_raw = {**raw, "seed": seed, "name": name}
                source = f"{scenario.name} sweep point {_describe(params)}"
                points.append(SweepPoint(params, validate_mapping(point_raw, source)))
    return points


def _substituted(
    raw: Mapping[str, Any], values: Mapping[str, Any], where: str
) -> Mapping[str, Any]:
    """``raw`` with each dotted path of ``values`` set; a path that cannot be set names itself."""
    for key, value in values.items():
        try:
            raw = set_path(raw, fields.split_path(key), value)
        except KeyError as err:
            raise ScenarioError([f"{where}[{key!r}]: {err.args[0]}"]) from None
    return raw


def _short_labels(keys: list[str]) -> list[str]:
    """The last part of each dotted path, or the whole path where two last parts collide."""
    last = [_last_name(k) for k in keys]
    return [k if last.count(tail) > 1 else tail for k, tail in zip(keys, last, strict=True)]


def _last_name(key: str) -> str:
    """``fleet.failure_prob`` -> ``failure_prob``; ``algorithm.name`` -> ``algorithm`` (a bare
    "name" says nothing)."""
    parts = [str(p) for p in fields.split_path(key)] or [key]
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def value_labels(values: Sequence[Any]) -> list[str]:
    """Public name of ``_value_labels``: tables and plots label swept values the same way."""
    return _value_labels(tuple(values))


def _value_labels(values: tuple[Any, ...]) -> list[str]:
    """Each value as it appears in a run name: compact JSON; a mapping (a whole section) by its
    tag and the leaves that tell it apart from the grid's other values
    (``markov(mean_on_s=30,mean_off_s=15)``, ``rate=0.8``); its grid position appended where
    that alone would be ambiguous, or used where the label would be too long."""
    leaves = [_leaves(v) if isinstance(v, Mapping) else {} for v in values]
    labels = []
    for index, value in enumerate(values):
        if isinstance(value, Mapping):
            tag = _tag(value)
            kin = [lv for lv, v in zip(leaves, values, strict=True) if _tag(v) == tag]
            text = _mapping_label(value, leaves[index], kin)
            if len(text) > _MAX_VALUE_CHARS and tag is not None:
                text = f"{tag}#{index}"
        else:
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        labels.append(text if len(text) <= _MAX_VALUE_CHARS else f"#{index}")
    return [
        f"{label}#{index}" if labels.count(label) > 1 else label
        for index, label in enumerate(labels)
    ]


def _leaves(value: Any, prefix: str = "") -> dict[str, str]:
    """Dotted path -> compact JSON of every scalar (or empty list/mapping) inside ``value``."""
    if isinstance(value, Mapping) and value:
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return {prefix: text}


def _mapping_label(
    value: Mapping[str, Any], own: dict[str, str], every: list[dict[str, str]]
) -> str:
    tag = _tag(value)
    differing = [
        (path, text)
        for path, text in own.items()
        if path not in ("model", "dist", "kind", "policy", "name")
        and any(other.get(path) != text for other in every if other is not own)
    ]
    inner = ",".join(f"{path.rsplit('.', 1)[-1]}={text}" for path, text in differing)
    if tag is None:
        return inner or "default"
    return f"{tag}({inner})" if inner else tag


def _tag(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for key in ("model", "dist", "kind", "policy", "name"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return None


def _describe(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())


#: Keys of a resolved scenario left out of its cell's id: its name and description (a grid
#: reordered renames its cells), where its output goes, and which Ray to start or join (a sweep
#: may be resumed from another machine). Everything else, runtime sizes included, is the cell.
_NOT_SETTINGS = ("name", "description", "sweep")
_NOT_SETTINGS_IN = {"output": ("dir",), "runtime": ("address", "num_cpus", "shard_cache_mb")}


def cell_id(scenario: Scenario) -> str:
    """A stable id of the cell that runs ``scenario``: a hash of its resolved settings.

    Why settings and not the order or the name of the cell: a resumed sweep must find a cell's
    earlier run whatever order the grid lists its values in, and two cells with the same
    settings are the same computation (every draw is keyed by seed, phone, round, purpose).
    """
    return _settings_hash(scenario.model_dump(mode="json"))


def cell_id_of_yaml(text: str) -> str | None:
    """The cell id of a scenario as a run directory stores it (scenario.yaml); None if the
    text is not a scenario mapping (a run directory killed while it was being written)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return _settings_hash(data) if isinstance(data, dict) else None


def _settings_hash(data: Mapping[str, Any]) -> str:
    settings = {k: v for k, v in data.items() if k not in _NOT_SETTINGS}
    for section, keys in _NOT_SETTINGS_IN.items():
        part = settings.get(section)
        if isinstance(part, Mapping):
            settings[section] = {k: v for k, v in part.items() if k not in keys}
    settings = _without_absent_options(settings)
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


#: Settings added after cell ids were first written, with the value that means "as before".
#: At that value they are left out of a cell's id, so a cell stored by an older version (where
#: the field is absent) keeps its id and a resumed sweep still finds it.
_ADDED_SETTINGS: dict[tuple[str, ...], Any] = {
    ("data", "source", "per_phone"): None,
    ("data", "proxy_split"): "random",
    ("runtime", "device"): "auto",
    ("algorithm", "missing_distill"): MissingDistillConfig().model_dump(),
}


def _without_absent_options(settings: dict[str, Any]) -> dict[str, Any]:
    """Drop the settings of ``_ADDED_SETTINGS`` that hold their "as before" value."""
    for path, neutral in _ADDED_SETTINGS.items():
        settings = _drop_if(settings, path, neutral)
    return settings


def _drop_if(settings: Mapping[str, Any], path: tuple[str, ...], neutral: Any) -> dict[str, Any]:
    """``settings`` without the key at ``path`` when it holds ``neutral`` (copies, no mutation)."""
    out = dict(settings)
    head, rest = path[0], path[1:]
    if not rest:
        if head in out and out[head] == neutral:
            del out[head]
        return out
    inner = out.get(head)
    if isinstance(inner, Mapping):
        out[head] = _drop_if(inner, rest, neutral)
    return out
