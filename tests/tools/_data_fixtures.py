"""Where banking77 lives: the conftest path (``<repo>/../shared``), or ``<repo>/../../shared`` in a worktree."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = [REPO.parent / "shared" / "data" / "banking77", REPO.parent.parent / "shared" / "data" / "banking77"]


def banking77_dir() -> Path:
    for c in CANDIDATES:
        if (c / "train.csv").exists():
            return c
    pytest.skip(f"banking77 not found at {CANDIDATES[0]}")
    raise AssertionError  # unreachable
