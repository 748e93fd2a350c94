"""The task profile: what a data set *is*, decided once from all of its rows (``tools.types.TaskProfile``).

``detect_profile(examples)`` reads every row cheaply (lengths, a JSON check, the code detector) and a bounded,
evenly spread sample for language ID; ``clean`` fills the same ``ProfileCounts`` in its first pass and calls the
same ``decide_profile``, so cleaning, inspection, metric choice and the advisor all read one decision. The
user can override the kind (``--task-kind``); the profile then says ``source="user"``.

Kinds, in the order they are decided (thresholds: ``knowledge/cleaning.yaml``, ``data.profile.*``):

- ``label``: almost all outputs short, and either few distinct values, or (at any number of classes) almost
  every value recurs and the values are short names, not numbers (``data.clean.label_detection``,
  ``data.profile``);
- ``structured``: most outputs parse as JSON;
- ``code``: most outputs are source code (``tools.data.code_detect``);
- ``reasoning``: most outputs are worked steps that end in a marked final answer (``#### 18``, ``\\boxed{18}``,
  "The answer is 18", "Answer: C"; ``tools.data.answers``);
- ``short_answer``: most outputs are a few words on one line ("25", "false", "C"), from an open set;
- ``text``: free prose.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tools.data.answers import MARKER_EXAMPLES, is_worked_solution
from tools.data.code_detect import detect_code
from tools.types import OUTPUT_KINDS, Example, TaskProfile

_WORD = re.compile(r"\S+")
# Language ID is run on at most this many rows per side, spread over the whole file.
LANGUAGE_SAMPLE = 2000


def is_short_answer(text: str, *, max_chars: int = 40, max_words: int = 6) -> bool:
    """A few words on one line: "25", "C", "false", "Paris", "x = 3, y = 2"."""
    s = text.strip()
    return bool(s) and len(s) <= max_chars and "\n" not in s and len(s.split()) <= max_words


@dataclass
class ProfileCounts:
    """What a pass over the rows gathers for the profile: counts only, plus a capped label counter."""

    rows: int = 0
    json_rows: int = 0
    code_rows: int = 0
    code_languages: Counter[str] = field(default_factory=Counter)
    short_rows: int = 0  # outputs short enough to be labels
    short_outputs: Counter[str] = field(default_factory=Counter)
    short_distinct_dropped: int = 0
    short_answer_rows: int = 0
    multi_turn_rows: int = 0
    test_rows: int = 0
    final_answer_rows: int = 0  # worked steps ending in a marked final answer
    answer_markers: Counter[str] = field(default_factory=Counter)
    input_languages: Counter[str] = field(default_factory=Counter)
    output_languages: Counter[str] = field(default_factory=Counter)

    def add(self, output: str, *, is_json: bool, code_language: str | None, label_max_chars: int,
            user_turns: int = 1, has_tests: bool = False, min_working_chars: int = 0) -> None:
        """Count one row (the language counters are filled separately, on a sample)."""
        self.rows += 1
        o = output.strip()
        if not is_json and not code_language and len(o) > label_max_chars:
            fa = is_worked_solution(o, min_working_chars=min_working_chars)
            if fa is not None:
                self.final_answer_rows += 1
                self.answer_markers[fa.marker] += 1
        if is_json:
            self.json_rows += 1
        if code_language:
            self.code_rows += 1
            self.code_languages[code_language] += 1
        if len(o) <= label_max_chars:
            self.short_rows += 1
            self.short_outputs[o] += 1
            if len(self.short_outputs) > 50_000:  # a free-text set must not grow the counter without bound
                self.short_distinct_dropped += len(self.short_outputs) - 10_000
                self.short_outputs = Counter(dict(self.short_outputs.most_common(10_000)))
        if not is_json and not code_language and is_short_answer(o):
            self.short_answer_rows += 1
        if user_turns > 1:
            self.multi_turn_rows += 1
        if has_tests:
            self.test_rows += 1

    def merge(self, other: ProfileCounts) -> None:
        for name in ("rows", "json_rows", "code_rows", "short_rows", "short_distinct_dropped", "short_answer_rows",
                     "multi_turn_rows", "test_rows", "final_answer_rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("code_languages", "short_outputs", "input_languages", "output_languages", "answer_markers"):
            getattr(self, name).update(getattr(other, name))


def outputs_are_labels(short_outputs: Counter[str], n_short: int, n: int, cfg: Any, *,
                       distinct_seen: int = 0) -> bool:
    """True when the outputs look like class labels: almost all short, and either few distinct values, or
    values that recur and read as names (``repeated_names``), at any number of classes.

    ``distinct_seen`` counts the values dropped when the counter was capped to save memory (a label set never
    reaches the cap)."""
    if n == 0 or n_short / n < cfg.label_min_short_fraction:
        return False
    distinct = len(short_outputs) + distinct_seen
    few = distinct <= cfg.label_max_distinct and distinct <= max(2, n // 2)
    return few or distinct / n <= cfg.label_max_distinct_fraction or (
        not distinct_seen and repeated_names(short_outputs, n, cfg))


_NUMERIC = re.compile(r"^[-+$]?\d[\d,]*(?:\.\d+)?%?$")


def is_label_name(value: str, max_words: int) -> bool:
    """A value that reads as a class name ("card_arrival", "positive", "Sci/Tech"), not a number or a phrase."""
    v = value.strip()
    return bool(v) and "\n" not in v and not _NUMERIC.match(v) and len(v.split()) <= max_words


def repeated_names(values: Counter[str], n: int, cfg: Any) -> bool:
    """A label set recognised by repetition and shape: every class has on average two rows or more, almost every
    row's value recurs (``label_min_repeated_share``), and almost every distinct value is a short name
    (``label_min_name_share``, ``label_max_words``). 150 intents x 10 rows qualifies; 300 distinct answers
    to 300 questions do not."""
    distinct = len(values)
    if n == 0 or distinct < 2 or distinct > n // 2:
        return False
    repeated = sum(c for c in values.values() if c >= 2)
    if repeated / n < cfg.label_min_repeated_share:
        return False
    names = sum(1 for v in values if is_label_name(v, cfg.label_max_words))
    return names / distinct >= cfg.label_min_name_share


def _majority(c: Counter[str], min_share: float = 0.5) -> str | None:
    total = sum(c.values())
    if not total:
        return None
    code, n = c.most_common(1)[0]
    return code if n / total >= min_share else None


def decide_profile(counts: ProfileCounts, cfg: Any, *, output_tokens: np.ndarray | None = None,
                   task_kind: str | None = None) -> TaskProfile:
    """The profile from the counts of one pass; ``task_kind`` (the user's) wins over the detected kind, and the
    profile then keeps the detected kind and its reason (``detected_kind``, ``reason``) when they differ."""
    n = counts.rows
    labels = outputs_are_labels(counts.short_outputs, counts.short_rows, n, cfg,
                                distinct_seen=counts.short_distinct_dropped)
    share = cfg.profile_min_share
    # Rows that carry executable tests, or outputs that are mostly programs, are a code task even when a few
    # programs repeat (a repeated solution is not a label set).
    code_task = n > 0 and (counts.test_rows / n >= 0.5 or counts.code_rows / n >= share)
    marker = counts.answer_markers.most_common(1)[0][0] if counts.answer_markers else None
    answer_share = counts.final_answer_rows / n if n else 0.0
    distinct = len(counts.short_outputs) + counts.short_distinct_dropped
    if labels and not code_task:
        kind = "label"
        reason = f"{counts.short_rows} of {n} outputs are short and take {distinct} distinct values that recur"
    elif n and counts.json_rows / n > share:
        kind, reason = "structured", f"{counts.json_rows} of {n} outputs parse as JSON"
    elif code_task:
        kind = "code"
        reason = (f"{counts.test_rows} of {n} rows carry tests" if counts.test_rows / n >= 0.5
                  else f"{counts.code_rows} of {n} outputs are source code")
    elif n and answer_share >= cfg.reasoning_min_share:
        kind = "reasoning"
        reason = (f"{counts.final_answer_rows} of {n} outputs are worked steps ending in a marked final answer "
                  f"('{MARKER_EXAMPLES.get(marker or '', marker)}')")
    elif n and counts.short_answer_rows / n >= cfg.short_answer_min_share:
        kind, reason = "short_answer", f"{counts.short_answer_rows} of {n} outputs are a few words on one line"
    else:
        kind, reason = "text", "the outputs are free prose" if n else "no rows"
    source = "detected"
    detected: str | None = None
    if task_kind:
        if task_kind not in OUTPUT_KINDS:
            from tools.errors import InputError

            raise InputError(f"unknown task kind {task_kind!r}", fix=f"use one of: {', '.join(OUTPUT_KINDS)}")
        detected = kind if kind != task_kind else None
        kind, source = task_kind, "user"
    p50 = p95 = 0
    if output_tokens is not None and len(output_tokens):
        p50, p95 = (int(round(float(x))) for x in np.percentile(output_tokens, [50, 95]))
    label_set = tuple(sorted(counts.short_outputs)) if kind == "label" else ()
    return TaskProfile(
        output_kind=kind,  # type: ignore[arg-type]
        rows=n,
        multi_turn=counts.multi_turn_rows > 0,
        code_languages=tuple(lang for lang, _ in counts.code_languages.most_common()) if counts.code_rows else (),
        input_language=_majority(counts.input_languages),
        output_language=(_majority(counts.output_languages) if kind in ("text", "short_answer", "reasoning")
                         else None),
        labels=label_set,
        output_tokens_p50=p50,
        output_tokens_p95=p95,
        has_tests=n > 0 and counts.test_rows / n >= 0.5,
        source=source,  # type: ignore[arg-type]
        short_answer_share=round(counts.short_answer_rows / n, 4) if n else 0.0,
        code_share=round(counts.code_rows / n, 4) if n else 0.0,
        answer_marker=marker if kind == "reasoning" or answer_share >= cfg.reasoning_min_share else None,
        final_answer_share=round(answer_share, 4),
        reason=reason,
        detected_kind=detected,
    )


def _sample_positions(n: int, k: int = LANGUAGE_SAMPLE) -> set[int]:
    if n <= k:
        return set(range(n))
    return {int(i) for i in np.linspace(0, n - 1, k)}


def detect_profile(examples: Iterable[Example], *, tokenizer: Any = None, task_kind: str | None = None,
                   config: Any = None) -> TaskProfile:
    """The task profile of ``examples``, read over all rows (language ID on an evenly spread sample).

    With a ``tokenizer`` (anything with ``__call__(list[str]) -> {"input_ids": ...}``) output lengths are in
    its tokens; otherwise in approximate tokens (characters / 4)."""
    from tools.data.config import CleanConfig
    from tools.data.filters import RowChecks

    cfg = config or CleanConfig()
    checks = RowChecks(cfg)
    rows = list(examples)
    counts = ProfileCounts()
    outputs: list[str] = []
    take = _sample_positions(len(rows))
    for i, ex in enumerate(rows):
        out = ex.output_text
        outputs.append(out)
        is_json = checks.is_json(out)
        lang = None if is_json else detect_code(out)
        counts.add(out, is_json=is_json, code_language=lang, label_max_chars=cfg.label_max_chars,
                   user_turns=sum(m.role == "user" for m in ex.messages), has_tests=bool(ex.meta.get("tests")),
                   min_working_chars=cfg.reasoning_min_working_chars)
        if i in take:
            text_in = ex.input_text
            if len(text_in) >= cfg.language_min_chars:
                code, prob = checks.language(text_in)
                if prob >= cfg.input_language_min_probability:
                    counts.input_languages[code] += 1
            if lang is None and not is_json and len(out) >= cfg.language_min_chars:
                code, prob = checks.language(out)
                if prob >= cfg.language_min_probability:
                    counts.output_languages[code] += 1
    if tokenizer is not None and outputs:
        lengths = np.array([len(ids) for ids in tokenizer(outputs, add_special_tokens=False)["input_ids"]])
    else:
        lengths = np.array([max(1, round(len(o) / 4)) for o in outputs]) if outputs else np.array([])
    return decide_profile(counts, cfg, output_tokens=lengths, task_kind=task_kind)
