"""CLI commands for this area (to be filled in by its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""


def interactive() -> None:
    """The interactive advisor in a plain terminal."""
    from rich.console import Console

    Console().print("The advisor is not built yet. Try `tunewise doctor` or `tunewise --help`.")
