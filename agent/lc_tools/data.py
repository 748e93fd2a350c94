"""The dataset tools as LangChain ``@tool`` functions (typed schemas from the signatures and docstrings)."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool


@tool
def inspect_dataset(path: str, fmt: str | None = None, model: str | None = None,
                    task_kind: str | None = None) -> dict[str, Any]:
    """Describe a data file: format, rows, validity problems (file:line:field), the task profile (what the
    outputs are: label, structured, code, short_answer, reasoning, text; ``task_kind`` overrides it), lengths, tokens, labels."""
    from tools.data import inspect

    return inspect(path, fmt=fmt, model=model, task_kind=task_kind).to_dict()


@tool
def clean_dataset(path: str, out: str, report_path: str | None = None, pii_action: str = "flag",
                  skip_invalid: bool = False, task_kind: str | None = None) -> dict[str, Any]:
    """Clean a data file (errors, length, completeness, language, duplicates, near duplicates, conflicting
    labels, PII, quality) into ``out``; returns the report with removed/flagged counts per reason."""
    from tools.data import CleanConfig, clean
    from tools.data.config import PII_ACTIONS
    from tools.errors import one_of

    cfg = CleanConfig(pii_action=one_of(pii_action, PII_ACTIONS, what="pii_action"), skip_invalid=skip_invalid,
                      task_kind=task_kind)
    report = clean(path, out, config=cfg, report_path=report_path)
    return {k: v for k, v in report.to_dict().items() if k != "config"}


@tool
def split_dataset(path: str, out_dir: str, seed: int | None = None) -> dict[str, Any]:
    """Split a data file into train/val/test JSONL by the size rule, stratified, near duplicates kept together."""
    from tools.data import split

    return split(path, out_dir, seed=seed).to_dict()


TOOLS = [inspect_dataset, clean_dataset, split_dataset]
