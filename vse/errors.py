"""The one error type whose message is for the user, and the one way an operator reports it.

Blender's side raises `UserError` (the engine's own type, `gan.protocol.UserError`, so that a
style file or frame source refused by `gan` reads the same) with one line that says what is
wrong and what to do. An operator catches `EXPECTED` and returns `report(self, exc)`: one
ERROR line (a RuntimeError for scripts, whose `blender -b` run then exits non-zero) and
{'CANCELLED'}. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from ..gan.protocol import UserError

EXPECTED = (UserError, OSError)  # what an operator reports instead of raising

__all__ = ("EXPECTED", "UserError", "message", "report")


def message(exc: BaseException) -> str:
    """The line the user reads: a UserError's own message, an OSError's reason and file."""
    if isinstance(exc, OSError) and not isinstance(exc, UserError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return str(exc) or type(exc).__name__


def report(operator, exc: BaseException) -> set[str]:
    """Report `exc` as the operator's one ERROR line; returns the operator's result."""
    operator.report({'ERROR'}, message(exc))
    return {'CANCELLED'}
