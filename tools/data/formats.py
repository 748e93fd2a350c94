"""Reading and writing datasets in canonical form (Examples with ``messages``).

Supported inputs, auto-detected or named with ``fmt``:

- ``openai``: OpenAI chat JSONL, one ``{"messages": [{"role", "content"}, ...]}`` per line
- ``prompt_completion`` / ``input_output``: JSONL with those key pairs
- ``alpaca``: JSONL (or a JSON array) with ``instruction``, optional ``input``, ``output``
- ``sharegpt``: JSONL (or a JSON array) with ``conversations: [{"from", "value"}, ...]``
- ``csv`` / ``parquet``: columns named by ``columns=(input, output)`` or found (see ``find_columns``)
- ``json_columns``: JSONL (or a JSON array) of flat records with other keys (MBPP's ``text, code, test_list``,
  ``text, intent``...), mapped to input -> output the same way as table columns
- ``hf``: a Hugging Face ``datasets`` folder saved with ``save_to_disk`` (the ``train`` split of a DatasetDict)

Every row is validated as it is read; a bad row becomes a ``Problem`` naming file:line:field. ``load`` raises
on the first bad rows unless ``skip_invalid``; ``read_records`` streams ``(line, example, problems)`` so that
``clean`` can run over files larger than memory.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import InputError, where
from tools.fileio import atomic_dir, write_jsonl
from tools.types import ROLES, Example, Message

FORMATS = ("openai", "prompt_completion", "input_output", "alpaca", "sharegpt", "json_columns", "csv", "parquet",
           "hf")
# Record layouts a JSON object (or a table row) can have, in detection order.
RECORD_FORMATS = ("openai", "sharegpt", "alpaca", "prompt_completion", "input_output", "text_label")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "model": "assistant",
                   "system": "system"}
# Column names, most telling first. Output names that hold labels come first: they also mark ``meta["label"]``.
_LABEL_COLUMNS = ("label", "labels", "intent", "category", "class", "sentiment", "topic", "tag", "emotion", "stance",
                  "polarity", "domain", "genre")
_OUTPUT_COLUMNS = (*_LABEL_COLUMNS, "rationale", "output", "completion", "answer", "response", "target", "reply", "code",
                   "solution", "summary", "chosen", "translation", "rewrite", "correction", "result", "assistant")
_INPUT_COLUMNS = ("text", "input", "prompt", "question", "instruction", "query", "utterance", "sentence", "source",
                  "content", "message", "review", "document", "passage", "article", "problem", "request", "user",
                  "dialogue", "comment", "tweet", "title")
_CONTEXT_COLUMNS = ("context", "passage", "document", "article")
# Multiple-choice options, listed after the input (AQuA's ``options``: ["A)32400", "B)6000", ...]).
_OPTION_COLUMNS = ("options", "choices")
# A worked-solution output (AQuA's ``rationale``) beside its final answer (``correct``): the answer is kept in
# ``meta["answer"]``, what a reasoning task's reply is scored against (tools.data.answers).
_RATIONALE_COLUMNS = ("rationale", "explanation")
_ANSWER_COLUMNS = ("correct", "correct_answer", "final_answer", "answer")
_TEST_COLUMNS = ("test_list", "tests", "test_cases", "test")
# Columns that never carry the task: row ids and bookkeeping.
_IGNORED_COLUMNS = ("id", "idx", "index", "task_id", "uid", "guid", "row_id", "unnamed: 0", "", "meta",
                    "test_setup_code", "challenge_test_list", "is_classification", "name", "split", "source_file")
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


@dataclass(frozen=True)
class ColumnMap:
    """Which columns (or keys) of a flat record hold the input, the output, an optional context that goes before
    the input, and optional executable tests (kept in ``meta["tests"]``)."""

    input: str
    output: str
    context: str | None = None
    tests: str | None = None
    setup: str | None = None
    options: str | None = None
    answer: str | None = None

    @property
    def is_label(self) -> bool:
        return self.output.lower() in _LABEL_COLUMNS


class AmbiguousColumnsError(InputError):
    """The columns could not be told apart; ``columns`` lists what the file has, so a UI can ask."""

    def __init__(self, what: str, *, where: str | None, columns: list[str]) -> None:
        self.columns = list(columns)
        super().__init__(what, where=where, fix=f"name them: --input-col COLUMN --output-col COLUMN "
                                                f"(columns found: {', '.join(self.columns)})")


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
    try:
        for _, rec in _iter_json(path):
            if isinstance(rec, dict):
                return record_format(rec) or ("json_columns" if _flat(rec) else "openai")
            if not isinstance(rec, _RowError):
                break
    except InputError:
        return "openai"  # the reader names the problem when the file is read
    return "openai"


def _flat(rec: dict[str, Any]) -> bool:
    """A record of named fields (``{"text": ..., "intent": ...}``), not one of the chat layouts."""
    return len(rec) >= 2 and sum(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                 for v in rec.values()) >= 2


def record_format(rec: dict[str, Any]) -> str | None:
    """Which record layout a dict has, or None."""
    if "messages" in rec:
        return "openai"
    if "conversations" in rec:
        return "sharegpt"
    if "instruction" in rec and ("output" in rec or "instances" in rec):
        return "alpaca"
    if "prompt" in rec and "completion" in rec:
        return "prompt_completion"
    if "input" in rec and "output" in rec:
        return "input_output"
    return None


def _printable(name: str) -> str:
    """A column name as text that can be printed and written (a lone surrogate becomes a backslash escape)."""
    return name if not _SURROGATE.search(name) else name.encode("utf-8", "backslashreplace").decode("utf-8")


def find_columns(cols: list[str], columns: tuple[str, str] | None = None, *, where_: str = "",
                 ) -> ColumnMap:
    """Map a table's (or flat record's) columns to input -> output.

    - named by the user (``columns``): those, checked;
    - else by name: an output column (label, intent, category, class, sentiment, topic, tag, answer, output,
      response, completion, target, code...) and an input column (text, input, prompt, question, instruction,
      query, utterance, sentence, source...); pairs such as question/answer or source/target follow from that;
    - else, with exactly two columns that are not ids, the first is the input and the second the output;
    - else ``AmbiguousColumnsError``, listing the columns found and the flags to pass.
    A ``context`` column goes before the input; ``test_list``/``tests`` are kept as the row's tests.
    """
    cols = [_printable(c) for c in cols if isinstance(c, str)]  # a key may hold a lone surrogate
    lower = {c.lower().strip(): c for c in cols}
    tests = next((lower[c] for c in _TEST_COLUMNS if c in lower), None)
    setup = lower.get("test_setup_code")
    if columns:
        missing = [c for c in columns if c not in cols]
        if missing:
            raise AmbiguousColumnsError(f"column(s) {missing} not found", where=where_ or None, columns=cols)
        return ColumnMap(columns[0], columns[1], tests=tests, setup=setup)
    o = next((lower[c] for c in _OUTPUT_COLUMNS if c in lower), None)
    i = next((lower[c] for c in _INPUT_COLUMNS if c in lower and lower[c] != o), None)
    context = None
    if i is not None:
        context = next((lower[c] for c in _CONTEXT_COLUMNS if c in lower and lower[c] not in (i, o)), None)
    options = next((lower[c] for c in _OPTION_COLUMNS if c in lower and lower[c] not in (i, o)), None)
    answer = (next((lower[c] for c in _ANSWER_COLUMNS if c in lower and lower[c] not in (i, o)), None)
              if o is not None and o.lower().strip() in _RATIONALE_COLUMNS else None)
    if i is None or o is None:
        task_cols = [c for c in cols if c.lower().strip() not in _IGNORED_COLUMNS and c not in (tests, setup)]
        if len(task_cols) == 2:
            if o is not None:
                i = next(c for c in task_cols if c != o)
            elif i is not None:
                o = next(c for c in task_cols if c != i)
            else:
                i, o = task_cols
    if i is None or o is None:
        raise AmbiguousColumnsError("cannot tell which column is the input and which the output",
                                    where=where_ or None, columns=cols)
    return ColumnMap(i, o, context=context, tests=tests, setup=setup, options=options, answer=answer)


# ------------------------------------------------------------------------------------------ records
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any, field: str) -> str:
    if value is None:
        raise _RowError(field, "missing value")
    if not isinstance(value, str):
        raise _RowError(field, f"content must be a string, got {type(value).__name__}")
    if _SURROGATE.search(value):
        raise _RowError(field, "holds a lone surrogate (an escape such as \\ud800 that is no character); "
                               "it cannot be written as UTF-8")
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
        if not isinstance(role, str) or role not in ROLES:
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
        role = _SHAREGPT_ROLES.get(who.lower()) if isinstance(who, str) else None
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


def record_to_messages(rec: Any, fmt: str, columns: ColumnMap | tuple[str, str] | None = None, *,
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
        if "instruction" not in rec:
            raise _RowError("instruction", "missing key")
        instr = _text(rec["instruction"], "instruction")
        src, prefix = rec, ""
        if "output" not in rec and "instances" in rec:  # the Alpaca seed layout: instances [{input, output}]
            inst = rec["instances"]
            if not isinstance(inst, list) or not inst or not isinstance(inst[0], dict):
                raise _RowError("instances", "must be a list of {input, output}")
            src, prefix = inst[0], "instances[0]."
        if "output" not in src:
            raise _RowError(f"{prefix}output", "missing key")
        extra = _text(src.get("input") or "", f"{prefix}input")
        prompt = f"{instr}\n\n{extra}" if extra.strip() else instr
        system = rec.get("system") or None
        if system is not None:
            system = _text(system, "system")
        return _pair(prompt, _text(src["output"], f"{prefix}output"), "instruction", f"{prefix}output", system,
                     allow_empty)
    if fmt in ("prompt_completion", "input_output"):
        p, c = ("prompt", "completion") if fmt == "prompt_completion" else ("input", "output")
        for key in (p, c):
            if key not in rec:
                raise _RowError(key, "missing key")
        return _pair(_text(rec[p], p), _text(rec[c], c), p, c, allow_empty=allow_empty)
    if fmt == "text_label":
        assert columns is not None
        cm = columns if isinstance(columns, ColumnMap) else ColumnMap(*columns)
        i, o = cm.input, cm.output
        for key in (i, o):
            if key not in rec:
                raise _RowError(key, "missing key")
        prompt = _scalar(rec[i], i)
        if cm.context and isinstance(rec.get(cm.context), str) and rec[cm.context].strip():
            prompt = f"{_text(rec[cm.context], cm.context)}\n\n{prompt}"
        if cm.options and rec.get(cm.options):
            prompt = f"{prompt}\n{_options(rec[cm.options], cm.options)}"
        return _pair(prompt, _scalar(rec[o], o), i, o, allow_empty=allow_empty)
    raise _RowError(None, f"unknown record format {fmt!r}")


def _options(value: Any, field: str) -> str:
    """Multiple-choice options as lines under the question: ``Options:`` then one option a line."""
    if isinstance(value, str):
        return f"Options: {_text(value, field)}"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _RowError(field, "options must be a list of strings or one string")
    return "Options:\n" + "\n".join(_text(v, field) for v in value)


# ------------------------------------------------------------------------------------------ readers
_BOM = b"\xef\xbb\xbf"


def strip_boms(raw: bytes) -> bytes:
    """The first line without any leading byte-order marks (some tools write two)."""
    while raw.startswith(_BOM):
        raw = raw[3:]
    return raw


def parse_json_line(raw: bytes) -> Any:
    """One JSONL line parsed, or a ``_RowError`` saying why not. No exception escapes: bad bytes, numbers over
    Python's 4,300-digit limit and nesting past the recursion limit are row problems like any syntax error."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return _RowError(None, f"not UTF-8 text ({e.reason} at byte {e.start} of the line)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        return _RowError(None, f"not valid JSON ({e.msg} at column {e.colno})")
    except RecursionError:
        return _RowError(None, "not usable JSON (nested too deeply)")
    except ValueError as e:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        return _RowError(None, f"not usable JSON ({e})")


def _iter_json(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, parsed object or _RowError) for JSONL; for a file holding one JSON array, (index+1, item)."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise InputError(f"cannot open the file: {e.strerror}", where=str(path)) from e
    with f:
        head = strip_boms(f.read(4096)).lstrip()
        if head.startswith(b"["):
            f.seek(0)
            data = strip_boms(f.read())
            try:
                items = json.loads(data.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise InputError(f"the file is not UTF-8 text ({e.reason} at byte {e.start})", where=str(path),
                                 fix="save the file as UTF-8") from e
            except RecursionError as e:
                raise InputError("the JSON array is nested too deeply to read", where=str(path),
                                 fix="flatten the records, or write one JSON object per line (JSONL)") from e
            except ValueError as e:
                raise InputError(f"the file is not valid JSON: {e}", where=str(path),
                                 fix="write one JSON object per line (JSONL) or a valid JSON array") from e
            if not isinstance(items, list):
                raise InputError("the file is not one JSON array", where=str(path),
                                 fix="write one JSON object per line (JSONL) or a valid JSON array")
            yield from enumerate(items, 1)
            return
        f.seek(0)
        for lineno, raw in enumerate(f, 1):
            if lineno == 1:
                raw = strip_boms(raw)
            if not raw.strip():
                continue
            yield lineno, parse_json_line(raw)


def _pick_columns(cols: list[str], columns: tuple[str, str] | None, path: Path) -> ColumnMap:
    return find_columns(cols, columns, where_=str(path))


def _iter_csv(path: Path, columns: tuple[str, str] | None) -> Iterator[tuple[int, Any]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    line = 1
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            cols = list(reader.fieldnames or [])
            if cols and cols[0].startswith("\ufeff"):  # a second byte-order mark
                cols[0] = cols[0].lstrip("\ufeff")
                reader.fieldnames = cols
            if not [c for c in cols if c.strip()]:
                raise InputError("the file has no header row", where=where(path, 1),
                                 fix="put the column names on the first line")
            yield 0, _pick_columns(cols, columns, path)
            line = reader.line_num + 1
            for row in reader:  # a quoted field may span lines: report the line where the row starts
                yield line, row
                line = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise InputError(f"the file is not UTF-8 text ({e.reason} at byte {e.start})", where=str(path),
                         fix="save the file as UTF-8") from e
    except csv.Error as e:
        raise InputError(f"cannot parse the CSV: {e}", where=where(path, line),
                         fix="check the quoting on that line") from e


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
        cols = list(pf.schema_arrow.names)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InputError(f"cannot read the Parquet file: {e}", where=str(path)) from e

    def rows() -> Iterator[dict[str, Any]]:
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=8192):
                for row in batch.to_pylist():
                    done += 1
                    yield row
        except Exception as e:  # noqa: BLE001 - a corrupt page raises OSError, ArrowInvalid, ...
            raise InputError(f"cannot read the Parquet file after row {done}: {e}", where=where(path, done + 1),
                             fix="the file is damaged: write it again, or convert what is readable") from e

    yield from _iter_table_rows(rows(), cols, path, columns)


def _iter_hf(path: Path, columns: tuple[str, str] | None) -> Iterator[tuple[int, Any]]:
    try:
        import datasets
        from datasets import load_from_disk

        datasets.disable_progress_bars()
        ds = load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            split = "train" if "train" in ds else next(iter(ds))
            ds = ds[split]
        names = list(ds.column_names)
    except Exception as e:  # noqa: BLE001 - datasets raises several types for a bad folder
        raise InputError(f"cannot read this as a Hugging Face datasets folder: {e}", where=str(path),
                         fix="give a folder written by Dataset.save_to_disk, or a JSONL/CSV/Parquet file") from e

    def rows() -> Iterator[dict[str, Any]]:
        done = 0
        try:
            for row in ds:
                done += 1
                yield row
        except Exception as e:  # noqa: BLE001 - damaged arrow files
            raise InputError(f"cannot read the datasets folder after row {done}: {e}", where=where(path, done + 1),
                             fix="the folder is damaged: save it again") from e

    yield from _iter_table_rows(rows(), names, path, columns)


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
        if type(role) is not str or role not in _ROLE_SET or type(content) is not str or not content.strip() \
                or _SURROGATE.search(content):
            return None
        if role == "assistant":
            has_assistant = True
        out.append({"role": role, "content": content})
    if not has_assistant or out[-1]["role"] != "assistant":
        return None
    return out


def row_meta(rec: Any, cols: ColumnMap | None, msgs: list[dict[str, str]]) -> dict[str, Any] | None:
    """tunewise's ``meta`` for a row: the record's own ``meta``, ``label`` for label columns, ``tests`` (a list
    of Python statements) and ``test_setup`` when the record carries executable tests (MBPP's ``test_list``)."""
    meta: dict[str, Any] | None = None
    if not isinstance(rec, dict):
        return None
    extra = rec.get("meta")
    if isinstance(extra, dict):
        meta = dict(extra)
    if cols is not None:
        if cols.is_label:
            meta = meta or {}
            meta["label"] = msgs[-1]["content"]
        if cols.answer and isinstance(rec.get(cols.answer), (str, int, float)) and str(rec[cols.answer]).strip():
            meta = meta or {}
            meta["answer"] = str(rec[cols.answer]).strip()
        if cols.tests:
            tests = rec.get(cols.tests)
            if isinstance(tests, str) and tests.strip():
                tests = [tests]
            if isinstance(tests, list) and tests and all(isinstance(t, str) and not _SURROGATE.search(t)
                                                         for t in tests):
                meta = meta or {}
                meta["tests"] = list(tests)
                setup = rec.get(cols.setup) if cols.setup else None
                if isinstance(setup, str) and setup.strip() and not _SURROGATE.search(setup):
                    meta["test_setup"] = setup
    return meta


def read_rows(path: str | Path, fmt: str | None = None, *, columns: tuple[str, str] | None = None,
              allow_empty: bool = False) -> Iterator[tuple[int, list[dict[str, str]] | None, dict[str, Any] | None, Problem | None]]:
    """Stream ``(line, messages, meta, problem)`` with messages as plain ``{"role", "content"}`` dicts.

    The fast path under ``read_records`` and ``clean``: no objects are built per message. ``meta`` holds
    the record's own ``meta`` and, for label columns, ``label``; for rows with tests, ``tests`` (None when
    there is none of these). Every failure of a row is a ``Problem``; a failure of the whole file is an
    ``InputError``; nothing else escapes.
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
    cols: ColumnMap | None = None
    row_fmt: str | None = None
    if file_fmt in ("csv", "parquet", "hf"):
        it = {"csv": _iter_csv, "parquet": _iter_parquet, "hf": _iter_hf}[file_fmt](path, columns)
        _, cols = next(it)
        row_fmt = "text_label" if cols else None
    elif file_fmt == "json_columns" or columns:
        it = _iter_json(path)
        head: list[tuple[int, Any]] = []
        for item in it:  # the columns come from the first record that is an object
            head.append(item)
            if isinstance(item[1], dict):
                cols = find_columns([k for k in item[1] if isinstance(k, str)], columns,
                                    where_=where(path, item[0]))
                break
        it = itertools.chain(head, it)
        row_fmt = "text_label" if cols else None
    else:
        it = _iter_json(path)
        row_fmt = file_fmt
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
            except RecursionError:
                yield line, None, None, Problem(source, line, None, "nested too deeply")
                continue
        try:
            meta = row_meta(rec, cols, msgs)
            if meta:
                json.dumps(meta, ensure_ascii=False).encode("utf-8")  # meta travels with the row: must be writable
        except (ValueError, TypeError, RecursionError):
            yield line, None, None, Problem(source, line, "meta", "cannot be written back as JSON (nested too "
                                                                  "deeply or holds a lone surrogate)")
            continue
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


def column_map(path: str | Path, fmt: str | None = None, *, columns: tuple[str, str] | None = None,
               ) -> ColumnMap | None:
    """The input/output column mapping a table or flat-record file is read with (None for chat layouts)."""
    path = Path(path)
    file_fmt = fmt or detect_format(path)
    if file_fmt in ("csv", "parquet", "hf"):
        it = {"csv": _iter_csv, "parquet": _iter_parquet, "hf": _iter_hf}[file_fmt](path, columns)
        try:
            cm: ColumnMap | None = next(it)[1]
        finally:
            getattr(it, "close", lambda: None)()  # close the file now, not at garbage collection
        return cm
    if file_fmt == "json_columns" or columns:
        for _, rec in _iter_json(path):
            if isinstance(rec, dict):
                return find_columns([k for k in rec if isinstance(k, str)], columns, where_=str(path))
    return None
