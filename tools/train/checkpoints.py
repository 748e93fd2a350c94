"""Which checkpoint a resume may trust.

transformers' Trainer writes ``checkpoint-N/`` file by file: the weights, then the optimizer, scheduler and
RNG states, and ``trainer_state.json`` last. A process killed (-9, power cut of the job) in between leaves a
folder that looks like a checkpoint but cannot be loaded. So a checkpoint counts as complete only when its
``trainer_state.json`` parses, names the folder's own step, and every file written before it is there; a
resume takes the newest complete one and removes the incomplete ones (newer, half-written leftovers that
would otherwise confuse the Trainer's own rotation, which sorts by modification time).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")
STATE_FILES = ("optimizer.pt", "scheduler.pt")


def step_of(path: Path) -> int | None:
    tail = path.name.rsplit("-", 1)[-1]
    return int(tail) if path.name.startswith("checkpoint-") and tail.isdigit() else None


def is_complete(path: Path) -> bool:
    """True when ``path`` holds a whole checkpoint (see the module docstring)."""
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if state.get("global_step") != step_of(path):
        return False
    if not any((path / w).is_file() for w in WEIGHTS):
        return False
    return all((path / f).is_file() for f in STATE_FILES) and any(path.glob("rng_state*.pth"))


def checkpoints(folder: Path) -> list[Path]:
    """``checkpoint-N`` folders, oldest step first."""
    if not folder.is_dir():
        return []
    found = [(step_of(p), p) for p in folder.iterdir() if p.is_dir() and step_of(p) is not None]
    return [p for _, p in sorted(found, key=lambda sp: sp[0] or 0)]


def newest_complete(folder: Path, *, remove_incomplete: bool = False) -> Path | None:
    """The newest complete checkpoint under ``folder``; with ``remove_incomplete``, delete the others that are
    not complete (they cannot be resumed from)."""
    best: Path | None = None
    for p in checkpoints(folder):
        if is_complete(p):
            best = p
        elif remove_incomplete:
            shutil.rmtree(p, ignore_errors=True)
    return best
