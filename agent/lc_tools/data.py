"""The dataset tools as LangChain ``@tool`` functions (typed schemas from the signatures and docstrings)."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool


@tool
def inspect_dataset(path: str, fmt: str | None = None, model: str | None = None) -> dict[str, Any]:
    """Describe a data file: format, rows, validity problems (file:line:field), lengths, tokens, labels."""
    from tools.data import inspect

    return inspect(path, fmt=fmt, model=model)


@tool
def clean_dataset(path: str, out: str, report_path: str | None = None, pii_action: str = "flag",
                  skip_invalid: bool = False) -> dict[str, Any]:
    """Clean a data file (errors, length, completeness, language, duplicates, near duplicates, conflicting
    labels, PII, quality) into ``out``; returns the report with removed/flagged counts per reason."""
    from tools.data import CleanConfig, clean

    report = clean(path, out, config=CleanConfig(pii_action=pii_action, skip_invalid=skip_invalid),  # type: ignore[arg-type]
                   report_path=report_path)
    return {k: v for k, v in report.items() if k != "config"}


@tool
def split_dataset(path: str, out_dir: str, seed: int | None = None) -> dict[str, Any]:
    """Split a data file into train/val/test JSONL by the size rule, stratified, near duplicates kept together."""
    from tools.data import split

    return split(path, out_dir, seed=seed)


TOOLS = [inspect_dataset, clean_dataset, split_dataset]
