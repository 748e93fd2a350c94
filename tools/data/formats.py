"""Reading and writing datasets in canonical form (Examples with ``messages``).

Supported inputs, auto-detected or named with ``fmt``:

- ``openai``: OpenAI chat JSONL, one ``{"messages": [{"role", "content"}, ...]}`` per line
- ``prompt_completion`` / ``input_output``: JSONL with those key pairs
- ``alpaca``: JSONL (or a JSON array) with ``instruction``, optional ``input``, ``output``
- ``sharegpt``: JSONL (or a JSON array) with ``conversations: [{"from", "value"}, ...]``
- ``csv`` / ``parquet``: columns named by ``columns=(input, output)`` or guessed (text/label, input/output, ...)
- ``hf``: a Hugging Face ``datasets`` folder saved with ``save_to_disk`` (the ``train`` split of a DatasetDict)

Every row is validated as it is read; a bad row becomes a ``Problem`` naming file:line:field. ``load`` raises
on the first bad rows unless ``skip_invalid``; ``read_records`` streams ``(line, example, problems)`` so that
``clean`` can run over files larger than memory.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import InputError, where
from tools.fileio import atomic_dir, write_jsonl
from tools.types import ROLES, Example, Message

FORMATS = ("openai", "prompt_completion", "input_output", "alpaca", "sharegpt", "csv", "parquet", "hf")
# Record layouts a JSON object (or a table row) can have, in detection order.
RECORD_FORMATS = ("openai", "sharegpt", "alpaca", "prompt_completion", "input_output", "text_label")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "model": "assistant",
                   "system": "system"}
_INPUT_COLUMNS = ("text", "input", "prompt", "question", "instruction", "query")
_OUTPUT_COLUMNS = ("category", "label", "output", "completion", "answer", "response", "target")
_LABEL_COLUMNS = ("category", "label", "intent", "class")
_MAX_PROBLEMS_SHOWN = 5

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Problem:
    """One validity problem, located as precisely as the format allows."""

    file: str
    line: int | None
    field: str | None
    message: str

    @property
    def where(self) -> str:
        return where(self.file, self.line, self.field)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message,
                "where": self.where}

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class LoadResult:
    """What ``load`` returns: the valid examples, the problems found, the detected format, the rows read."""

    examples: list[Example]
    problems: list[Problem] = field(default_factory=list)
    format: str = ""
    rows: int = 0


class _RowError(ValueError):
    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


# ------------------------------------------------------------------------------------------ detection
def detect_format(path: str | Path) -> str:
    """The file format from the path (folder, suffix) and, for JSON, from the first record's keys."""
    path = Path(path)
    if path.is_dir():
        return "hf"
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    for _, rec in _iter_json(path):
        if isinstance(rec, dict):
            return record_format(rec) or "openai"
        break
    return "openai"


def record_format(rec: dict[str, Any]) -> str | None:
    """Which record layout a dict has, or None."""
    if "messages" in rec:
        return "openai"
    if "conversations" in rec:
        return "sharegpt"
    if "instruction" in rec and "output" in rec:
        return "alpaca"
    if "prompt" in rec and "completion" in rec:
        return "prompt_completion"
    if "input" in rec and "output" in rec:
        return "input_output"
    return None


# ------------------------------------------------------------------------------------------ records
def _text(value: Any, field: str) -> str:
    if value is None:
        raise _RowError(field, "missing value")
    if not isinstance(value, str):
        raise _RowError(field, f"content must be a string, got {type(value).__name__}")
    return value


def _check_messages(msgs: list[Message], prefix: str, allow_empty: bool = False) -> None:
    if not msgs:
        raise _RowError(prefix, "no messages")
    for i, m in enumerate(msgs):
        if not allow_empty and not m.content.strip():
            raise _RowError(f"{prefix}[{i}].content", "empty content")
    if not any(m.role == "assistant" for m in msgs):
        raise _RowError(prefix, "no assistant turn")
    if msgs[-1].role != "assistant":
        raise _RowError(f"{prefix}[{len(msgs) - 1}].role", "the last turn must be the assistant's")


def _openai(rec: dict[str, Any], allow_empty: bool = False) -> list[Message]:
    raw = rec.get("messages")
    if not isinstance(raw, list):
        raise _RowError("messages", "missing key" if raw is None else "must be a list of {role, content}")
    msgs = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise _RowError(f"messages[{i}]", "must be an object with role and content")
        role = m.get("role")
        if role is None:
            raise _RowError(f"messages[{i}].role", "missing key")
        if role not in ROLES:
            raise _RowError(f"messages[{i}].role", f"unknown role {role!r} (use system, user or assistant)")
        if "content" not in m:
            raise _RowError(f"messages[{i}].content", "missing key")
        msgs.append(Message(role, _text(m["content"], f"messages[{i}].content")))
    _check_messages(msgs, "messages", allow_empty)
    return msgs


def _sharegpt(rec: dict[str, Any], allow_empty: bool = False) -> list[Message]:
    raw = rec.get("conversations")
    if not isinstance(raw, list):
        raise _RowError("conversations", "missing key" if raw is None else "must be a list of {from, value}")
    msgs = []
    if isinstance(rec.get("system"), str) and rec["system"].strip():
        msgs.append(Message("system", rec["system"]))
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise _RowError(f"conversations[{i}]", "must be an object with from and value")
        who = m.get("from", m.get("role"))
        if who is None:
            raise _RowError(f"conversations[{i}].from", "missing key")
        role = _SHAREGPT_ROLES.get(str(who).lower())
        if role is None:
            raise _RowError(f"conversations[{i}].from", f"unknown role {who!r} (use human, gpt or system)")
        msgs.append(Message(role, _text(m.get("value", m.get("content")), f"conversations[{i}].value")))
    _check_messages(msgs, "conversations", allow_empty)
    return msgs


def _pair(prompt: str, completion: str, p_field: str, c_field: str, system: str | None = None,
          allow_empty: bool = False) -> list[Message]:
    if not allow_empty and not prompt.strip():
        raise _RowError(p_field, "empty content")
    if not allow_empty and not completion.strip():
        raise _RowError(c_field, "empty content")
    msgs = [Message("system", system)] if system else []
    return [*msgs, Message("user", prompt), Message("assistant", completion)]


def _scalar(value: Any, field: str) -> str:
    """A table cell as text: labels may be ints; anything else non-string is a problem."""
    if isinstance(value, bool) or value is None:
        raise _RowError(field, "missing value" if value is None else "content must be a string")
    if isinstance(value, (int, float)):
        return str(value)
    return _text(value, field)


def record_to_messages(rec: Any, fmt: str, columns: tuple[str, str] | None = None, *,
                       allow_empty: bool = False) -> list[Message]:
    """Convert one record of layout ``fmt`` to messages, or raise ``_RowError`` naming the field.

    ``allow_empty`` lets empty content through (``clean`` removes such rows under its ``empty`` reason)."""
    if not isinstance(rec, dict):
        raise _RowError(None, f"expected a JSON object, got {type(rec).__name__}")
    if fmt == "openai":
        return _openai(rec, allow_empty)
    if fmt == "sharegpt":
        return _sharegpt(rec, allow_empty)
    if fmt == "alpaca":
        for key in ("instruction", "output"):
            if key not in rec:
                raise _RowError(key, "missing key")
        instr = _text(rec["instruction"], "instruction")
        extra = rec.get("input") or ""
        extra = _text(extra, "input")
        prompt = f"{instr}\n\n{extra}" if extra.strip() else instr
        return _pair(prompt, _text(rec["output"], "output"), "instruction", "output", rec.get("system") or None,
                     allow_empty)
    if fmt in ("prompt_completion", "input_output"):
        p, c = ("prompt", "completion") if fmt == "prompt_completion" else ("input", "output")
        for key in (p, c):
            if key not in rec:
                raise _RowError(key, "missing key")
        return _pair(_text(rec[p], p), _text(rec[c], c), p, c, allow_empty=allow_empty)
    if fmt == "text_label":
        assert columns is not None
        i, o = columns
        for key in (i, o):
            if key not in rec:
                raise _RowError(key, "missing key")
        return _pair(_scalar(rec[i], i), _scalar(rec[o], o), i, o, allow_empty=allow_empty)
    raise _RowError(None, f"unknown record format {fmt!r}")


# ------------------------------------------------------------------------------------------ readers
def _iter_json(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, parsed object) for JSONL; for a file holding one JSON array, (index+1, item). Bad JSON -> _RowError."""
    try:
        f = path.open(encoding="utf-8-sig", newline=None)
    except OSError as e:
        raise InputError(f"cannot open the file: {e.strerror}", where=str(path)) from e
    with f:
        try:
            first = f.read(1)
            while first and first.isspace():
                first = f.read(1)
            if first == "[":
                try:
                    items = json.loads(first + f.read())
                except ValueError as e:
                    raise InputError(f"the file is not valid JSON: {e}", where=str(path),
                                     fix="write one JSON object per line (JSONL) or a valid JSON array") from e
                yield from enumerate(items, 1)
                return
            f.seek(0)
            if f.read(1) != "\ufeff":  # utf-8-sig already strips a BOM; seek(0) may bring it back
                f.seek(0)
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    yield lineno, json.loads(raw)
                except json.JSONDecodeError as e:
                    yield lineno, _RowError(None, f"not valid JSON ({e.msg} at column {e.colno})")
        except UnicodeDecodeError as e:
            raise InputError(f"the file is not UTF-8 text ({e.reason} at byte {e.start})", where=str(path),
                             fix="save the file as UTF-8") from e


def _pick_columns(cols: list[str], columns: tuple[str, str] | None, path: Path) -> tuple[str, str]:
    if columns:
        missing = [c for c in columns if c not in cols]
        if missing:
            raise InputError(f"column(s) {missing} not found; the file has {cols}", where=str(path),
                             fix="name existing columns with --input-col/--output-col")
        return columns
    lower = {c.lower(): c for c in cols}
    i = next((lower[c] for c in _INPUT_COLUMNS if c in lower), None)
    o = next((lower[c] for c in _OUTPUT_COLUMNS if c in lower), None)
    if not i or not o:
        raise InputError(f"need an input column ({'/'.join(_INPUT_COLUMNS)}) and an output column "
                         f"({'/'.join(_OUTPUT_COLUMNS)}); found {cols}", where=str(path),
                         fix="name the columns with --input-col and --output-col")
    return i, o


def _iter_csv(path: Path, columns: tuple[str, str] | None) -> Iterator[tuple[int, Any]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            cols = list(reader.fieldnames or [])
            if not cols:
                raise InputError("the file has no header row", where=where(path, 1),
                                 fix="put the column names on the first line")
            yield 0, _pick_columns(cols, columns, path)
            start = reader.line_num + 1
            for row in reader:  # a quoted field may span lines: report the line where the row starts
                yield start, row
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise InputError(f"the file is not UTF-8 text ({e.reason} at byte {e.start})", where=str(path),
                         fix="save the file as UTF-8") from e
    except csv.Error as e:
        raise InputError(f"cannot parse the CSV: {e}", where=str(path)) from e


def _iter_table_rows(rows: Iterator[dict[str, Any]], cols: list[str], path: Path,
                     columns: tuple[str, str] | None) -> Iterator[tuple[int, Any]]:
    probe = {c: None for c in cols}
    if record_format(probe) is None or columns:
        yield 0, _pick_columns(cols, columns, path)
    else:
        yield 0, None
    yield from enumerate(rows, 1)


def _iter_parquet(path: Path, columns: tuple[str, str] | None) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InputError(f"cannot read the Parquet file: {e}", where=str(path)) from e
    cols = pf.schema_arrow.names

    def rows() -> Iterator[dict[str, Any]]:
        for batch in pf.iter_batches(batch_size=8192):
            yield from batch.to_pylist()

    yield from _iter_table_rows(rows(), cols, path, columns)


def _iter_hf(path: Path, columns: tuple[str, str] | None) -> Iterator[tuple[int, Any]]:
    try:
        import datasets
        from datasets import load_from_disk

        datasets.disable_progress_bars()
        ds = load_from_disk(str(path))
    except Exception as e:  # noqa: BLE001 - datasets raises several types for a bad folder
        raise InputError(f"cannot read this as a Hugging Face datasets folder: {e}", where=str(path),
                         fix="give a folder written by Dataset.save_to_disk, or a JSONL/CSV/Parquet file") from e
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        ds = ds[split]
    yield from _iter_table_rows(iter(ds), list(ds.column_names), path, columns)


_ROLE_SET = frozenset(ROLES)


def _openai_fast(rec: Any) -> list[dict[str, str]] | None:
    """Plain role/content dicts for a well-formed OpenAI record, or None (then the slow path names the problem)."""
    if type(rec) is not dict:
        return None
    raw = rec.get("messages")
    if type(raw) is not list or not raw:
        return None
    out = []
    has_assistant = False
    for m in raw:
        if type(m) is not dict:
            return None
        role, content = m.get("role"), m.get("content")
        if role not in _ROLE_SET or type(content) is not str or not content.strip():
            return None
        if role == "assistant":
            has_assistant = True
        out.append({"role": role, "content": content})
    if not has_assistant or out[-1]["role"] != "assistant":
        return None
    return out


def read_rows(path: str | Path, fmt: str | None = None, *, columns: tuple[str, str] | None = None,
              allow_empty: bool = False) -> Iterator[tuple[int, list[dict[str, str]] | None, dict[str, Any] | None, Problem | None]]:
    """Stream ``(line, messages, meta, problem)`` with messages as plain ``{"role", "content"}`` dicts.

    The fast path under ``read_records`` and ``clean``: no objects are built per message. ``meta`` holds
    the record's own ``meta`` and, for label columns, ``label`` (None when there is neither).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", where=str(path), fix="check the path")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", fix=f"use one of: {', '.join(FORMATS)}")
    file_fmt = fmt or detect_format(path)
    if file_fmt == "hf" and not path.is_dir():
        raise InputError("the hf format needs a folder written by save_to_disk", where=str(path))
    if path.is_dir() and file_fmt != "hf":
        raise InputError("this is a folder", where=str(path), fix="give a file, or a datasets folder")
    source = str(path)
    cols: tuple[str, str] | None = None
    row_fmt: str | None = None
    if file_fmt in ("csv", "parquet", "hf"):
        it = {"csv": _iter_csv, "parquet": _iter_parquet, "hf": _iter_hf}[file_fmt](path, columns)
        _, cols = next(it)
        row_fmt = "text_label" if cols else None
    else:
        it = _iter_json(path)
        row_fmt = file_fmt
    label_col = cols[1] if cols and (cols[1].lower() in _LABEL_COLUMNS) else None
    for line, rec in it:
        if isinstance(rec, _RowError):
            yield line, None, None, Problem(source, line, rec.field, rec.message)
            continue
        this_fmt = row_fmt or (record_format(rec) if isinstance(rec, dict) else None) or "openai"
        msgs = _openai_fast(rec) if this_fmt == "openai" else None
        if msgs is None:
            try:
                msgs = [m.to_dict() for m in record_to_messages(rec, this_fmt, cols, allow_empty=allow_empty)]
            except _RowError as e:
                yield line, None, None, Problem(source, line, e.field, e.message)
                continue
        meta: dict[str, Any] | None = None
        extra = rec.get("meta") if isinstance(rec, dict) else None
        if isinstance(extra, dict):
            meta = dict(extra)
        if label_col is not None:
            meta = meta or {}
            meta["label"] = msgs[-1]["content"]
        yield line, msgs, meta, None


def read_records(path: str | Path, fmt: str | None = None, *, columns: tuple[str, str] | None = None,
                 ) -> Iterator[tuple[int, Example | None, Problem | None]]:
    """Stream ``(line, example, problem)``: exactly one of example/problem is set for each row.

    ``line`` is the file line (JSONL, CSV), or the 1-based row (JSON array, Parquet, datasets folder).
    Raises ``InputError`` when the file as a whole cannot be read.
    """
    source = str(path)
    for line, msgs, extra, problem in read_rows(path, fmt, columns=columns):
        if msgs is None:
            yield line, None, problem
            continue
        meta: dict[str, Any] = {"source": source, "line": line}
        if extra:
            meta.update(extra)
        yield line, Example([Message(m["role"], m["content"]) for m in msgs], meta), None


def estimate_rows(path: str | Path) -> int | None:
    """A quick upper bound on the rows of a file (its line count), for progress bars; None for folders."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:  # noqa: BLE001 - an estimate only
            return None
    n, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(16 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def load(path: str | Path, fmt: str | None = None, *, skip_invalid: bool = False,
         columns: tuple[str, str] | None = None) -> LoadResult:
    """Load a dataset file into canonical Examples.

    Bad rows are collected as ``problems``; unless ``skip_invalid`` they raise an ``InputError`` that names
    the first bad rows by file:line:field. The input file is only read.
    """
    path = Path(path)
    file_fmt = fmt or detect_format(path) if path.exists() else (fmt or "")
    examples: list[Example] = []
    problems: list[Problem] = []
    rows = 0
    for _, ex, problem in read_records(path, fmt, columns=columns):
        rows += 1
        if ex is not None:
            examples.append(ex)
        elif problem is not None:
            problems.append(problem)
    if problems and not skip_invalid:
        raise_problems(problems, rows)
    if rows == 0:
        raise InputError("the file holds no rows", where=str(path), fix="check that it is the right file")
    return LoadResult(examples, problems, file_fmt, rows)


def raise_problems(problems: list[Problem], rows: int) -> None:
    shown = "\n".join(f"  {p}" for p in problems[:_MAX_PROBLEMS_SHOWN])
    more = f"\n  ... and {len(problems) - _MAX_PROBLEMS_SHOWN} more" if len(problems) > _MAX_PROBLEMS_SHOWN else ""
    first = problems[0]
    raise InputError(f"{len(problems)} of {rows} rows are invalid; the first: {first.message}\n{shown}{more}",
                     where=first.where,
                     fix="fix these rows, or pass --skip-invalid to leave them out")


def load_examples(path: str | Path, fmt: str | None = None, *, skip_invalid: bool = False) -> list[Example]:
    """Load a dataset file as Examples; ``meta`` holds ``source``, ``line`` and ``label`` when known."""
    return load(path, fmt, skip_invalid=skip_invalid).examples


# ------------------------------------------------------------------------------------------ writers
def write_examples(examples: list[Example], path: str | Path, *, with_meta: bool = False) -> int:
    """Write Examples as OpenAI chat JSONL, atomically."""
    return write_jsonl(path, (e.to_dict(with_meta=with_meta) for e in examples))


def write_hf(examples: list[Example], path: str | Path) -> Path:
    """Write Examples as a Hugging Face ``datasets`` folder (a ``messages`` column), atomically."""
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()
    ds = Dataset.from_list([{"messages": [m.to_dict() for m in e.messages]} for e in examples])
    with atomic_dir(path) as tmp:
        ds.save_to_disk(str(tmp))
    return Path(path)
