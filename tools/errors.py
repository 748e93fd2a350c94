"""One exception family for problems the user can fix.

The CLI and TUI render a ``TunewiseError`` as a message (what, where, what to do), never a traceback.
Anything else is a bug: it is logged with its traceback, and the user sees a short message and the log path.
"""

from __future__ import annotations


class TunewiseError(Exception):
    """A user-facing problem: ``what`` went wrong, ``where`` (file:line:field), and ``fix``."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
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
