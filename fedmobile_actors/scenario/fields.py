"""Walk the scenario schema by dotted path: which fields exist, of what type, allowing what.

Why one walker: three readers need the same answers from the pydantic models. The loader checks
``-o`` override paths and sweep grid keys before using them and words its errors ("allowed:
0 <= x < 1"); pydantic error locations need their union tags removed before a user sees them;
and docs/scenarios.md is generated from the same descriptions. Asking the models, never a
hand-kept list, means a field added to the schema is known everywhere at once.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fedmobile_actors.scenario.schema import Scenario


@dataclass(frozen=True)
class Node:
    """One place in the schema: the annotation found there and the field that declared it."""

    annotation: Any
    field: FieldInfo | None = None


class PathError(ValueError):
    """A dotted path that names no field; the message says what exists instead."""


def members(annotation: Any) -> list[Any]:
    """The alternatives of a union (``A | B | None`` -> [A, B, None]), Annotated unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in members(arg)]
    return [annotation]


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def union_tags(annotation: Any) -> dict[str, type[BaseModel]]:
    """Tag -> member of a discriminated union of models (``{'markov': MarkovAvailability}``)."""
    tags: dict[str, type[BaseModel]] = {}
    for member in members(annotation):
        if not is_model(member):
            continue
        for name in ("dist", "model", "kind"):
            field = member.model_fields.get(name)
            if field is not None and typing.get_origin(field.annotation) is Literal:
                tags[str(typing.get_args(field.annotation)[0])] = member
    return tags


def children(node: Node, segment: str | int) -> list[Node]:
    """Where ``segment`` leads from ``node``: one node per union member that has it (or none)."""
    found: list[Node] = []
    for member in members(node.annotation):
        if is_model(member):
            field = member.model_fields.get(str(segment))
            if field is not None:
                found.append(Node(field.annotation, field))
            continue
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if origin in (tuple, list) and _is_index(segment):
            found.append(_item_node(args[0] if args else Any))
        elif origin is dict:
            found.append(_item_node(args[1] if len(args) == 2 else Any))
        elif member is Any:
            found.append(Node(Any))
    return found


def _item_node(annotation: Any) -> Node:
    """A list item or mapping value; ``Annotated[float, Field(ge=0)]`` keeps its bounds."""
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *metadata = typing.get_args(annotation)
        info = next((m for m in metadata if isinstance(m, FieldInfo)), None)
        return Node(inner, info)
    return Node(annotation)


def _is_index(segment: str | int) -> bool:
    if isinstance(segment, str):
        return segment.isascii() and segment.isdigit()
    return isinstance(segment, int)


def field_names(node: Node) -> list[str]:
    """Field names reachable one step below ``node`` (all union members together)."""
    names: list[str] = []
    for member in members(node.annotation):
        if is_model(member):
            names.extend(n for n in member.model_fields if n not in names)
    return names


def resolve(path: str | Sequence[str | int]) -> list[Node]:
    """The nodes a dotted path leads to from ``Scenario``; ``PathError`` if it leads nowhere.

    ``fleet.tiers.0.share`` indexes a list; ``fleet.availability.p_online`` is found in any
    member of the availability union (the value then decides which member applies).
    """
    parts = split_path(path) if isinstance(path, str) else list(path)
    if not parts:
        raise PathError("empty field path")
    nodes = [Node(Scenario)]
    for depth, segment in enumerate(parts):
        nxt = [child for node in nodes for child in children(node, segment)]
        if not nxt:
            raise PathError(_no_such(parts[:depth], segment, nodes))
        nodes = nxt
    return nodes


def split_path(path: str) -> list[str | int]:
    """``'fleet.tiers.0.share'`` -> ``['fleet', 'tiers', 0, 'share']``."""
    # isascii: str.isdigit() is also true of superscripts ('²'), which int() refuses.
    return [
        int(p) if p.isascii() and p.isdigit() else p for p in path.strip().split(".") if p != ""
    ]


def join_path(parts: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in parts)


def _printable(text: str) -> str:
    """``text``, or its quoted repr when it holds a newline or another unprintable character:
    an error names the path on one line, whatever the user typed."""
    return text if text.isprintable() else repr(text)


def _no_such(parent: Sequence[str | int], segment: str | int, nodes: list[Node]) -> str:
    where = _printable(join_path(parent)) or "the top level"
    here = _printable(join_path([*parent, segment]))
    names = [n for node in nodes for n in field_names(node)]
    if names:
        close = closest(str(segment), names)
        hint = f"did you mean {join_path([*parent, close])!r}? " if close else ""
        return f"{here}: no such field; {hint}{where} has: {', '.join(names)}"
    if any(typing.get_origin(m) in (tuple, list) for n in nodes for m in members(n.annotation)):
        return f"{here}: {where} is a list; the next part must be an index (0, 1, ...)"
    kind = describe_type(nodes[0].annotation)
    return f"{here}: {where} is {kind} and has no fields"


def closest(name: str, names: Sequence[str]) -> str | None:
    """The allowed name a typo most likely meant (``phone`` -> ``phones``), or None."""
    found = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return found[0] if found else None


def clean_location(loc: Sequence[str | int]) -> list[str | int]:
    """A pydantic error location as the user wrote it: union tags and validator names removed.

    pydantic inserts the member's tag (``fleet.availability.markov.mean_on_s``) and, for
    validators on union members, a ``function-after[...]`` step; neither is a key of the file.
    """
    out: list[str | int] = []
    nodes = [Node(Scenario)]
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        tags: dict[str, type[BaseModel]] = {}
        for node in nodes:
            tags.update(union_tags(node.annotation))
        if isinstance(part, str) and part in tags:
            nodes = [Node(tags[part])]
            continue
        out.append(part)
        nodes = [child for node in nodes for child in children(node, part)] or [Node(Any)]
    return out


# --------------------------------------------------------------------------------------------
# Words for types and constraints (errors and docs)
# --------------------------------------------------------------------------------------------


def describe_type(annotation: Any) -> str:
    """A type in a user's words: 'a number', 'a whole number', "one of 'a', 'b'", ..."""
    alternatives = members(annotation)
    tags = union_tags(annotation)
    if tags:
        return "a mapping with " + " | ".join(f"{_tag_key(m)}: {t}" for t, m in tags.items())
    words = [_describe_one(a) for a in alternatives if a is not type(None)]
    if type(None) in alternatives:
        words.append("null")
    return " or ".join(words)


def _tag_key(model: type[BaseModel]) -> str:
    return next(n for n in ("dist", "model", "kind") if n in model.model_fields)


def _describe_one(annotation: Any) -> str:
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "text"
    if annotation is Any:
        return "any value"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is dict:
        return f"a mapping of text to {_plural(args[1]) if len(args) == 2 else 'values'}"
    if is_model(annotation):
        return f"a mapping ({annotation.__name__})"
    return str(annotation)


def _plural(annotation: Any) -> str:
    one = describe_type(annotation)
    for article in ("a ", "an "):
        if one.startswith(article):
            return one[len(article) :].replace("number", "numbers").replace("mapping", "mappings")
    return one


def bounds(field: FieldInfo | None) -> str:
    """The numeric range or length a field allows, e.g. ``0 <= x < 1``; '' when unbounded."""
    if field is None:
        return ""
    low = high = ""
    length: list[str] = []
    unit = "character(s)" if field.annotation is str else "item(s)"
    for item in field.metadata:
        if isinstance(item, Ge):
            low = f"{item.ge} <= "
        elif isinstance(item, Gt):
            low = f"{item.gt} < "
        elif isinstance(item, Le):
            high = f" <= {_number(item.le)}"
        elif isinstance(item, Lt):
            high = f" < {item.lt}"
        elif isinstance(item, MinLen):
            length.append(f"at least {item.min_length:_} {unit}")
        elif isinstance(item, MaxLen):
            length.append(f"at most {item.max_length:_} {unit}")
    text = f"{low}x{high}" if low or high else ""
    return ", ".join([t for t in (text, *length) if t])


def _number(value: Any) -> str:
    """A bound as a user would type it: 1_000_000 for whole numbers, 0.001 or 1e+09 otherwise."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return f"{value:_}" if isinstance(value, int) else f"{value:g}"


def allowed(field: FieldInfo | None, annotation: Any = None) -> str:
    """What a field allows, in one phrase: its type and its bounds."""
    shown = annotation if annotation is not None or field is None else field.annotation
    kind = describe_type(shown)
    limits = bounds(field)
    return f"{kind}, {limits}" if limits else kind
