"""``clean``: stream a data set through the filters, deduplicate, and write the kept rows atomically.

Two passes over the input, so memory holds a few numbers per row (hashes, flags, a MinHash signature), never
the rows themselves:

1. read in batches; per row record the filter results that need only the row, the exact/input/output keys,
   the language and the MinHash signature;
2. take the dataset-level decisions (are outputs labels? which language is the majority?), resolve
   duplicates, conflicts and near-duplicate clusters among the rows still alive;
3. read again and write the kept rows (PII masked if asked), collecting a few examples per reason.

The input file is never written; the output and the report are written atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tools.data.cleaning.decisions import REASONS, decide
from tools.data.cleaning.report import log_clean, make_report, report_markdown
from tools.data.cleaning.scan import pass1
from tools.data.cleaning.temp_files import remove_stale_temp_files
from tools.data.cleaning.writer import pass2
from tools.data.config import CleanConfig
from tools.data.filters import RowChecks
from tools.data.formats import raise_problems
from tools.data.reports import CleanReport
from tools.errors import InputError
from tools.fileio import sha256_file, write_json, write_text
from tools.types import ProgressCallback, ProgressEvent, emit


def clean(path: str | Path, out: str | Path, *, config: CleanConfig | None = None,
          report_path: str | Path | None = None, on_progress: ProgressCallback | None = None) -> CleanReport:
    """Clean a data set: filter, deduplicate, write the kept rows to ``out`` (JSONL, or a datasets folder
    when ``out`` has no suffix), and return the report (also written to ``report_path`` as JSON + Markdown
    and logged in the run log with the input's sha256)."""
    cfg = config or CleanConfig()
    path, out = Path(path), Path(out)
    if not path.exists():
        raise InputError("file not found", where=str(path), fix="check the path")
    if out.resolve() == path.resolve():
        raise InputError("the output would overwrite the input", where=str(out),
                         fix="choose another --out; the input is never modified")
    t0 = time.perf_counter()
    stale = remove_stale_temp_files(out, *([Path(report_path), Path(report_path).with_suffix(".md")]
                                           if report_path else []))
    sha = sha256_file(path) if path.is_file() else ""
    checks = RowChecks(cfg)
    p1, problems, fmt, n_read = pass1(path, cfg, checks, on_progress)
    if problems and not cfg.skip_invalid:
        raise_problems(problems, n_read)
    n = int(sum(len(x) for x in p1.lines))
    if n == 0:
        raise InputError("no valid rows to clean", where=str(path),
                         fix="check the file's format (see `tunewise data inspect`)")
    cols = {name: np.concatenate(getattr(p1, name)) for name in
            ("lines", "bits", "pii", "lang", "key", "in_key", "out_key", "in_len", "out_len")}
    sigs = None
    if cfg.near_duplicates:  # fill one array chunk by chunk, freeing each chunk (no double copy)
        sigs = np.empty((n, cfg.num_perm), dtype=np.uint32)
        pos = 0
        while p1.sigs:
            chunk = p1.sigs.pop(0)
            sigs[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
    emit(on_progress, ProgressEvent("decide", 0, 1, message="deciding"))
    reason, detail, flagged, info = decide(cols, sigs, p1, cfg, n)
    emit(on_progress, ProgressEvent("decide", 1, 1))
    examples, kept, rejected = pass2(path, out, cfg, checks, reason, detail, cols["lines"], on_progress,
                                      info.pop("near_roots"), info.pop("templates"))
    if info["near_duplicates"]:
        info["near_duplicates"]["rejected_by_exact_check"] = rejected
    report = make_report(path, out, sha, fmt, n_read, n, problems, reason, flagged, info, examples, cols, cfg,
                     time.perf_counter() - t0)
    report.stale_temp_files_removed = stale
    doc = report.to_dict()
    if report_path:
        report_path = Path(report_path)
        write_json(report_path, doc)
        write_text(report_path.with_suffix(".md"), report_markdown(doc))
    log_clean(path, out, sha, fmt, doc, cfg)
    return report


__all__ = ["REASONS", "clean", "remove_stale_temp_files", "report_markdown"]
