"""One exception family for problems the user can fix.

The CLI and TUI render a ``TunewiseError`` as a message (what, where, what to do), never a traceback.
Anything else is a bug: ``log_bug`` writes its traceback to the bug log ($TUNEWISE_HOME/tunewise.log), and
the user sees a short message and the log path. The CLI (``cli.common.run_guarded``) and the TUI
(``tui.services.describe_error``) both end here. Everything written is masked by ``tools.redaction``.
Code that must react to a kind of failure catches the exception type, and reads the failure's context from
the exception's fields (``OutOfMemoryError.run_id``), never from its message or class name.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from tools.redaction import redact

Choice = TypeVar("Choice", bound=str)


class TunewiseError(Exception):
    """A user-facing problem: ``what`` went wrong, ``where`` (file:line:field), and ``fix``."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        # masked here, once: the message goes to the screen, the run log and the session store
        self.what = redact(what)
        self.where = redact(where) if where else where
        self.fix = redact(fix) if fix else fix
        super().__init__(self.render())

    def render(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.fix:
            parts.append(f"What to do: {self.fix}")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, str | None]:
        return {"error": type(self).__name__, "what": self.what, "where": self.where, "fix": self.fix}


class InputError(TunewiseError):
    """A bad input file, row, field or answer."""


class ModelNotFoundError(TunewiseError):
    """A model name or path that cannot be resolved offline."""


class OutOfMemoryError(TunewiseError):
    """The device ran out of memory; ``fix`` names the cheaper configuration, ``run_id`` the run that failed
    (None before one started) and ``retries`` the automatic retries already tried."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None, run_id: str | None = None,
                 retries: list[dict[str, object]] | None = None) -> None:
        self.run_id = run_id
        self.retries = list(retries or [])
        super().__init__(what, where=where, fix=fix)

    def to_dict(self) -> dict[str, str | None]:
        return super().to_dict() | {"run_id": self.run_id}


class RunNotFoundError(TunewiseError):
    """A run id that is not in the run log."""


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location as ``file:line:field`` (parts left out when unknown)."""
    s = str(path)
    if line is not None:
        s += f":{line}"
    if field:
        s += f":{field}"
    return s


# ---------------------------------------------------------------------------------------------- the bug log

def log_line(level: str, message: str) -> Path:
    """Append one (masked) entry to the bug log; returns its path. Never raises: logging must not mask the
    error being logged."""
    from tools import paths

    path = paths.log_file()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    try:
        with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"{stamp} {level} {redact(message)}\n")
    except OSError:
        pass
    return path


def log_bug(exc: BaseException, context: str = "unhandled error") -> Path:
    """Write ``exc``'s traceback to the bug log (a bug, not a user error); returns the log's path."""
    return log_line("ERROR", f"{context}\n{''.join(traceback.format_exception(exc))}")


def describe_bug(exc: BaseException) -> str:
    """What a person sees for a bug: a short masked note and where the traceback is (logged here)."""
    path = log_bug(exc)
    return f"internal error: {redact(f'{type(exc).__name__}: {exc}')}" \
           f" (a bug in tunewise; the traceback is in {path})"


def one_of(value: str, allowed: Sequence[Choice], *, what: str) -> Choice:
    """``value`` as one of ``allowed`` (a ``Literal``'s values, typed); an ``InputError`` naming ``what`` else."""
    for choice in allowed:
        if choice == value:
            return choice
    raise InputError(f"unknown {what} '{value}'", where=what, fix=f"use one of: {', '.join(allowed)}")
