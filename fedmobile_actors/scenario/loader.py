"""Read a scenario file: YAML -> base files merged -> overrides applied -> validated ``Scenario``.

This is the only module that reads YAML. Every failure becomes a ``ScenarioError`` whose lines
each name the file, the field path, the bad value and what is allowed, so the CLI can print them
and exit 2 without a traceback.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import Scenario

#: Key under which a scenario names the base file it extends (resolved relative to itself).
EXTENDS_KEY = "extends"


def load_scenario(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Scenario:
    """Load, merge, override and validate one scenario file."""
    file = Path(path)
    raw = _read_with_bases(file, seen=())
    for text in overrides:
        raw = apply_override(raw, text, source=str(file))
    raw.setdefault("base_dir", str(file.resolve().parent))
    if "name" not in raw:
        raw["name"] = file.stem
    return validate_mapping(raw, source=str(file))


def validate_mapping(raw: Mapping[str, Any], source: str) -> Scenario:
    """Validate a merged mapping; pydantic's errors become one line per problem."""
    try:
        return Scenario.model_validate(dict(raw))
    except ValidationError as err:
        raise ScenarioError(format_validation_error(err, raw, source)) from None


def _read_yaml(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise ScenarioError([f"{file}: scenario file not found"])
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ScenarioError([f"{file}: not valid YAML{where}: {problem}"]) from None
    except UnicodeDecodeError:
        raise ScenarioError([f"{file}: not a text file (cannot decode as UTF-8)"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(
            [f"{file}: top level is a {type(data).__name__}; a scenario must be a mapping"]
        )
    return data


def _read_with_bases(file: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = file.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ScenarioError([f"{file}: extends: circular chain {chain}"])
    data = _read_yaml(file)
    base = data.pop(EXTENDS_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ScenarioError([f"{file}: extends: value {base!r} is not a file path"])
    base_file = (file.parent / base) if not Path(base).is_absolute() else Path(base)
    merged = deep_merge(_read_with_bases(base_file, (*seen, resolved)), data)
    # Relative paths in the base resolve against the extending file unless it sets base_dir.
    return merged


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by ``top``."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_override(raw: Mapping[str, Any], text: str, source: str) -> dict[str, Any]:
    """Apply one ``dotted.path=value`` override; the value is parsed as YAML (``5``, ``[1, 2]``)."""
    if "=" not in text:
        raise ScenarioError([f"{source}: override {text!r}: expected dotted.path=value"])
    path, _, value_text = text.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ScenarioError([f"{source}: override {text!r}: empty field path"])
    try:
        value = yaml.safe_load(value_text)
    except yaml.YAMLError:
        raise ScenarioError([f"{source}: override {text!r}: value is not valid YAML"]) from None
    return set_path(raw, keys, value)


def set_path(raw: Mapping[str, Any], keys: list[str], value: Any) -> dict[str, Any]:
    """A copy of ``raw`` with ``value`` set at the nested ``keys`` (intermediate dicts created)."""
    out = dict(raw)
    head, rest = keys[0], keys[1:]
    if not rest:
        out[head] = value
        return out
    child = out.get(head)
    out[head] = set_path(child if isinstance(child, Mapping) else {}, rest, value)
    return out


def format_validation_error(err: ValidationError, raw: Mapping[str, Any], source: str) -> list[str]:
    """One line per pydantic error: file, field path, the bad value, and what is allowed."""
    lines = []
    for item in err.errors(include_url=False):
        loc = [part for part in item["loc"] if not _is_union_tag(part)]
        path = ".".join(str(p) for p in loc) or "(top level)"
        kind = item["type"]
        if kind == "extra_forbidden":
            lines.append(f"{source}: {path}: unknown field{_did_you_mean(loc)}")
            continue
        value = item.get("input")
        shown = _show(value)
        message = item["msg"].removeprefix("Value error, ")
        if kind == "union_tag_invalid":
            expected = item.get("ctx", {}).get("expected_tags", "")
            message = f"not one of the allowed kinds ({expected})"
            shown = _show(item.get("ctx", {}).get("tag", value))
        elif kind == "union_tag_not_found":
            message = f"needs the key {item.get('ctx', {}).get('discriminator', '')}"
        if kind == "missing":
            lines.append(f"{source}: {path}: required field is missing")
        else:
            lines.append(f"{source}: {path}: value {shown}: {message}")
    return lines or [f"{source}: invalid scenario"]


def _is_union_tag(part: Any) -> bool:
    """pydantic puts the discriminator tag (e.g. 'lognormal') into locations; users never wrote it."""
    return isinstance(part, str) and part in _UNION_TAGS


_UNION_TAGS = {
    "constant",
    "uniform",
    "lognormal",
    "always",
    "bernoulli",
    "markov",
    "diurnal",
    "trace",
    "synthetic",
    "usc_had",
    "npz",
    "iid",
    "dirichlet",
    "subject",
    "function-after[_ordered(), Uniform]",
}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(loc: list[Any]) -> str:
    """Suggest the closest allowed field name for an unknown key."""
    allowed = _allowed_fields(loc[:-1])
    if not allowed:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} allowed: {', '.join(sorted(allowed))}"


def _allowed_fields(parent: list[Any]) -> list[str]:
    """Field names of the model found by walking ``parent`` down from ``Scenario``."""
    model: Any = Scenario
    for part in parent:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}).keys())


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The (first) BaseModel class inside an annotation such as ``tuple[DeviceTier, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    metadata = getattr(annotation, "__metadata__", None)
    if metadata is not None:
        return _model_of(annotation.__origin__)
    return None


def scenario_to_yaml(scenario: Scenario) -> str:
    """The resolved scenario as YAML, every default filled in (``fedmobile validate`` prints it)."""
    data = scenario.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
