"""Where tunewise keeps things: TUNEWISE_HOME for the user's runs, TUNEWISE_CACHE for converted models."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``$TUNEWISE_HOME`` (default ``~/.tunewise``): run log, advisor sessions, runs."""
    p = Path(os.environ.get("TUNEWISE_HOME") or Path.home() / ".tunewise").expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def cache_dir() -> Path:
    """``$TUNEWISE_CACHE`` (default ``~/.cache/tunewise``): converted models, identical for everyone.

    Kept apart from the home so that tests can use a temporary home and still share one converted model.
    """
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tunewise"
    p = Path(os.environ.get("TUNEWISE_CACHE") or default).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def runlog_path() -> Path:
    return home() / "runlog.duckdb"


def sessions_path() -> Path:
    return home() / "sessions.sqlite"


def runs_dir() -> Path:
    p = home() / "runs"
    p.mkdir(parents=True, exist_ok=True)
    return p


def run_dir(run_id: str) -> Path:
    """``runs/<run_id>/``: checkpoints/, adapter/, reports, events.jsonl."""
    p = runs_dir() / run_id
    p.mkdir(parents=True, exist_ok=True)
    return p


def log_file() -> Path:
    return home() / "tunewise.log"
