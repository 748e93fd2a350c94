"""The cleaning report: counts per reason, histograms, the Markdown rendering, and the run-log record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.data.cleaning.decisions import REASONS
from tools.data.config import RULE_IDS, CleanConfig
from tools.data.formats import Problem
from tools.data.reports import CleanReport
from tools.fileio import sha256_file


# ---------------------------------------------------------------------------------------------- report
def _histogram(lengths: np.ndarray, bins: list[int]) -> dict[str, int]:
    edges = [*bins, np.iinfo(np.int64).max]
    counts, _ = np.histogram(lengths, bins=edges)
    labels = [f"{a}-{b - 1}" for a, b in zip(bins, bins[1:], strict=False)] + [f"{bins[-1]}+"]
    return dict(zip(labels, (int(c) for c in counts), strict=True))


def make_report(path: Path, out: Path, sha: str, fmt: str, n_read: int, n: int, problems: list[Problem],
            reason: np.ndarray, flagged: dict[str, int], info: dict[str, Any],
            examples: dict[str, list[dict[str, Any]]], cols: dict[str, np.ndarray], cfg: CleanConfig,
            seconds: float) -> CleanReport:
    counts = np.bincount(reason.astype(np.int64), minlength=len(REASONS) + 1)
    removed = {r: int(counts[i + 1]) for i, r in enumerate(REASONS)}
    kept = reason == 0
    if problems:
        removed["invalid"] = n_read - n
    bins = cfg.histogram_bins
    return CleanReport(
        input=str(path), out=str(out), dataset_sha256=sha, format=fmt, input_rows=n_read, valid_rows=n,
        kept_rows=int(kept.sum()), removed=removed, flagged=flagged,
        rule_ids={r: RULE_IDS[r] for r in REASONS if removed.get(r)}, profile=info["profile"],
        language=info["language"], label_count=info["label_count"], label_distribution=info["label_distribution"],
        near_duplicates=info["near_duplicates"], problems=[p.to_dict() for p in problems[:20]], examples=examples,
        histograms={
            "input_chars": {"all": _histogram(cols["in_len"], bins), "kept": _histogram(cols["in_len"][kept], bins)},
            "output_chars": {"all": _histogram(cols["out_len"], bins), "kept": _histogram(cols["out_len"][kept], bins)},
        },
        seconds=round(seconds, 3), rows_per_s=round(n_read / seconds, 1) if seconds > 0 else None,
        config=cfg.to_dict(),
    )


def report_markdown(report: dict[str, Any]) -> str:
    """The cleaning report as Markdown."""
    lines = [f"# Cleaning report: `{report['input']}`", "",
             f"- sha256: `{report['dataset_sha256']}`", f"- format: {report['format']}",
             f"- rows: {report['input_rows']} read, {report['kept_rows']} kept -> `{report['out']}`",
             f"- outputs look like: {report['output_kind']}; main language: {report['language'] or 'undetermined'}",
             "", "## Removed", "", "| reason | rows | rule |", "|---|---:|---|"]
    for r, c in report["removed"].items():
        if c:
            lines.append(f"| {r} | {c} | {RULE_IDS.get(r, '')} |")
    lines += ["", "## Flagged (kept)", "", "| flag | rows |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["flagged"].items() if v]
    if report["examples"]:
        lines += ["", "## Examples"]
        for r, exs in report["examples"].items():
            lines += ["", f"### {r}"]
            for e in exs:
                shown_in, shown_out = (" ".join(e[k].split())[:80].replace("`", "'") for k in ("input", "output"))
                lines.append(f"- line {e['line']} ({e['why']}): `{shown_in}` -> `{shown_out}`")
    lines += ["", "## Lengths (characters)", "", "| bin | input (all) | input (kept) | output (all) | output (kept) |",
              "|---|---:|---:|---:|---:|"]
    h = report["histograms"]
    for b in h["input_chars"]["all"]:
        lines.append(f"| {b} | {h['input_chars']['all'][b]} | {h['input_chars']['kept'][b]} | "
                     f"{h['output_chars']['all'][b]} | {h['output_chars']['kept'][b]} |")
    return "\n".join(lines) + "\n"


def log_clean(path: Path, out: Path, sha: str, fmt: str, report: dict[str, Any], cfg: CleanConfig) -> None:
    from tools.runlog import RunLog

    slim = {k: v for k, v in report.items() if k not in ("examples",)}
    log = RunLog()
    log.log_dataset(path, sha256=sha, fmt=fmt, rows=report["input_rows"], kind="input", report=None)
    out_sha = sha256_file(out) if out.is_file() else ""
    log.log_dataset(out, sha256=out_sha, fmt="openai" if out.is_file() else "hf", rows=report["kept_rows"],
                    kind="cleaned", report=slim)
