"""Pass 1, per row: the filter bits, keys, language and MinHash signature that the decisions need."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.data.config import CleanConfig
from tools.data.filters import _SENTENCE, LanguageShortcut, RowChecks
from tools.data.formats import Problem, estimate_rows
from tools.data.near_dups import MinHasher, Templates, normalise
from tools.data.profile import ProfileCounts, is_short_answer
from tools.types import ProgressCallback, ProgressEvent, emit

# per-row bits from pass 1
B_EMPTY, B_ERROR, B_TOO_LONG, B_INPUT_SHORT, B_OUTPUT_SHORT, B_INCOMPLETE, B_QUALITY, B_JSON, B_CODE, \
    B_SHORT_OUT, B_SHORT_ANSWER, B_NO_ALNUM, B_LANG_IN, B_TOO_LONG_FORM = (1 << i for i in range(14))

Msgs = list[dict[str, str]]


_ALNUM = __import__("re").compile(r"[^\W_]")


PII_KINDS = ("email", "phone", "card", "iban", "ip")


@dataclass
class Pass1:
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


def prompt_text(msgs: Msgs) -> str:
    """Every non-system turn before the final assistant turn (validation guarantees the last is the assistant's)."""
    if len(msgs) == 2 and msgs[0]["role"] == "user":
        return msgs[0]["content"]
    return "\n".join(m["content"] for m in msgs[:-1] if m["role"] != "system")


def scan(batches: Iterator[list[tuple[int, Msgs]]], cfg: CleanConfig, checks: RowChecks,
          templates: Templates | None, on_progress: ProgressCallback | None, *,
          problems: list[Problem] | None = None, counter: list[int] | None = None, path: Path | None = None,
          ) -> tuple[Pass1, list[Problem], int, dict[str, int]]:
    """Run the row checks over batches of (line, messages); learn prompt templates on the first batch
    unless they are given."""
    p1 = Pass1()
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
            prompt = prompt_text(ex)
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
                       user_turns=sum(1 for m in ex if m["role"] == "user"),
                       min_working_chars=cfg.reasoning_min_working_chars)
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
                templates = learn_templates(dedup_texts, cfg)
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


def learn_templates(dedup_texts: list[tuple[str, str]], cfg: CleanConfig) -> Templates:
    return Templates.learn([t for t, _ in dedup_texts], min_fraction=cfg.boilerplate_min_fraction,
                           min_rows=cfg.boilerplate_min_rows)
