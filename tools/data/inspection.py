"""``inspect``: what a data file holds — format, rows, validity problems, lengths, tokens, labels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from tools.data.formats import Problem, column_map, detect_format, read_records
from tools.data.reports import InspectReport
from tools.errors import InputError
from tools.fileio import sha256_file
from tools.types import Example

_MAX_PROBLEMS = 50


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values)
    return {"min": int(a.min()), "mean": round(float(a.mean()), 1), "median": float(np.median(a)),
            "p95": float(np.percentile(a, 95)), "max": int(a.max())}


def token_counts(examples: list[Example], model: str | None) -> tuple[list[int], int | None, str]:
    """Tokens per example with the target model's tokenizer and chat template, and its context length."""
    from tools import models

    spec = models.resolve(model)
    tok = models.load_tokenizer(spec)
    ctx = None
    try:
        ctx = models.describe(spec).get("max_position_embeddings")
    except Exception:  # noqa: BLE001 - a context length is a nice-to-have; tokens still count
        ctx = None
    max_len = int(getattr(tok, "model_max_length", 0) or 0)
    if not ctx and 0 < max_len < 10**7:
        ctx = max_len
    counts = []
    for e in examples:
        msgs = [m.to_dict() for m in e.messages]
        try:
            ids = tok.apply_chat_template(msgs, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            counts.append(len(ids))
        except Exception:  # noqa: BLE001 - a tokenizer without a chat template: count the plain text
            counts.append(len(tok("\n".join(m.content for m in e.messages))["input_ids"]))
    return counts, ctx, spec.label


def inspect(path: str | Path, *, fmt: str | None = None, model: str | None = None,
            columns: tuple[str, str] | None = None, task_kind: str | None = None) -> InspectReport:
    """Describe a data file without changing it: format, rows, problems (file:line:field), the task profile
    (``task_kind`` overrides the detected kind), length and token statistics (tokens only when ``model`` is
    given), and the label distribution when outputs are labels."""
    from tools.data.profile import detect_profile

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", where=str(path), fix="check the path")
    file_fmt = fmt or detect_format(path)
    examples: list[Example] = []
    problems: list[Problem] = []
    n_problems = rows = 0
    for _, ex, problem in read_records(path, fmt, columns=columns):
        rows += 1
        if ex is not None:
            examples.append(ex)
        elif problem is not None:
            n_problems += 1
            if len(problems) < _MAX_PROBLEMS:
                problems.append(problem)
    profile = detect_profile(examples, task_kind=task_kind)
    outs = [e.output_text.strip() for e in examples]
    labels = profile.output_kind == "label"
    turns = [sum(m.role == "user" for m in e.messages) for e in examples]
    cmap = column_map(path, fmt, columns=columns)
    counts = Counter(outs) if labels else None
    report = InspectReport(
        path=str(path), sha256=sha256_file(path) if path.is_file() else None, format=file_fmt, rows=rows,
        valid_rows=len(examples), invalid_rows=n_problems, problems=[p.to_dict() for p in problems],
        profile=profile, multi_turn_rows=sum(t > 1 for t in turns),
        with_system_prompt=sum(1 for e in examples if e.system_text),
        chars={"input": _stats([len(e.input_text) for e in examples]), "output": _stats([len(o) for o in outs])},
        labels=dict(counts.most_common()) if counts else None,
        label_count=len(counts) if counts else None,
        label_imbalance=round(max(counts.values()) / min(counts.values()), 2) if counts else None,
        columns={"input": cmap.input, "output": cmap.output, "context": cmap.context, "tests": cmap.tests}
        if cmap else None,
    )
    if model is not None and examples:
        counts_tok, ctx, name = token_counts(examples, model)
        over = [Problem(str(path), e.meta.get("line"), None, f"{c} tokens exceed the context length {ctx} of {name}")
                for e, c in zip(examples, counts_tok, strict=True) if ctx and c > ctx]
        report.tokens = {"model": name, "context_length": ctx, **_stats(counts_tok),
                         "total": int(sum(counts_tok)), "over_context": len(over)}
        report.problems += [p.to_dict() for p in over[:_MAX_PROBLEMS]]
    return report
