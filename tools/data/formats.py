"""Reading and writing datasets in canonical form (list of Examples).

Minimal first version: OpenAI chat JSONL, prompt/completion and input/output JSONL, CSV with text/label
columns. The dataset issue extends this to every format, with full validation; the signatures stay.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tools.errors import InputError, where
from tools.fileio import write_jsonl
from tools.types import Example, Message


def load_examples(path: str | Path, fmt: str | None = None, *, skip_invalid: bool = False) -> list[Example]:
    """Load a dataset file as Examples; ``meta`` holds ``source``, ``line`` and ``label`` when known."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", where=str(path))
    if path.suffix.lower() == ".csv" or fmt == "csv":
        return _load_csv(path)
    out: list[Example] = []
    with path.open(encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw)
                out.append(_from_record(d, path, lineno))
            except (ValueError, KeyError, TypeError) as e:
                if skip_invalid:
                    continue
                raise InputError(f"cannot read this line: {e}", where=where(path, lineno)) from e
    return out


def _from_record(d: dict, path: Path, lineno: int) -> Example:
    meta = {"source": str(path), "line": lineno, **(d.get("meta") or {})}
    if "messages" in d:
        return Example([Message(m["role"], m["content"]) for m in d["messages"]], meta)
    for p_key, c_key in (("prompt", "completion"), ("input", "output")):
        if p_key in d and c_key in d:
            return Example.from_pair(str(d[p_key]), str(d[c_key]), meta=meta)
    raise KeyError("no 'messages', 'prompt'/'completion' or 'input'/'output' keys")


def _load_csv(path: Path) -> list[Example]:
    out = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        in_col = next((c for c in ("text", "input", "prompt") if c in cols), None)
        out_col = next((c for c in ("category", "label", "output", "completion") if c in cols), None)
        if not in_col or not out_col:
            raise InputError(f"need an input column (text/input/prompt) and an output column "
                             f"(category/label/output/completion); found {cols}", where=where(path, 1))
        for i, row in enumerate(reader, 2):
            ex = Example.from_pair(row[in_col], row[out_col], meta={"source": str(path), "line": i})
            if out_col in ("category", "label"):
                ex.meta["label"] = row[out_col]
            out.append(ex)
    return out


def write_examples(examples: list[Example], path: str | Path, *, with_meta: bool = False) -> int:
    """Write Examples as OpenAI chat JSONL, atomically."""
    return write_jsonl(path, (e.to_dict(with_meta=with_meta) for e in examples))
