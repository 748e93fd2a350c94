"""Which rows a measurement scores, and how: read a test file (with per-row tests), decide its metric and
generation length ONCE from its task profile, score answers that way.

Every variant, subset and comparison on a file is scored the same way, so numbers can be paired: prompt
evaluation (Steps 1 and 2), the test-set evaluation, the A/B and the judge all call these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tools.errors import InputError, where
from tools.scoring import metrics as M
from tools.types import Example, ProgressCallback, TaskProfile

TEST_KEYS = ("tests", "test_list")  # per-row Python asserts: our own field, and MBPP's column


# ---------------------------------------------------------------------------------------------- reading

def tests_of(example: Example) -> list[str]:
    """The row's executable tests (``meta["tests"]``, or MBPP's ``test_list``), as strings of Python."""
    for key in TEST_KEYS:
        val = example.meta.get(key)
        if val:
            return [val] if isinstance(val, str) else [str(t) for t in val]
    return []


def _raw_tests(p: Path) -> dict[int, Any]:
    """Tests given as a top-level ``tests``/``test_list`` column of a JSONL file, by 1-based line number."""
    out: dict[int, Any] = {}
    if p.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        return out
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return out
    for lineno, raw in enumerate(lines, 1):
        if '"test' not in raw:
            continue
        try:
            d = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(d, dict):
            for key in TEST_KEYS:
                if d.get(key):
                    out[lineno] = d[key]
                    break
    return out


def load_test(path: str | Path) -> list[Example]:
    """Rows with an input and an expected output; per-row tests land in ``meta["tests"]`` (checked to parse)."""
    from tools.scoring import sandbox

    p = Path(path)
    if not p.exists():
        raise InputError("test file not found", where=str(p), fix="give the test.jsonl written by `tunewise data split`")
    from tools.data.formats import load_examples

    examples = load_examples(p)
    examples = [e for e in examples if e.output_text.strip() and e.input_text.strip()]
    if not examples:
        raise InputError("no examples with both an input and an expected output", where=str(p))
    raw = _raw_tests(p) if not all(tests_of(e) for e in examples) else {}
    for e in examples:
        line = e.meta.get("line")
        tests = tests_of(e) or (raw.get(line) if isinstance(line, int) else None)
        if tests:
            e.meta["tests"] = sandbox.check_tests(tests, where(p, line if isinstance(line, int) else None, "tests"))
    return examples


def _check_limit(limit: int | None, where_: str) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a whole number of at least 1, got {limit!r}", where=where_,
                         fix="leave it out to use every row")


def head(examples: list[Example], limit: int | None) -> list[Example]:
    """The first ``limit`` rows (all of them when ``limit`` is None). Always the first rows, so an evaluation,
    the side-by-side table and the A/B with the same limit score the same examples and can reuse predictions."""
    _check_limit(limit, "limit")
    return examples if limit is None else examples[:limit]


def spread(items: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``limit`` items evenly spaced through the list (the probe file is grouped by category, so every
    category keeps a share); all of them when ``limit`` is None or not smaller than the list."""
    _check_limit(limit, "probes limit")
    if limit is None or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


# ---------------------------------------------------------------------------------------------- deciding once

def profile_for(examples: Sequence[Example], *, task_kind: str | None = None,
                train: Sequence[Example] | None = None) -> TaskProfile:
    """The task profile of a set (``tools.data.profile.detect_profile``, the one detector); rows that carry
    tests make it a set with tests whatever the detector read from the outputs.

    What is known outranks the guess: the user's kind (``task_kind``: ``--task-kind``, the advisor's task answer)
    first; else, when the training data is given (``train``), a test file takes its kind (a 300-row test file
    of 150 intents cannot show that every intent recurs; its training data can). When the kind used differs
    from what the rows alone say, ``detected_kind`` and ``reason`` say so."""
    from tools.data.profile import detect_profile

    prof = detect_profile(list(examples), task_kind=task_kind)
    if task_kind is None and train:
        prof = _kind_from_training(prof, detect_profile(list(train)), examples)
    if prof.output_kind == "label" and not prof.labels:
        prof = replace(prof, labels=tuple(sorted({e.output_text.strip() for e in examples})))
    if not prof.has_tests and any(tests_of(e) for e in examples):
        prof = replace(prof, has_tests=True)
    return prof


def _kind_from_training(test: TaskProfile, train: TaskProfile, examples: Sequence[Example]) -> TaskProfile:
    """The test file's profile with its training data's kind (and label set, answer marker), keeping what the
    test rows alone say in ``detected_kind``/``reason`` when it differs."""
    if train.output_kind == test.output_kind and train.output_kind != "label":
        return test
    if train.output_kind == "label":
        known = {M.normalize_label(x) for x in train.labels}
        if any(M.normalize_label(e.output_text) not in known for e in examples):
            return test  # the test file has values the training labels never take: not the same label set
        labels = train.labels
    else:
        labels = ()
    differs = train.output_kind != test.output_kind
    why = (f"the training data is {train.output_kind} ({train.reason}); the test rows alone read as "
           f"{test.output_kind} ({test.reason})") if differs else test.reason
    return replace(test, output_kind=train.output_kind, labels=labels, source="training_data",
                   answer_marker=test.answer_marker or train.answer_marker,
                   detected_kind=test.output_kind if differs else None, reason=why)


def training_rows(run_id: str | None) -> list[Example] | None:
    """The training data of a logged run (its config's ``train`` file), so a test file can take its kind; None
    when the run or the file is gone."""
    if not run_id:
        return None
    from tools.data.formats import load_examples
    from tools.runlog import RunLog

    run = RunLog().get_run(run_id)
    path = ((run or {}).get("config") or {}).get("train")
    if not isinstance(path, str) or not Path(path).exists():
        return None
    try:
        return load_examples(path)
    except (InputError, OSError):  # unreadable now: the test rows decide alone
        return None


def row_inputs(examples: Sequence[Example], metric: str) -> dict[str, Any]:
    """What a metric needs from the rows beyond the references: final answers for ``final_answer_accuracy``
    (``meta["answer"]``), the prompts (code run before the reply) and MBPP's test setup code for ``pass_at_1``."""
    if metric == "final_answer_accuracy":
        return {"answers": [e.meta.get("answer") for e in examples]}
    if metric == "pass_at_1":
        return {"prompts": [e.input_text for e in examples],
                "setups": [str(e.meta.get("test_setup") or "") for e in examples]}
    return {}


@dataclass(frozen=True)
class Scoring:
    """How a test file is scored, decided once: the metric, its labels (label tasks), the generation length."""

    metric: str
    profile: TaskProfile
    labels: tuple[str, ...] | None
    max_new_tokens: int

    @property
    def share(self) -> bool:
        return M.is_share(self.metric)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "share": self.share, "output_kind": self.profile.output_kind,
                "max_new_tokens": self.max_new_tokens, "labels": len(self.labels) if self.labels else None}


def decide_scoring(examples: Sequence[Example], *, metric: str | None = None, max_new_tokens: int | None = None,
                   profile: TaskProfile | None = None) -> Scoring:
    """The metric (the user's, else from the profile) and generation length (the user's, else from the
    references' token lengths), for the WHOLE set, so every subset and every variant is scored alike."""
    prof = profile or profile_for(examples)
    name = metric or M.metric_for_profile(prof)
    if name == "pass_at_1" and not any(tests_of(e) for e in examples):
        raise InputError("pass_at_1 needs tests on the rows", where="--metric",
                         fix="give rows a 'tests' list (or MBPP's 'test_list'), or choose another metric")
    labels = None
    if name in ("label_accuracy", "macro_f1"):
        labels = tuple(prof.labels) if prof.labels else tuple(sorted({e.output_text.strip() for e in examples}))
    return Scoring(name, prof, labels, max_new_tokens or M.max_new_tokens_for(prof))


def score_texts(texts: Sequence[str], examples: Sequence[Example], scoring: Scoring, *, seed: int = 0,
                on_progress: ProgressCallback | None = None) -> M.MetricResult:
    """Score answers for these rows the way ``scoring`` says (tests run in the sandbox for ``pass_at_1``)."""
    tests = [tests_of(e) for e in examples] if scoring.metric == "pass_at_1" else None
    return M.score(list(texts), [e.output_text for e in examples], scoring.metric,
                   labels=list(scoring.labels) if scoring.labels else None, tests=tests, seed=seed,
                   on_progress=on_progress, **row_inputs(examples, scoring.metric))
