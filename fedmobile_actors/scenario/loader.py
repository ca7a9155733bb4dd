"""Read a scenario file: YAML -> base files merged -> overrides applied -> validated ``Scenario``.

This is the only module that reads YAML. Every failure becomes a ``ScenarioError`` whose lines
each name the file, the field path, the bad value and what is allowed, so the CLI can print them
and exit 2 without a traceback. "Every failure" is meant literally: a directory, an unreadable
file, binary bytes, tabs, duplicate keys, non-text keys, numbers too large to hold, ``.inf``,
nesting deep enough to exhaust the stack, a missing or malformed availability trace, and sweep
grids over fields that do not exist (tests/scenario feeds it random and mutated files).
"""

from __future__ import annotations

import math
import os
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario import fields
from fedmobile_actors.scenario.schema import Scenario, TraceAvailability, tier_share_problem
from fedmobile_actors.scenario.traces import resolve_trace, trace_problem

#: Key under which a scenario names the base file it extends (resolved relative to itself).
EXTENDS_KEY = "extends"

#: At most this many problems are listed; the rest are counted (a wrong file can have hundreds).
MAX_PROBLEMS = 40

#: Grid keys a sweep may not vary: seeds have their own list, and a sweep cannot sweep itself.
_UNSWEEPABLE = ("seed", "sweep", "base_dir")


def load_scenario(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Scenario:
    """Load, merge, override and validate one scenario file."""
    file = Path(path)
    try:
        raw = _read_with_bases(file, seen=())
        problems: list[str] = []
        for text in overrides:
            try:
                raw = apply_override(raw, text, source=str(file))
            except ScenarioError as err:
                problems.extend(err.problems)
        if problems:
            raise ScenarioError(problems)
        raw.setdefault("base_dir", str(file.resolve().parent))
        if "name" not in raw:
            raw["name"] = file.stem
        return validate_mapping(raw, source=str(file))
    except RecursionError:
        raise ScenarioError([f"{file}: nested too deeply to be a scenario"]) from None


def validate_mapping(raw: Mapping[str, Any], source: str) -> Scenario:
    """Validate a merged mapping; pydantic's errors become one line per problem.

    After the schema, the checks that need the whole scenario run: the availability trace file
    (read and checked now, relative to ``base_dir``) and the sweep grid (each key a field path,
    each value valid when substituted into this scenario).
    """
    try:
        scenario = Scenario.model_validate(dict(raw))
    except ValidationError as err:
        raise ScenarioError(format_validation_error(err, raw, source)) from None
    problems = _trace_problems(scenario, source) + _sweep_problems(scenario, raw, source)
    if problems:
        raise ScenarioError(_capped(problems))
    return scenario


# --------------------------------------------------------------------------------------------
# Reading YAML
# --------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """``safe_load`` that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in first_line
            except TypeError:  # unhashable: the base class reports it
                break
            if seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {_show(key)} (first given at line {first_line[key] + 1})",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def short_path(path: Path | str, limit: int = 160) -> str:
    """A path fit for a one-line message: odd characters escaped, the middle of a long one cut."""
    text = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    text = text.replace("\x00", "\\x00").replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


def read_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A stored scenario file as its raw mapping, not validated.

    Why: a run directory written by an older version may hold a field this version no longer
    has; comparing its settings must still work, so the report reads what is there.
    """
    return _read_yaml(Path(path))


def _read_yaml(file: Path) -> dict[str, Any]:
    shown = short_path(file)
    try:
        if file.is_dir():
            raise ScenarioError([f"{shown}: is a directory; expected a scenario YAML file"])
        if not file.is_file():
            raise ScenarioError([f"{shown}: scenario file not found"])
        text = file.read_bytes().decode("utf-8")
    except ValueError as err:  # an embedded NUL byte; UnicodeDecodeError is handled below
        if isinstance(err, UnicodeDecodeError):
            raise ScenarioError(
                [f"{file}: not a text file (byte {err.start} is not UTF-8)"]
            ) from None
        raise ScenarioError([f"{shown}: not a usable file path ({err})"]) from None
    except OSError as err:
        raise ScenarioError([f"{shown}: cannot read ({err.strerror or err})"]) from None
    data = parse_yaml(text, str(file))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(
            [f"{file}: top level is a {type(data).__name__}; a scenario must be a mapping"]
        )
    return data


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> Python data, every failure a one-line ``ScenarioError``.

    Why more than ``yaml.YAMLError`` is caught: PyYAML's constructors raise ``ValueError`` for
    e.g. an integer beyond Python's digit limit or a bad ``!!timestamp``, and its composer
    recurses once per nesting level. All of these mean "this is not a usable YAML file".
    """
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = str(getattr(err, "problem", None) or getattr(err, "reason", None) or err)
        if "\t" in problem or "'\\t'" in problem:
            problem += " (indent with spaces, not tabs)"
        raise ScenarioError([f"{source}: not valid YAML{where}: {_one_line(problem)}"]) from None
    except RecursionError:
        raise ScenarioError([f"{source}: not valid YAML: nested too deeply"]) from None
    except (ValueError, TypeError, OverflowError) as err:
        problem = str(err)
        if "limit" in problem and "digits" in problem:
            problem = "a number has more digits than any field allows"
        raise ScenarioError([f"{source}: not valid YAML: {_one_line(problem)}"]) from None


def _read_with_bases(file: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    try:
        resolved = file.resolve()
    except (OSError, ValueError, RuntimeError) as err:
        raise ScenarioError([f"{short_path(file)}: not a usable file path ({err})"]) from None
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ScenarioError([f"{file}: extends: circular chain {chain}"])
    data = _read_yaml(file)
    base = data.pop(EXTENDS_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base.strip():
        raise ScenarioError(
            [f"{file}: extends: value {_show(base)}: expected the path of a base scenario file"]
        )
    base_file = Path(base).expanduser()
    if not base_file.is_absolute():
        base_file = file.parent / base_file
    # Relative paths inside the base (traces, npz files) resolve against the extending file's
    # directory, since base_dir is set from the file that was loaded.
    return deep_merge(_read_with_bases(base_file, (*seen, resolved)), data)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by ``top``."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------------------------
# Overrides and dotted paths
# --------------------------------------------------------------------------------------------


def apply_override(raw: Mapping[str, Any], text: str, source: str) -> dict[str, Any]:
    """Apply one ``dotted.path=value`` override; the value is parsed as YAML (``5``, ``[1, 2]``).

    The path must name a field of the schema (``fleet.tiers.0.share`` indexes a list the file
    sets); a wrong path is reported with the closest field names, before any validation.
    """
    if "=" not in text:
        raise ScenarioError([f"{source}: override {text!r}: expected dotted.path=value"])
    path, _, value_text = text.partition("=")
    keys = fields.split_path(path)
    if not keys:
        raise ScenarioError([f"{source}: override {text!r}: empty field path"])
    try:
        fields.resolve(keys)
    except fields.PathError as err:
        raise ScenarioError([f"{source}: override {text!r}: {err}"]) from None
    try:
        value = parse_yaml(value_text, f"override {text!r}")
    except ScenarioError as err:
        raise ScenarioError([f"{source}: {line}" for line in err.problems]) from None
    try:
        return set_path(raw, keys, value)
    except KeyError as err:
        raise ScenarioError([f"{source}: override {text!r}: {err.args[0]}"]) from None


def set_path(raw: Mapping[str, Any], keys: Sequence[str | int], value: Any) -> dict[str, Any]:
    """A copy of ``raw`` with ``value`` set at the nested ``keys`` (intermediate dicts created).

    An integer key indexes a list the mapping already holds; ``KeyError`` (with a sentence) if
    that list is absent or too short, since a list's other items cannot be guessed.
    """
    return _set_path(raw, list(keys), value, [])


def _set_path(
    raw: Mapping[str, Any], keys: list[str | int], value: Any, done: list[str | int]
) -> dict[str, Any]:
    out = dict(raw)
    head, rest = keys[0], keys[1:]
    name = str(head)
    if not rest:
        out[name] = value
        return out
    child = out.get(name)
    if isinstance(rest[0], int) and not isinstance(child, Mapping):
        out[name] = _set_item(child, rest, value, [*done, name])
        return out
    out[name] = _set_path(child if isinstance(child, Mapping) else {}, rest, value, [*done, name])
    return out


def _set_item(items: Any, keys: list[str | int], value: Any, done: list[str | int]) -> list[Any]:
    index, where = int(keys[0]), fields.join_path(done)
    if not isinstance(items, list | tuple):
        raise KeyError(f"{where} is not given as a list in the file; set the whole list instead")
    if index >= len(items):
        raise KeyError(f"{where} has {len(items)} item(s); index {index} is out of range")
    out = list(items)
    if len(keys) == 1:
        out[index] = value
    else:
        child = out[index]
        rest = keys[1:]
        out[index] = _set_path(
            child if isinstance(child, Mapping) else {}, rest, value, [*done, index]
        )
    return out


# --------------------------------------------------------------------------------------------
# Errors, one line each
# --------------------------------------------------------------------------------------------

_RANGE_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "too_short",
    "too_long",
    "string_too_short",
    "string_too_long",
}
_TYPE_WORDS = {
    "int_from_float": "not a whole number",
    "int_parsing": "not a whole number",
    "int_type": "not a whole number",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "finite_number": "not a finite number",
    "string_type": "not text",
    "bool_parsing": "not true or false",
    "bool_type": "not true or false",
    "literal_error": "not allowed",
    "dict_type": "not a mapping",
    "model_type": "not a mapping",
    "model_attributes_type": "not a mapping",
    "tuple_type": "not a list",
    "list_type": "not a list",
}


def format_validation_error(err: ValidationError, raw: Mapping[str, Any], source: str) -> list[str]:
    """One line per pydantic error: file, field path, the bad value, and what is allowed.

    Linear in the number of errors (a 10 MB file of junk keys has hundreds of thousands): lines
    are de-duplicated through a set, echoes are found through a set of failed prefixes, and only
    the first ``MAX_PROBLEMS`` distinct lines are formatted; the rest are counted.
    """
    items: list[dict[str, Any]] = [dict(item) for item in err.errors(include_url=False)]
    failed_prefixes: set[tuple[Any, ...]] = set()
    for item in items:
        if item["type"] != "too_short":
            loc = tuple(item["loc"])
            failed_prefixes.update(loc[:n] for n in range(len(loc) + 1))
    lines: list[str] = []
    seen: set[str] = set()
    more = 0
    for item in items:
        loc = tuple(item["loc"])
        if item["type"] == "too_short" and loc in failed_prefixes:
            continue  # pydantic's echo of a failed item ("at least 1 item after validation")
        if len(lines) >= MAX_PROBLEMS:
            more += 1
            continue
        line = f"{source}: {_format_item(item)}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    lines.extend(f"{source}: {line}" for line in _rules_pydantic_skipped(raw, lines))
    if more:
        lines.append(f"... and {more} more problems")
    return lines or [f"{source}: invalid scenario"]


def _format_item(item: dict[str, Any]) -> str:
    loc = fields.clean_location(item["loc"])
    kind = item["type"]
    ctx = item.get("ctx") or {}
    if kind == "scenario_rule":
        at = fields.split_path(ctx["at"]) if ctx.get("at") else []
        return f"{show_path([*loc, *at])}: value {_show(ctx['value'])}: {ctx['message']}"
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        if kind == "string_pattern_mismatch":  # a key of the wrong form (sweep variant names)
            return (
                f"{show_path(loc)}: key {_show(item.get('input'))}: not a valid name; allowed: "
                f"text matching {ctx.get('pattern')}"
            )
        kind = "invalid_key"
    path = show_path(loc)
    if kind == "invalid_key":
        return f"{path}: key {_show(item.get('input'))}: not text; keys must be text"
    if kind == "extra_forbidden":
        return f"{path}: unknown field{_did_you_mean(loc)}"
    if kind == "missing":
        return f"{path}: required field is missing; allowed: {_allowed_at(loc)}"
    if kind == "union_tag_invalid":
        key = str(ctx.get("discriminator", "")).strip("'")
        return (
            f"{show_path([*loc, key])}: value {_show(ctx.get('tag'))}: not one of the allowed "
            f"kinds; allowed: {ctx.get('expected_tags', '')}"
        )
    if kind == "union_tag_not_found":
        key = str(ctx.get("discriminator", "")).strip("'")
        return f"{path}: value {_show(item.get('input'))}: needs the key {key!r}; {_kinds_at(loc)}"
    value = f"value {_show(item.get('input'))}"
    if kind in _RANGE_ERRORS:
        return f"{path}: {value}: out of range; allowed: {_allowed_at(loc)}"
    if kind in _TYPE_WORDS:
        return f"{path}: {value}: {_TYPE_WORDS[kind]}; allowed: {_allowed_at(loc)}"
    return f"{path}: {value}: {_one_line(str(item['msg']).removeprefix('Value error, '))}"


def _rules_pydantic_skipped(raw: Mapping[str, Any], lines: list[str]) -> list[str]:
    """Cross-field rules pydantic did not reach because a field they need failed first.

    pydantic runs a field validator only once the field itself is valid, so a fleet whose tier
    has a bad bandwidth and whose shares sum to 0.9 would only hear about the bandwidth. The
    shares are checked here from the raw numbers, if they are numbers.
    """
    if any("tier shares" in line for line in lines):
        return []
    fleet = raw.get("fleet")
    tiers = fleet.get("tiers") if isinstance(fleet, Mapping) else None
    if not isinstance(tiers, list) or not tiers:
        return []
    shares = [t.get("share") if isinstance(t, Mapping) else None for t in tiers]
    numbers = [float(s) for s in shares if isinstance(s, int | float) and _is_real(s)]
    if len(numbers) != len(shares):
        return []
    problem = tier_share_problem(numbers)
    return [] if problem is None else [f"fleet.tiers: value {_show(shares)}: {problem}"]


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _allowed_at(loc: Sequence[str | int]) -> str:
    try:
        nodes = fields.resolve(list(loc))
    except fields.PathError:
        return "see docs/scenarios.md"
    return fields.allowed(nodes[0].field, nodes[0].annotation)


def _kinds_at(loc: Sequence[str | int]) -> str:
    try:
        nodes = fields.resolve(list(loc))
    except fields.PathError:
        return "see docs/scenarios.md"
    return "allowed: " + fields.describe_type(nodes[0].annotation)


def _did_you_mean(loc: Sequence[str | int]) -> str:
    """Suggest the closest allowed field name for an unknown key."""
    if not loc:
        return ""
    try:
        nodes = fields.resolve(list(loc[:-1])) if loc[:-1] else [fields.Node(Scenario)]
    except fields.PathError:
        return ""
    allowed = [name for node in nodes for name in fields.field_names(node)]
    if not allowed:
        return ""
    key = str(loc[-1])
    hint = ""
    if "." in key:
        try:
            fields.resolve([*loc[:-1], *fields.split_path(key)])
            hint = "; a dotted path works in -o and sweep grids only: nest it as YAML keys"
        except fields.PathError:
            pass
    if not hint:
        close = fields.closest(key, allowed)
        hint = f"; did you mean {close!r}?" if close else ""
    return f"{hint or ';'} allowed: {', '.join(sorted(allowed))}"


def show_path(loc: Sequence[Any]) -> str:
    """A location as a dotted path; keys that are not plain names are quoted (``a['x y']``)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f".{part}" if out else str(part)
        elif isinstance(part, str) and part.replace("_", "a").isalnum() and part.isascii():
            out += f".{part}" if out else part
        else:
            out += f"[{_show(part)}]"
    return out or "(top level)"


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 6
_REPR.maxdict = 4
_REPR.maxstring = 50
_REPR.maxlong = 30
_REPR.maxother = 50


def _show(value: Any) -> str:
    """A bounded repr: a YAML alias bomb or a 5000-digit number must not hang or crash this."""
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    text = _one_line(text)
    return text if len(text) <= 80 else text[:77] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_PROBLEMS:
        return lines
    return [*lines[:MAX_PROBLEMS], f"... and {len(lines) - MAX_PROBLEMS} more problems"]


# --------------------------------------------------------------------------------------------
# Checks that need the validated scenario: trace file, sweep grid
# --------------------------------------------------------------------------------------------


def _trace_problems(scenario: Scenario, source: str) -> list[str]:
    availability = scenario.fleet.availability
    if not isinstance(availability, TraceAvailability):
        return []
    problem = trace_problem(resolve_trace(availability.file, scenario.base_dir))
    if problem is None:
        return []
    return [f"{source}: fleet.availability.file: value {_show(availability.file)}: {problem}"]


def _sweep_problems(scenario: Scenario, raw: Mapping[str, Any], source: str) -> list[str]:
    """Each variant and grid key must be a field path, and each value must validate when
    substituted: a variant's values together, a grid value under every variant (every variant
    runs at every grid point).

    Grid values are checked one at a time against the rest of the scenario; a combination that
    is invalid only together (say two tier shares) is reported when the sweep expands.
    """
    if scenario.sweep is None:
        return []
    base = {k: v for k, v in raw.items() if k != "sweep"}
    problems: list[str] = []
    bases: list[tuple[str | None, Mapping[str, Any]]] = [(None, base)]
    if scenario.sweep.variants:
        bases = []
        for name, settings in scenario.sweep.variants.items():
            found, with_variant = _variant_problems(
                base, name, settings, scenario.sweep.grid, source
            )
            problems += found
            if with_variant is not None:
                bases.append((name, with_variant))
    for key, values in scenario.sweep.grid.items():
        where = f"{source}: sweep.grid[{key!r}]"
        parts = fields.split_path(key)
        path_problem = _sweep_path_problem(parts)
        if path_problem is not None:
            problems.append(f"{where}: {path_problem}")
            continue
        if not values:
            problems.append(f"{where}: value []: needs at least one value to try")
        for index, value in enumerate(values):
            for variant, variant_base in bases:
                at = f"{where}[{index}]" + ("" if variant is None else f" with variant {variant!r}")
                try:
                    validate_mapping(set_path(variant_base, parts, value), source)
                except ScenarioError as err:
                    problems.extend(
                        f"{at}: {line.removeprefix(source + ': ')}" for line in err.problems
                    )
                except KeyError as err:
                    problems.append(f"{at}: {err.args[0]}")
    return problems


def _sweep_path_problem(parts: Sequence[str | int]) -> str | None:
    """Why a dotted path cannot be swept, or None: it must name a field, and not the seed or
    the sweep itself."""
    if not parts or str(parts[0]) in _UNSWEEPABLE:
        return "cannot be swept; allowed: any other field path (seeds go in sweep.seeds)"
    try:
        fields.resolve(parts)
    except fields.PathError as err:
        return str(err)
    return None


def _variant_problems(
    base: Mapping[str, Any],
    name: str,
    settings: Mapping[str, Any],
    grid: Mapping[str, Any],
    source: str,
) -> tuple[list[str], Mapping[str, Any] | None]:
    """What is wrong with one variant, and the scenario with its values set (None when wrong).

    Its paths must be sweepable; none may be a grid key or lie inside one (the grid, set after
    the variant, would silently overrule it; a grid key inside a variant's section only refines
    it and is allowed); its values set together must validate against the rest of the
    scenario."""
    where = f"{source}: sweep.variants[{name!r}]"
    if not settings:
        return [f"{where}: value {{}}: needs at least one dotted path -> value"], None
    problems = []
    for key in settings:
        path_problem = _sweep_path_problem(fields.split_path(key))
        if path_problem is not None:
            problems.append(f"{where}[{key!r}]: {path_problem}")
        clash = [g for g in grid if g == key or key.startswith(f"{g}.")]
        if clash:
            problems.append(
                f"{where}[{key!r}]: also set by sweep.grid[{clash[0]!r}]; set it in one"
            )
    if problems:
        return problems, None
    try:
        substituted: Mapping[str, Any] = base
        for key, value in settings.items():
            substituted = set_path(substituted, fields.split_path(key), value)
        validate_mapping(substituted, source)
    except ScenarioError as err:
        return [f"{where}: {line.removeprefix(source + ': ')}" for line in err.problems], None
    except KeyError as err:
        return [f"{where}: {err.args[0]}"], None
    return [], substituted


def scenario_to_yaml(scenario: Scenario) -> str:
    """The resolved scenario as YAML, every default filled in (``fedmobile validate`` prints it)."""
    data = scenario.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
