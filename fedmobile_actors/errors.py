"""Errors a user can cause, each rendered as one line by the CLI (exit code 2).

Why a small hierarchy of our own: the CLI must tell a user's mistake (a wrong YAML field, a missing
data directory, a corrupt run directory) from a bug in this project. Everything raised as a
``UserError`` is printed as its message alone; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input; ``str(err)`` is the complete, one-line explanation."""


class ScenarioError(UserError):
    """A scenario file that is missing, not YAML, or violates the schema.

    ``problems`` holds one line per problem, each naming the file, the field path, the bad value
    and what is allowed.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DataError(UserError):
    """A dataset that is missing, incomplete or malformed (USC-HAD directory, .npz file, trace)."""


class RunDirError(UserError):
    """A run directory that is not one, is incomplete, or holds a corrupt file."""


class WireError(ValueError):
    """A payload that does not decode to what the receiver expects (corrupt or mis-shaped).

    Not a ``UserError``: a corrupt update is counted and dropped by the server, never shown as a
    fatal error.
    """


class BackendError(UserError):
    """The simulation's processes failed under the run (a Ray actor died, the cluster went away).

    A ``UserError`` so the CLI prints it as one line: a 44-line Ray trace tells a user nothing
    more than "the server process died; the run can be resumed".
    """


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (SIGINT or SIGTERM); ``run_dir`` is set once the driver knows it.

    A ``KeyboardInterrupt`` so that it unwinds like Ctrl-C everywhere (``finally`` blocks shut the
    backend down), and ``except Exception`` never swallows it.
    """

    def __init__(self, reason: str, run_dir: str | None = None, code: int = 130) -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_dir = run_dir
        self.code = code
