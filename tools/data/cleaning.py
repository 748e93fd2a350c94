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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tools.data.config import RULE_IDS, CleanConfig
from tools.data.filters import _SENTENCE, LanguageShortcut, RowChecks
from tools.data.formats import Problem, detect_format, estimate_rows, raise_problems, read_rows
from tools.data.near_dups import MinHasher, Templates, find_near_duplicates, normalise
from tools.data.profile import ProfileCounts, decide_profile, is_short_answer
from tools.data.reports import CleanReport
from tools.errors import InputError
from tools.fileio import atomic_open, sha256_file, write_json, write_text
from tools.types import ProgressCallback, ProgressEvent, emit

Msgs = list[dict[str, str]]

# Removal reasons, in the order they are decided; a row is counted under the first one that applies.
REASONS = ("empty", "error_marker", "length", "incomplete", "language", "quality", "pii",
           "exact_duplicate", "conflicting_label", "near_duplicate")
_R = {r: i + 1 for i, r in enumerate(REASONS)}  # 0 = kept

# per-row bits from pass 1
B_EMPTY, B_ERROR, B_TOO_LONG, B_INPUT_SHORT, B_OUTPUT_SHORT, B_INCOMPLETE, B_QUALITY, B_JSON, B_CODE, \
    B_SHORT_OUT, B_SHORT_ANSWER, B_NO_ALNUM, B_LANG_IN, B_TOO_LONG_FORM = (1 << i for i in range(14))
_ALNUM = __import__("re").compile(r"[^\W_]")
PII_KINDS = ("email", "phone", "card", "iban", "ip")


@dataclass
class _Pass1:
    """Columns gathered in the first pass (one entry per valid row)."""

    lines: list[np.ndarray] = field(default_factory=list)
    bits: list[np.ndarray] = field(default_factory=list)
    pii: list[np.ndarray] = field(default_factory=list)
    lang: list[np.ndarray] = field(default_factory=list)
    key: list[np.ndarray] = field(default_factory=list)
    in_key: list[np.ndarray] = field(default_factory=list)
    out_key: list[np.ndarray] = field(default_factory=list)
    in_len: list[np.ndarray] = field(default_factory=list)
    out_len: list[np.ndarray] = field(default_factory=list)
    sigs: list[np.ndarray] = field(default_factory=list)
    counts: ProfileCounts = field(default_factory=ProfileCounts)
    langs: list[str] = field(default_factory=list)  # code per lang id
    quality_why: dict[int, str] = field(default_factory=dict)
    templates: int = 0
    template_obj: Templates | None = None


def _prompt_text(msgs: Msgs) -> str:
    """Every non-system turn before the final assistant turn (validation guarantees the last is the assistant's)."""
    if len(msgs) == 2 and msgs[0]["role"] == "user":
        return msgs[0]["content"]
    return "\n".join(m["content"] for m in msgs[:-1] if m["role"] != "system")


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
    p1, problems, fmt, n_read = _pass1(path, cfg, checks, on_progress)
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
    reason, detail, flagged, info = _decide(cols, sigs, p1, cfg, n)
    emit(on_progress, ProgressEvent("decide", 1, 1))
    examples, kept, rejected = _pass2(path, out, cfg, checks, reason, detail, cols["lines"], on_progress,
                                      info.pop("near_roots"), info.pop("templates"))
    if info["near_duplicates"]:
        info["near_duplicates"]["rejected_by_exact_check"] = rejected
    report = _report(path, out, sha, fmt, n_read, n, problems, reason, flagged, info, examples, cols, cfg,
                     time.perf_counter() - t0)
    report.stale_temp_files_removed = stale
    doc = report.to_dict()
    if report_path:
        report_path = Path(report_path)
        write_json(report_path, doc)
        write_text(report_path.with_suffix(".md"), report_markdown(doc))
    _log(path, out, sha, fmt, doc, cfg)
    return report


# ---------------------------------------------------------------------------------------------- crash hygiene
# A run killed with -9 leaves its hidden temp file beside --out (tools.fileio.atomic_open names it
# ".OUT.<random>.tmp"). The live writer holds an exclusive flock on its temp file for as long as it writes, so
# the next run can tell a dead writer's leftovers (lock free) from a live one's (lock held). Report files are
# written in one go without a lock; their leftovers are removed once they are older than a minute.
_REPORT_TEMP_MIN_AGE_S = 60.0


def _lock_temp(f: Any) -> None:
    """Mark a temp file as owned by a live writer (released by the kernel when the process dies)."""
    try:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass


def remove_stale_temp_files(out: Path, *others: Path) -> int:
    """Remove temp files that killed runs left beside ``out`` (and beside the report files); return how many."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): leave them
        return 0
    import os

    removed = 0
    for target, locked in ((out, True), *((o, False) for o in others)):
        target = Path(target)
        if not target.parent.is_dir():
            continue
        for cand in target.parent.glob(f".{target.name}.*.tmp"):
            try:
                if cand.is_dir():
                    continue
                if not locked:
                    if time.time() - cand.stat().st_mtime >= _REPORT_TEMP_MIN_AGE_S:
                        cand.unlink()
                        removed += 1
                    continue
                fd = os.open(cand, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: its writer is gone
                except OSError:
                    continue  # a live run is writing it
                finally:
                    os.close(fd)
                cand.unlink()
                removed += 1
            except OSError:
                continue
    return removed


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: the forked pass-1 worker dies with the process that started it, even on kill -9.

    On Linux the kernel delivers SIGKILL when the parent dies (PR_SET_PDEATHSIG); elsewhere, and to close the
    race where the parent died before the call, a watchdog thread checks the parent pid twice a second."""
    import os
    import signal
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="tunewise-parent-watch").start()


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


def _pass1(path: Path, cfg: CleanConfig, checks: RowChecks, on_progress: ProgressCallback | None,
           ) -> tuple[_Pass1, list[Problem], str, int]:
    """First pass: per-row results, keys and signatures. Large JSONL files are read by two processes."""
    fmt = cfg.fmt or detect_format(path)
    ranges = _byte_ranges(path, fmt, cfg)
    if ranges is None:
        problems: list[Problem] = []
        counter = [0, 0]
        p1, problems, n_read, lang_ids = _scan(_batches(path, cfg, problems, counter), cfg, checks, None,
                                               on_progress, problems=problems, counter=counter, path=path)
        p1.langs = sorted(lang_ids, key=lambda c: lang_ids[c])
        return p1, problems, fmt, n_read
    return _pass1_parallel(path, fmt, cfg, checks, ranges, on_progress)


def _scan(batches: Iterator[list[tuple[int, Msgs]]], cfg: CleanConfig, checks: RowChecks,
          templates: Templates | None, on_progress: ProgressCallback | None, *,
          problems: list[Problem] | None = None, counter: list[int] | None = None, path: Path | None = None,
          ) -> tuple[_Pass1, list[Problem], int, dict[str, int]]:
    """Run the row checks over batches of (line, messages); learn prompt templates on the first batch
    unless they are given."""
    p1 = _Pass1()
    problems = problems if problems is not None else []
    counter = counter if counter is not None else [0, 0]  # rows read, rows with tests: filled by the batches
    hasher = MinHasher(num_perm=cfg.num_perm, shingle=cfg.shingle_size, seed=cfg.near_dup_seed)
    lang_ids: dict[str, int] = {}
    label_max = cfg.label_max_chars
    min_chars, max_chars = cfg.min_chars, cfg.max_chars
    lang_min = cfg.language_min_chars
    q_min = cfg.quality_min_chars
    if templates is not None:
        p1.templates = len(templates.prefixes) + len(templates.suffixes)
        p1.template_obj = templates
    total = estimate_rows(path) if path is not None and on_progress is not None else None
    lv = cfg.language_vocabulary
    lang_out = LanguageShortcut(checks, min_probability=cfg.language_min_probability, **lv)
    lang_in_id = LanguageShortcut(checks, min_probability=cfg.input_language_min_probability, **lv)
    for batch in batches:
        m = len(batch)
        lines = np.empty(m, np.int64)
        bits = np.zeros(m, np.int32)
        pii = np.zeros(m, np.int16)
        lang = np.full(m, -1, np.int16)
        key = np.empty(m, np.int64)
        in_key = np.empty(m, np.int64)
        out_key = np.empty(m, np.int64)
        in_len = np.empty(m, np.int32)
        out_len = np.empty(m, np.int32)
        dedup_texts: list[tuple[str, str]] = []
        base = sum(len(x) for x in p1.lines)
        counts = p1.counts
        in_prob = cfg.input_language_min_probability
        for j, (line, ex) in enumerate(batch):
            prompt = _prompt_text(ex)
            output = ex[-1]["content"]
            lines[j] = line
            lp, lo = len(prompt), len(output)
            in_len[j], out_len[j] = lp, lo
            b = 0
            if not prompt.strip() or not output.strip():
                b |= B_EMPTY
            both = prompt + "\n\n" + output  # one scan for PII instead of two
            # error markers mean a failed answer: in outputs; in inputs only when the input is nothing but a dump
            if cfg.error_markers and (checks.has_error_marker(output) or checks.is_error_dump(prompt)):
                b |= B_ERROR
            if lp > max_chars or lo > max_chars:
                b |= B_TOO_LONG
                if lp > cfg.long_form_max_chars or lo > cfg.long_form_max_chars:
                    b |= B_TOO_LONG_FORM
            if lp < min_chars and not checks.is_utterance(prompt):
                b |= B_INPUT_SHORT
            if lo < min_chars:
                b |= B_OUTPUT_SHORT
                if _ALNUM.search(output) is None:
                    b |= B_NO_ALNUM
            if lo <= label_max:
                b |= B_SHORT_OUT
            is_json = checks.is_json(output)
            code_lang = None if is_json else checks.code_language(output)
            short_answer = not is_json and not code_lang and is_short_answer(output)
            if short_answer:
                b |= B_SHORT_ANSWER
            counts.add(output, is_json=is_json, code_language=code_lang, label_max_chars=label_max,
                       user_turns=sum(1 for m in ex if m["role"] == "user"))
            if is_json:
                b |= B_JSON
            if code_lang:
                b |= B_CODE
            free = not is_json and not code_lang
            prose = free and not short_answer
            if prose and not checks.is_complete(output):
                b |= B_INCOMPLETE
            # language ID on the text that carries the language: prose outputs, else the input
            if cfg.language:
                if prose:
                    if lo >= lang_min and _SENTENCE.search(output):  # reliable on sentences, not on lists of names
                        code, prob = lang_out.classify(output)
                        if prob >= cfg.language_min_probability:
                            lang[j] = lang_ids.setdefault(code, len(lang_ids))
                elif lp >= lang_min:
                    b |= B_LANG_IN
                    code, prob = lang_in_id.classify(prompt)
                    if prob >= in_prob:
                        lang[j] = lang_ids.setdefault(code, len(lang_ids))
            if cfg.quality and prose and lo >= q_min:
                why = checks.quality_problem(output)
                if why:
                    b |= B_QUALITY
                    p1.quality_why[base + j] = why
            if cfg.pii:
                mask = 0
                for kind, _, _ in checks.pii_spans(both):
                    mask |= 1 << PII_KINDS.index(kind)
                pii[j] = mask
            bits[j] = b
            np_ = normalise(prompt)
            no = normalise(output)
            key[j] = hash((np_, no))
            in_key[j] = hash(np_)
            out_key[j] = hash(no)
            if cfg.near_duplicates:
                dedup_texts.append((np_, no))
        if cfg.near_duplicates:
            if templates is None:  # prompt templates, learned on the first batch
                templates = _learn_templates(dedup_texts, cfg)
                p1.templates = len(templates.prefixes) + len(templates.suffixes)
                p1.template_obj = templates
            strip = templates.strip if templates else (lambda t: t)
            p1.sigs.append(hasher.signatures([f"{strip(i)} \n {o}" for i, o in dedup_texts]))
        for name, arr in (("lines", lines), ("bits", bits), ("pii", pii), ("lang", lang), ("key", key),
                          ("in_key", in_key), ("out_key", out_key), ("in_len", in_len), ("out_len", out_len)):
            getattr(p1, name).append(arr)
        emit(on_progress, ProgressEvent("read", counter[0], total, message=f"{counter[0]} rows read"))
    p1.counts.test_rows = counter[1] if len(counter) > 1 else 0
    return p1, problems, counter[0], lang_ids


def _learn_templates(dedup_texts: list[tuple[str, str]], cfg: CleanConfig) -> Templates:
    return Templates.learn([t for t, _ in dedup_texts], min_fraction=cfg.boilerplate_min_fraction,
                           min_rows=cfg.boilerplate_min_rows)


# -- two processes for large JSONL files --------------------------------------------------------------
_JSONL_FORMATS = ("openai", "prompt_completion", "input_output", "alpaca", "sharegpt")


def _byte_ranges(path: Path, fmt: str, cfg: CleanConfig) -> list[tuple[int, int, int]] | None:
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
    if size < cfg.parallel_min_bytes or not _is_jsonl(path):
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
                ) -> tuple[_Pass1, list[Problem], int, dict[str, int]]:
    path, fmt, start, end, first_line, cfg, templates = args
    problems: list[Problem] = []
    counter = [0, 0]
    return _scan(_range_batches(path, fmt, start, end, first_line, cfg, problems, counter), cfg,
                 RowChecks(cfg), templates, None, problems=problems, counter=counter)


def _half(on_progress: ProgressCallback | None) -> ProgressCallback | None:
    """Progress of the parent's half of a two-process pass, shown as progress of the whole (x2)."""
    if on_progress is None:
        return None
    cb = on_progress
    return lambda ev: cb(ProgressEvent(ev.stage, ev.step * 2, ev.total, ev.metrics, ev.message))


def _pass1_parallel(path: Path, fmt: str, cfg: CleanConfig, checks: RowChecks,
                    ranges: list[tuple[int, int, int]], on_progress: ProgressCallback | None,
                    ) -> tuple[_Pass1, list[Problem], str, int]:
    import multiprocessing

    # templates are learned once, on the file's first batch, so both halves strip the same ones
    templates = None
    if cfg.near_duplicates:
        first = next(_range_batches(path, fmt, *ranges[0], cfg, [], [0, 0]), [])
        templates = _learn_templates([(normalise(_prompt_text(m)), "") for _, m in first], cfg)
    import os

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        child = pool.apply_async(_scan_range, ((path, fmt, *ranges[1], cfg, templates),))
        problems: list[Problem] = []
        counter = [0, 0]
        p1, problems, n_read, lang_ids = _scan(
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


# ---------------------------------------------------------------------------------------------- decisions
def _decide(cols: dict[str, np.ndarray], sigs: np.ndarray | None, p1: _Pass1, cfg: CleanConfig, n: int,
            ) -> tuple[np.ndarray, dict[int, str], dict[str, int], dict[str, Any]]:
    bits = cols["bits"]
    lang = cols["lang"]
    lang_in = (bits & B_LANG_IN) != 0
    # the task profile, decided once from the first pass (tools.data.profile), with the languages found
    counts = p1.counts
    for side, mask in (("input_languages", lang_in), ("output_languages", ~lang_in)):
        found = lang[mask & (lang >= 0)]
        if len(found):
            getattr(counts, side).update({p1.langs[i]: int(c) for i, c in enumerate(np.bincount(found)) if c})
    profile = decide_profile(counts, cfg, output_tokens=np.maximum(1, np.round(cols["out_len"] / 4)),
                             task_kind=cfg.task_kind)
    kind = profile.output_kind
    short = (bits & B_SHORT_OUT) != 0
    label_row = short & (kind == "label")
    structured = (bits & B_JSON) != 0
    code = (bits & B_CODE) != 0
    free = ~label_row & ~structured & ~code
    if profile.source == "user" and kind in ("label", "structured", "code"):
        free[:] = False  # the user says what the outputs are: no prose check applies
    reason = np.zeros(n, np.int8)
    detail: dict[int, str] = {}

    def mark(mask: np.ndarray, name: str) -> None:
        reason[(reason == 0) & mask] = _R[name]

    if cfg.empty:
        mark((bits & B_EMPTY) != 0, "empty")
    if cfg.error_markers:
        mark((bits & B_ERROR) != 0, "error_marker")
    if cfg.length:
        # short outputs are fine for labels, JSON, code and short answers (data.clean.min_length correction,
        # data.clean.min_length.short_answers); short inputs that are whole utterances were never marked
        short_ok = kind in ("label", "structured", "code", "short_answer") or \
            profile.short_answer_share >= cfg.short_answer_min_share_in_text
        out_short = (bits & B_OUTPUT_SHORT) != 0
        too_short = (out_short & free & (not short_ok)) | (out_short & ((bits & B_NO_ALNUM) != 0) & ~structured)
        too_long = (bits & (B_TOO_LONG_FORM if kind in ("text", "code") else B_TOO_LONG)) != 0
        mark(((bits & B_INPUT_SHORT) != 0) | too_short | too_long, "length")
    if cfg.completeness:
        mark(((bits & B_INCOMPLETE) != 0) & free, "incomplete")
    majority = None
    # language ID on the text that carries the language (data.clean.language.carrier)
    carrier = lang_in if kind in ("label", "short_answer", "structured", "code") else (~lang_in & free)
    undetermined = int(((lang < 0) | ~carrier).sum()) if cfg.language else 0
    if cfg.language:
        determined = lang[(lang >= 0) & carrier]
        if cfg.expected_language:
            majority = cfg.expected_language
        elif len(determined):
            majority = p1.langs[int(np.bincount(determined).argmax())]
        if majority is not None:
            want = p1.langs.index(majority) if majority in p1.langs else -2
            mark((lang >= 0) & carrier & (lang != want), "language")
    flagged: dict[str, int] = {}
    if cfg.quality:
        q = ((bits & B_QUALITY) != 0) & free
        if cfg.quality_action == "remove":
            mark(q, "quality")
        else:
            flagged["quality"] = int(q.sum())
        for i, why in p1.quality_why.items():
            detail[i] = why
    pii = cols["pii"]
    if cfg.pii:
        has = pii != 0
        if cfg.pii_action == "remove":
            mark(has, "pii")
        flagged["pii"] = int(has.sum())
        for k, pii_kind in enumerate(PII_KINDS):
            c = int(((pii & (1 << k)) != 0).sum())
            if c:
                flagged[f"pii_{pii_kind}"] = c
    if cfg.language:
        flagged["language_undetermined"] = undetermined
    # exact duplicates among rows still alive: keep the first occurrence
    alive = reason == 0
    key = cols["key"]
    if cfg.exact_duplicates:
        idx = np.flatnonzero(alive)
        _, first, inverse = np.unique(key[idx], return_index=True, return_inverse=True)
        dup = np.ones(len(idx), bool)
        dup[first] = False
        reason[idx[dup]] = _R["exact_duplicate"]
        original = idx[first[inverse]]
        for i, o in zip(idx[dup][: cfg.examples_per_reason].tolist(),
                        original[dup][: cfg.examples_per_reason].tolist(), strict=True):
            detail[i] = f"copy of line {int(cols['lines'][o])}"
    # conflicting labels: one input, several label/JSON outputs
    conflicts = 0
    if cfg.conflicting_labels:
        applies = label_row | structured
        idx = np.flatnonzero((reason == 0) & applies)
        if len(idx):
            ik, ok = cols["in_key"][idx], cols["out_key"][idx]
            order = np.lexsort((ok, ik))
            ik_s, ok_s = ik[order], ok[order]
            uniq_in, inv = np.unique(ik_s, return_inverse=True)
            change = np.concatenate(([True], (ik_s[1:] != ik_s[:-1]) | (ok_s[1:] != ok_s[:-1])))
            distinct_out = np.bincount(inv, weights=change.astype(np.int64), minlength=len(uniq_in))
            bad = distinct_out[inv] > 1
            reason[idx[order[bad]]] = _R["conflicting_label"]
            conflicts = int(bad.sum())
    # near duplicates among rows still alive: keep the cluster's first row
    near: dict[str, Any] = {}
    info_roots: dict[int, int] = {}
    if cfg.near_duplicates and sigs is not None:
        alive = reason == 0
        res = find_near_duplicates(sigs, threshold=cfg.near_dup_threshold, active=alive,
                                   max_cluster_size=cfg.max_cluster_size, max_bucket=cfg.max_bucket)
        root = res.root
        in_cluster = alive & (root != np.arange(n))
        oversize = np.isin(root, np.fromiter(res.oversize_roots, np.int64)) if res.oversize_roots else \
            np.zeros(n, bool)
        remove = in_cluster & ~oversize
        reason[remove] = _R["near_duplicate"]
        for i in np.flatnonzero(remove).tolist():
            detail[i] = f"near-duplicate of line {int(cols['lines'][root[i]])}"
        info_roots = {int(i): int(root[i]) for i in np.flatnonzero(remove).tolist()}
        flagged["template_cluster"] = int((oversize & alive).sum())
        near = {"templates_stripped": p1.templates, "candidates": res.candidates, "verified_pairs": res.pairs,
                "clusters": int(len(np.unique(root[remove]))), "oversize_clusters": len(res.oversize_roots)}
    labels = kind == "label"
    info = {"output_kind": kind, "profile": profile,
            "language": majority, "near_duplicates": near, "conflicting_rows": conflicts,
            "label_count": len(counts.short_outputs) if labels else None,
            "label_distribution": dict(counts.short_outputs.most_common(20)) if labels else None,
            "near_roots": info_roots, "templates": p1.template_obj}
    return reason, detail, flagged, info


# ---------------------------------------------------------------------------------------------- pass 2
def _short(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _pass2(path: Path, out: Path, cfg: CleanConfig, checks: RowChecks, reason: np.ndarray,
           detail: dict[int, str], lines: np.ndarray, on_progress: ProgressCallback | None,
           near_roots: dict[int, int], templates: Templates | None,
           ) -> tuple[dict[str, list[dict[str, Any]]], int, int]:
    """Write the kept rows. Near duplicates are confirmed here on exact shingle sets: each removed row is
    compared with its cluster's first row (read earlier in the same pass), and kept if the true Jaccard
    similarity is below the threshold, so signature noise never costs a row."""
    import json

    roots_needed = set(near_roots.values())
    # the root's comparison text (not its shingle set: a few hundred bytes instead of kilobytes per root),
    # dropped once its last member has been checked
    root_text: dict[int, bytes] = {}
    members_left = Counter(near_roots.values())
    k = cfg.shingle_size
    rejected = 0

    def dedup_text(ex: Msgs) -> bytes:
        i_text = normalise(_prompt_text(ex))
        if templates:
            i_text = templates.strip(i_text)
        return f"{i_text} \n {normalise(ex[-1]['content'])}".encode()

    def shingle_set(b: bytes) -> set[bytes]:
        return {b[j:j + k] for j in range(max(1, len(b) - k + 1))}

    examples: dict[str, list[dict[str, Any]]] = {r: [] for r in REASONS}
    want = cfg.examples_per_reason
    reasons = reason.tolist()
    n = len(reasons)
    mask = cfg.pii and cfg.pii_action == "mask"
    as_hf = out.suffix == ""
    hf_rows: list[dict[str, Any]] = []
    kept = 0
    near = _R["near_duplicate"]

    fmt = cfg.fmt or detect_format(path)
    fast = fmt == "openai" and not mask and not as_hf and _is_jsonl(path)

    def rows() -> Iterator[tuple[Msgs, str | None, dict[str, Any] | None]]:
        """(messages, the line as written when it is already canonical OpenAI JSONL else None, meta)."""
        if fast:
            yield from _raw_rows(path, lines)
            return
        for _, ex, meta, _ in read_rows(path, cfg.fmt, columns=cfg.columns, allow_empty=True):
            if ex is not None:
                yield ex, None, meta

    def write(f: Any) -> int:
        nonlocal kept, rejected
        for i, (ex, raw, meta) in enumerate(rows()):
            if i >= n:
                break
            r = reasons[i]
            if i in roots_needed:
                root_text[i] = dedup_text(ex)
            if r == near and i in near_roots:
                root = near_roots[i]
                a, b = shingle_set(dedup_text(ex)), shingle_set(root_text.get(root, b""))
                members_left[root] -= 1
                if not members_left[root]:
                    root_text.pop(root, None)
                if len(a & b) < cfg.near_dup_threshold * len(a | b):
                    r = reasons[i] = reason[i] = 0
                    rejected += 1
            if r == 0:
                if raw is not None:  # already canonical: copy the line, no re-encoding
                    f.write(raw)
                else:
                    msgs = [{"role": m["role"], "content": checks.mask_pii(m["content"])} for m in ex] if mask \
                        else ex
                    # tunewise's own ``meta`` (label, synthetic, flags) travels with the row
                    rec = {"messages": msgs, "meta": meta} if meta and not as_hf else {"messages": msgs}
                    if as_hf:
                        hf_rows.append(rec)
                    else:
                        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                kept += 1
            else:
                name = REASONS[r - 1]
                if len(examples[name]) < want:
                    examples[name].append({"line": int(lines[i]), "input": _short(_prompt_text(ex)),
                                           "output": _short(ex[-1]["content"]), "why": detail.get(i, name)})
            if i % 50_000 == 0:
                emit(on_progress, ProgressEvent("write", i, n))
        emit(on_progress, ProgressEvent("write", n, n))
        return kept

    if as_hf:
        write(None)
        import datasets
        from datasets import Dataset

        from tools.fileio import atomic_dir

        datasets.disable_progress_bars()
        with atomic_dir(out) as tmp:
            Dataset.from_list(hf_rows).save_to_disk(str(tmp))
    else:
        with atomic_open(out) as f:
            _lock_temp(f)
            write(f)
    return {k: v for k, v in examples.items() if v}, kept, rejected


def _is_jsonl(path: Path) -> bool:
    """True for a JSON-lines file (not one JSON array)."""
    from tools.data.formats import strip_boms

    with path.open("rb") as f:
        return not strip_boms(f.read(4096)).lstrip().startswith(b"[")


def _raw_rows(path: Path, lines: np.ndarray) -> Iterator[tuple[Msgs, str | None, dict[str, Any] | None]]:
    """The valid rows of an OpenAI JSONL file (their line numbers from pass 1), each with its line when the
    record is exactly ``{"messages": [{"role", "content"}, ...]}`` (so it can be copied unchanged). Lines are
    split exactly as pass 1 split them (bytes, on newlines), so the numbers agree."""
    import json

    from tools.data.formats import strip_boms

    want = lines.tolist()
    k = 0
    with path.open("rb") as f:
        for lineno, raw_b in enumerate(f, 1):
            if k >= len(want):
                break
            if lineno != want[k]:
                continue  # blank or invalid (reported in pass 1)
            k += 1
            if lineno == 1:
                raw_b = strip_boms(raw_b)
            raw = raw_b.decode("utf-8")
            rec = json.loads(raw)
            msgs = rec["messages"]
            canonical = len(rec) == 1 and all(len(m) == 2 for m in msgs)
            meta = rec.get("meta")
            yield msgs, (raw if raw.endswith("\n") else raw + "\n") if canonical else None, \
                meta if isinstance(meta, dict) else None


# ---------------------------------------------------------------------------------------------- report
def _histogram(lengths: np.ndarray, bins: list[int]) -> dict[str, int]:
    edges = [*bins, np.iinfo(np.int64).max]
    counts, _ = np.histogram(lengths, bins=edges)
    labels = [f"{a}-{b - 1}" for a, b in zip(bins, bins[1:], strict=False)] + [f"{bins[-1]}+"]
    return dict(zip(labels, (int(c) for c in counts), strict=True))


def _report(path: Path, out: Path, sha: str, fmt: str, n_read: int, n: int, problems: list[Problem],
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


def _log(path: Path, out: Path, sha: str, fmt: str, report: dict[str, Any], cfg: CleanConfig) -> None:
    from tools.runlog import RunLog

    slim = {k: v for k, v in report.items() if k not in ("examples",)}
    log = RunLog()
    log.log_dataset(path, sha256=sha, fmt=fmt, rows=report["input_rows"], kind="input", report=None)
    out_sha = sha256_file(out) if out.is_file() else ""
    log.log_dataset(out, sha256=out_sha, fmt="openai" if out.is_file() else "hf", rows=report["kept_rows"],
                    kind="cleaned", report=slim)
