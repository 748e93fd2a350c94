"""Crash hygiene: temp files a killed run left beside its outputs are found by their free lock and removed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------- crash hygiene
# A run killed with -9 leaves its hidden temp file beside --out (tools.fileio.atomic_open names it
# ".OUT.<random>.tmp"). The live writer holds an exclusive flock on its temp file for as long as it writes, so
# the next run can tell a dead writer's leftovers (lock free) from a live one's (lock held). Report files are
# written in one go without a lock; their leftovers are removed once they are older than a minute.
_REPORT_TEMP_MIN_AGE_S = 60.0


def lock_temp(f: Any) -> None:
    """Mark a temp file as owned by a live writer (released by the kernel when the process dies)."""
    try:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass


def remove_stale_temp_files(out: Path, *others: Path) -> int:
    """Remove temp files that killed runs left beside ``out`` (and beside the report files); return how many."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): leave them
        return 0
    import os

    removed = 0
    for target, locked in ((out, True), *((o, False) for o in others)):
        target = Path(target)
        if not target.parent.is_dir():
            continue
        for cand in target.parent.glob(f".{target.name}.*.tmp"):
            try:
                if cand.is_dir():
                    continue
                if not locked:
                    if time.time() - cand.stat().st_mtime >= _REPORT_TEMP_MIN_AGE_S:
                        cand.unlink()
                        removed += 1
                    continue
                fd = os.open(cand, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: its writer is gone
                except OSError:
                    continue  # a live run is writing it
                finally:
                    os.close(fd)
                cand.unlink()
                removed += 1
            except OSError:
                continue
    return removed
