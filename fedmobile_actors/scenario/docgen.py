"""Render the scenario reference (docs/scenarios.md) from the pydantic models themselves.

Why generated: a hand-kept field list drifts the day someone adds a field. Here every section,
field, type, bound, default and description comes from schema.py, and a test compares the
committed docs with this output, so the reference cannot drift.

    python -m fedmobile_actors.scenario.docgen                         # print the reference
    python -m fedmobile_actors.scenario.docgen --write docs/scenarios.md   # refresh it in place

``--write`` replaces only the text between the two markers, so the hand-written walk-through
around it is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from fedmobile_actors.scenario import fields
from fedmobile_actors.scenario.schema import Scenario

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m fedmobile_actors.scenario.docgen -->"
END = "<!-- END GENERATED REFERENCE -->"

#: Defaults longer than this are shown as a YAML block under the section's table.
_INLINE_DEFAULT = 48


def sections(root: type[BaseModel] = Scenario) -> list[tuple[list[str], type[BaseModel]]]:
    """(dotted paths where it appears, model) for every model reachable from ``root``, in the
    order first met (depth first, fields in schema order)."""
    found: dict[type[BaseModel], list[str]] = {}

    def visit(path: str, model: type[BaseModel]) -> None:
        if model in found:
            found[model].append(path)
            return
        found[model] = [path]
        for name, info in model.model_fields.items():
            listed = any(
                typing.get_origin(m) in (tuple, list) for m in fields.members(info.annotation)
            )
            here = (f"{path}.{name}" if path else name) + ("[]" if listed else "")
            for inner in _models_in(info.annotation):
                visit(here, inner)

    visit("", root)
    return [(paths, model) for model, paths in found.items()]


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    for member in fields.members(annotation):
        if fields.is_model(member):
            yield member
        for arg in typing.get_args(member):
            yield from _models_in(arg)


def type_label(annotation: Any) -> str:
    """A compact type for the table: ``float``, ``'a' | 'b'``, ``list of [Tier](#tier)``."""
    tags = fields.union_tags(annotation)
    if tags:
        key = next(
            n for n in ("dist", "model", "kind") if n in next(iter(tags.values())).model_fields
        )
        links = ", ".join(f"[{t}](#{_anchor(m)})" for t, m in tags.items())
        return f"mapping, by `{key}`: {links}"
    words = [_label_one(m) for m in fields.members(annotation) if m is not type(None)]
    if type(None) in fields.members(annotation):
        words.append("null")
    return " \\| ".join(words)


def _label_one(annotation: Any) -> str:
    if fields.is_model(annotation):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (tuple, list):
        return f"list of {type_label(args[0]) if args else 'values'}"
    if origin is dict:
        return f"mapping of text to {type_label(args[1]) if len(args) == 2 else 'values'}"
    if origin is typing.Annotated:
        return _label_one(args[0])
    if annotation is Any:
        return "any"
    return {bool: "bool", int: "int", float: "float", str: "text"}.get(annotation, str(annotation))


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _default_value(info: FieldInfo) -> Any:
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
        return [v.model_dump(mode="json") for v in value]
    if isinstance(value, tuple):
        return list(value)
    return value


def _is_required(info: FieldInfo) -> bool:
    return info.default is PydanticUndefined and info.default_factory is None


def render_section(paths: Sequence[str], model: type[BaseModel]) -> str:
    """One model: heading, where it appears, its docstring's first paragraph, a field table."""
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("``", "`")
    where = ", ".join(f"`{p}`" for p in paths) if paths[0] else "the top level of a scenario file"
    lines = [f"### {model.__name__}", "", f"At {where}. {' '.join(doc.split())}", ""]
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    blocks: list[str] = []
    for name, info in model.model_fields.items():
        kind = type_label(info.annotation)
        limits = fields.bounds(info)
        if limits:
            kind += f"; {limits}"
        if _is_required(info):
            default = "required"
        elif fields.is_model(info.annotation):
            default = "its section's defaults"
        else:
            text = json.dumps(_default_value(info), separators=(", ", ": "))
            if len(text) <= _INLINE_DEFAULT:
                default = f"`{text}`"
            else:
                default = "see below"
                blocks.append(_default_block(name, _default_value(info)))
        description = " ".join((info.description or "").split()).replace("|", "\\|")
        if not description and name in ("dist", "model", "kind"):
            description = "Selects this section."
        lines.append(f"| `{name}` | {kind} | {default} | {description} |")
    for block in blocks:
        lines += ["", block]
    return "\n".join(lines)


def _default_block(name: str, value: Any) -> str:
    import yaml

    text = yaml.safe_dump({name: value}, sort_keys=False, default_flow_style=None, width=96)
    return f"Default `{name}`:\n\n```yaml\n{text.rstrip()}\n```"


def render_reference() -> str:
    """The whole generated reference, markers included."""
    parts = [
        BEGIN,
        "",
        "## Reference: every field",
        "",
        "Generated from `fedmobile_actors/scenario/schema.py`; do not edit by hand. Bounds use "
        "`x` for the value. A mapping chosen by a key (`dist`, `model`, `kind`) takes the fields "
        "of the section that key names.",
    ]
    for paths, model in sections():
        parts += ["", render_section(paths, model)]
    parts += ["", END]
    return "\n".join(parts) + "\n"


def replace_reference(document: str, reference: str) -> str:
    """``document`` with the text between the markers (inclusive) replaced by ``reference``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        return document.rstrip("\n") + "\n\n" + reference
    return document[:start] + reference + document[end + len(END) :].lstrip("\n")


def committed_reference(document: str) -> str | None:
    """The reference section of a committed document, markers included (None if absent)."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        return None
    return document[start : end + len(END)] + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--write", metavar="FILE", help="replace the reference section in FILE")
    args = parser.parse_args(argv)
    reference = render_reference()
    if args.write is None:
        sys.stdout.write(reference)
        return 0
    path = Path(args.write)
    document = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(replace_reference(document, reference), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
