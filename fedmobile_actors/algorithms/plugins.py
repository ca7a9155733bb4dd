"""Strategies and model kinds from outside the package: import paths and entry points.

A scenario names a plug-in in one of two ways (docs/extending.md):

- an import path, ``package.module:Name`` (``Name`` may be dotted, ``module:Outer.Inner``): the
  module is imported from ``sys.path`` like any other, so it must be importable where the run
  starts (an installed package, ``PYTHONPATH``, or the current directory for the CLI);
- a bare name registered by an installed package under an entry-point group
  (``fedmobile_actors.strategies`` or ``fedmobile_actors.models``), whose value is such a path.

Why importlib alone, and why here: resolving a name is pure Python and belongs to the algorithms
layer, where the built-in registries live, so ``fedmobile validate`` and every process of a run
(the server and each phone host, on any Ray node) resolve a name the same way. What can go wrong
(a module that does not import, a missing name) is one ``ScenarioError`` line naming the field.

Ray's hosts import the same module; ``shipped_paths`` tells the runtime which files or package
directories to send along (those not installed in site-packages), so a module in a directory of
the user's reaches every node without installing anything there.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path

from fedmobile_actors.errors import ScenarioError

#: Entry-point group of strategies: ``name = "package.module:StrategyClass"``.
STRATEGY_GROUP = "fedmobile_actors.strategies"
#: Entry-point group of model kinds: ``name = "package.module:builder"``.
MODEL_GROUP = "fedmobile_actors.models"

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_IMPORT_PATH = re.compile(rf"^({_DOTTED}):({_DOTTED})$")


def is_import_path(ref: str) -> bool:
    """Whether ``ref`` is written as ``module:Name`` (as opposed to a registered name)."""
    return ":" in ref


def entry_point_value(group: str, name: str) -> str | None:
    """The ``module:Name`` an installed package registered as ``name`` in ``group``, if any."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return str(ep.value)
    return None


def entry_point_names(group: str) -> list[str]:
    """Every name installed packages registered in ``group``, sorted."""
    return sorted({ep.name for ep in entry_points(group=group)})


def reference(ref: str, group: str) -> str | None:
    """The import path ``ref`` stands for: itself when written as one, else its entry point's
    value (None when no installed package registered it)."""
    return ref if is_import_path(ref) else entry_point_value(group, ref)


def plugin_references(algorithm_name: str, model_kind: str) -> list[str]:
    """The import paths a scenario's ``algorithm.name`` and ``model.kind`` stand for (none for
    built-ins): the modules every process of a run imports. Imports nothing (no torch), so the
    Ray driver can ask before it starts any actor."""
    refs = [
        reference(algorithm_name, STRATEGY_GROUP),
        reference(model_kind, MODEL_GROUP),
    ]
    return [r for r in refs if r is not None]


def load_object(ref: str, field: str) -> object:
    """Import ``module`` and return ``module.Name`` for ``ref = "module:Name"``.

    Every failure is one ``ScenarioError`` line starting with ``field``: a malformed path, a
    module that is not found, a module that raises while importing, a missing name.
    """
    match = _IMPORT_PATH.match(ref)
    if match is None:
        raise ScenarioError([f"{field}: {ref!r} is not an import path; write package.module:Name"])
    module_name, attr_path = match.groups()
    try:
        obj: object = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and (module_name + ".").startswith(err.name + "."):
            raise ScenarioError(
                [
                    f"{field}: cannot import {module_name!r} (no module named {err.name!r}); "
                    "install it or put its directory on PYTHONPATH"
                ]
            ) from None
        raise ScenarioError(
            [f"{field}: importing {module_name!r} failed: {_one_line(err)}"]
        ) from None
    except Exception as err:  # the user's module raised while importing: show why, in one line
        raise ScenarioError(
            [f"{field}: importing {module_name!r} failed: {_one_line(err)}"]
        ) from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ScenarioError([f"{field}: {module_name!r} has no attribute {attr_path!r}"])
        obj = getattr(obj, part)
    return obj


def shipped_paths(refs: list[str]) -> list[str]:
    """Files or package directories of the plug-in modules ``refs`` (import paths) that are not
    installed in a site-packages directory: what Ray's ``runtime_env`` ``py_modules`` must carry
    so that every node imports them. The project's own modules are never shipped.

    Call it after the refs resolved (their modules are imported); sorted, without duplicates.
    """
    out: set[str] = set()
    for ref in refs:
        match = _IMPORT_PATH.match(ref)
        if match is None:
            continue
        top = match.group(1).split(".")[0]
        if top == "fedmobile_actors":
            continue
        path = _top_level_path(top)
        if path is not None and not _installed(path):
            out.add(str(path))
    return sorted(out)


def _top_level_path(top: str) -> Path | None:
    """The single file of a top-level module, or the directory of a top-level package."""
    module = sys.modules.get(top)
    spec = getattr(module, "__spec__", None) if module is not None else None
    if spec is None:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        # A namespace package spread over several directories cannot be shipped as one.
        return Path(locations[0]).resolve() if len(locations) == 1 else None
    if spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin).resolve()
    return None


def _installed(path: Path) -> bool:
    return any(part in {"site-packages", "dist-packages"} for part in path.parts)


def _one_line(err: BaseException) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= 240 else text[:237] + "..."
