"""Pass 1 over a large JSONL file in byte ranges, one range read by a worker process that dies with its parent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tools.data.cleaning.rows import Msgs, Pass1, learn_templates, prompt_text, scan
from tools.data.cleaning.writer import is_jsonl
from tools.data.config import CleanConfig
from tools.data.filters import RowChecks
from tools.data.formats import Problem
from tools.data.near_dups import Templates, normalise
from tools.processes import die_with_parent
from tools.types import ProgressCallback, ProgressEvent

# -- two processes for large JSONL files --------------------------------------------------------------
_JSONL_FORMATS = ("openai", "prompt_completion", "input_output", "alpaca", "sharegpt")


def byte_ranges(path: Path, fmt: str, cfg: CleanConfig) -> list[tuple[int, int, int]] | None:
    """Two (start byte, end byte, first line) ranges split at a line boundary, or None to read serially.

    Only for large JSON-lines files, only where ``fork`` exists (child processes share the parent's string
    hash seed, so duplicate keys agree), and only when called from the main thread with no other non-daemon
    thread running (forking a busy threaded process, such as the TUI, is unsafe).
    """
    import multiprocessing
    import threading

    main = threading.main_thread()
    others_busy = any(not t.daemon for t in threading.enumerate() if t is not main)
    if threading.current_thread() is not main or others_busy:
        return None
    if cfg.workers < 2 or fmt not in _JSONL_FORMATS or not path.is_file():
        return None
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    size = path.stat().st_size
    if size < cfg.parallel_min_bytes or not is_jsonl(path):
        return None
    with path.open("rb") as f:
        f.seek(size // 2)
        f.readline()  # to the start of the next line
        mid = f.tell()
        if mid >= size:
            return None
        f.seek(0)
        newlines, left = 0, mid
        while left:
            chunk = f.read(min(left, 16 << 20))
            newlines += chunk.count(b"\n")
            left -= len(chunk)
    return [(0, mid, 1), (mid, size, newlines + 1)]


def _range_batches(path: Path, fmt: str, start: int, end: int, first_line: int, cfg: CleanConfig,
                   problems: list[Problem], counter: list[int]) -> Iterator[list[tuple[int, Msgs]]]:
    """Batches of (line, messages) from a byte range of a JSONL file (same parsing as ``read_rows``)."""
    import json

    from tools.data.formats import _openai_fast, _RowError, parse_json_line, record_to_messages, strip_boms

    def meta_ok(rec: Any) -> bool:
        meta = rec.get("meta") if isinstance(rec, dict) else None
        if not isinstance(meta, dict):
            return True
        try:
            json.dumps(meta, ensure_ascii=False).encode("utf-8")
        except (ValueError, TypeError, RecursionError):
            return False
        return True

    source = str(path)
    batch: list[tuple[int, Msgs]] = []
    with path.open("rb") as f:
        f.seek(start)
        line = first_line - 1
        while f.tell() < end:
            raw = f.readline()
            if not raw:
                break
            line += 1
            if line == 1:
                raw = strip_boms(raw)
            if not raw.strip():
                continue
            counter[0] += 1
            rec = parse_json_line(raw)
            if isinstance(rec, _RowError):
                problems.append(Problem(source, line, rec.field, rec.message))
                continue
            msgs = _openai_fast(rec) if fmt == "openai" else None
            if msgs is None:
                try:
                    msgs = [m.to_dict() for m in record_to_messages(rec, fmt, allow_empty=True)]
                except _RowError as e:
                    problems.append(Problem(source, line, e.field, e.message))
                    continue
                except RecursionError:
                    problems.append(Problem(source, line, None, "nested too deeply"))
                    continue
            if not meta_ok(rec):
                problems.append(Problem(source, line, "meta", "cannot be written back as JSON (nested too deeply "
                                                              "or holds a lone surrogate)"))
                continue
            batch.append((line, msgs))
            if len(batch) >= cfg.batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _scan_range(args: tuple[Path, str, int, int, int, CleanConfig, Templates | None],
                ) -> tuple[Pass1, list[Problem], int, dict[str, int]]:
    path, fmt, start, end, first_line, cfg, templates = args
    problems: list[Problem] = []
    counter = [0, 0]
    return scan(_range_batches(path, fmt, start, end, first_line, cfg, problems, counter), cfg,
                 RowChecks(cfg), templates, None, problems=problems, counter=counter)


def _half(on_progress: ProgressCallback | None) -> ProgressCallback | None:
    """Progress of the parent's half of a two-process pass, shown as progress of the whole (x2)."""
    if on_progress is None:
        return None
    cb = on_progress
    return lambda ev: cb(ProgressEvent(ev.stage, ev.step * 2, ev.total, ev.metrics, ev.message))


def pass1_parallel(path: Path, fmt: str, cfg: CleanConfig, checks: RowChecks,
                    ranges: list[tuple[int, int, int]], on_progress: ProgressCallback | None,
                    ) -> tuple[Pass1, list[Problem], str, int]:
    import multiprocessing

    # templates are learned once, on the file's first batch, so both halves strip the same ones
    templates = None
    if cfg.near_duplicates:
        first = next(_range_batches(path, fmt, *ranges[0], cfg, [], [0, 0]), [])
        templates = learn_templates([(normalise(prompt_text(m)), "") for _, m in first], cfg)
    import os

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        child = pool.apply_async(_scan_range, ((path, fmt, *ranges[1], cfg, templates),))
        problems: list[Problem] = []
        counter = [0, 0]
        p1, problems, n_read, lang_ids = scan(
            _range_batches(path, fmt, *ranges[0], cfg, problems, counter), cfg, checks, templates,
            _half(on_progress), problems=problems, counter=counter, path=path)
        q1, q_problems, q_read, q_lang_ids = child.get()
    # merge the second half into the first: language ids, label counts, row offsets
    remap = np.full(max(len(q_lang_ids), 1) + 1, -1, np.int16)
    for code, i in q_lang_ids.items():
        remap[i] = lang_ids.setdefault(code, len(lang_ids))
    offset = sum(len(x) for x in p1.lines)
    for name in ("lines", "bits", "pii", "key", "in_key", "out_key", "in_len", "out_len", "sigs"):
        getattr(p1, name).extend(getattr(q1, name))
    p1.lang.extend(np.where(a >= 0, remap[a], a).astype(np.int16) for a in q1.lang)
    p1.counts.merge(q1.counts)
    p1.quality_why.update({offset + i: w for i, w in q1.quality_why.items()})
    p1.langs = sorted(lang_ids, key=lambda c: lang_ids[c])
    return p1, problems + q_problems, fmt, n_read + q_read
