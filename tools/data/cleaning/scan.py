"""Pass 1: read the input once (in one process, or in byte ranges by two) and gather the per-row columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tools.data.cleaning.parallel import byte_ranges, pass1_parallel
from tools.data.cleaning.rows import Msgs, Pass1, scan
from tools.data.config import CleanConfig
from tools.data.filters import RowChecks
from tools.data.formats import Problem, detect_format, read_rows
from tools.types import ProgressCallback


# ---------------------------------------------------------------------------------------------- pass 1
def _batches(path: Path, cfg: CleanConfig, problems: list[Problem], counter: list[int],
             ) -> Iterator[list[tuple[int, Msgs]]]:
    batch: list[tuple[int, Msgs]] = []
    for line, ex, meta, problem in read_rows(path, cfg.fmt, columns=cfg.columns, allow_empty=True):
        counter[0] += 1
        if meta and meta.get("tests"):
            counter[1] += 1
        if problem is not None:
            if len(problems) < 10_000:
                problems.append(problem)
            continue
        assert ex is not None
        batch.append((line, ex))
        if len(batch) >= cfg.batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def pass1(path: Path, cfg: CleanConfig, checks: RowChecks, on_progress: ProgressCallback | None,
           ) -> tuple[Pass1, list[Problem], str, int]:
    """First pass: per-row results, keys and signatures. Large JSONL files are read by two processes."""
    fmt = cfg.fmt or detect_format(path)
    ranges = byte_ranges(path, fmt, cfg)
    if ranges is None:
        problems: list[Problem] = []
        counter = [0, 0]
        p1, problems, n_read, lang_ids = scan(_batches(path, cfg, problems, counter), cfg, checks, None,
                                               on_progress, problems=problems, counter=counter, path=path)
        p1.langs = sorted(lang_ids, key=lambda c: lang_ids[c])
        return p1, problems, fmt, n_read
    return pass1_parallel(path, fmt, cfg, checks, ranges, on_progress)
