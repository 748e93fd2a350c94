"""Metrics and confidence intervals: one implementation for prompt evaluation, model evaluation, A/B and forgetting.

Every metric scores one (prediction, reference) pair as a number in [0, 1]; ``score`` averages them and
attaches a 95% interval (Wilson for 0/1 scores, bootstrap otherwise) and the number of examples.
"""

from __future__ import annotations

import json
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------------------------- normalising

_WS = re.compile(r"\s+")
_EDGE_PUNCT = "\"'`.,;:!?()[]{}<>*_ \t\n"


def normalize(text: str | None) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed, surrounding quotes/punctuation stripped."""
    if text is None:
        return ""
    t = unicodedata.normalize("NFKC", str(text)).casefold()
    t = _WS.sub(" ", t).strip()
    return t.strip(_EDGE_PUNCT)


def normalize_label(text: str | None) -> str:
    """Labels compare with spaces, hyphens and underscores treated alike (``card arrival`` = ``card_arrival``)."""
    return re.sub(r"[\s\-_]+", "_", normalize(text))


def looks_like_labels(outputs: Sequence[str], *, max_chars: int = 48, max_words: int = 4) -> bool:
    """Outputs are labels when they are short and few distinct values repeat across the set."""
    outs = [o.strip() for o in outputs if o is not None]
    if len(outs) < 2:
        return False
    if any(len(o) > max_chars or len(o.split()) > max_words for o in outs):
        return False
    distinct = len(set(map(normalize_label, outs)))
    return distinct <= max(2, min(500, len(outs) // 2))


def looks_like_json(outputs: Sequence[str]) -> bool:
    outs = [o for o in outputs if o and o.strip()]
    return bool(outs) and all(json_valid(o) == 1.0 and o.strip()[:1] in "{[" for o in outs)


# ---------------------------------------------------------------------------------------------- per-item metrics

def exact_match(pred: str, ref: str) -> float:
    return float(normalize(pred) == normalize(ref))


def contains(pred: str, ref: str) -> float:
    """The reference appears in the prediction (after normalisation)."""
    r = normalize(ref)
    return float(bool(r) and r in normalize(pred))


def regex_match(pred: str, pattern: str) -> float:
    """The prediction matches the reference, read as a regular expression (search, case-insensitive)."""
    try:
        return float(re.search(pattern, pred or "", flags=re.IGNORECASE | re.DOTALL) is not None)
    except re.error:
        return 0.0


def _first_json(text: str) -> Any:
    text = (text or "").strip()
    if text.startswith("```"):
        text = re.sub(r"^```[a-zA-Z]*\n?|```$", "", text).strip()
    return json.loads(text)


def json_valid(pred: str, ref: str | None = None) -> float:
    try:
        _first_json(pred)
        return 1.0
    except (ValueError, TypeError):
        return 0.0


def json_schema_match(pred: str, schema: dict[str, Any] | str) -> float:
    """The prediction is JSON that validates against the schema (the reference, or a fixed schema)."""
    import jsonschema

    try:
        obj = _first_json(pred)
        sch = json.loads(schema) if isinstance(schema, str) else schema
        jsonschema.validate(obj, sch)
        return 1.0
    except (ValueError, TypeError, jsonschema.ValidationError, jsonschema.SchemaError):
        return 0.0


def json_equal(pred: str, ref: str) -> float:
    """Both parse as JSON and are equal as values (key order and whitespace do not matter)."""
    try:
        return float(_first_json(pred) == _first_json(ref))
    except (ValueError, TypeError):
        return 0.0


def extract_label(pred: str, labels: Sequence[str]) -> str | None:
    """Map free model output to one of the labels: exact match first, then the longest label it mentions."""
    p = normalize_label(pred)
    by_norm = {normalize_label(lab): lab for lab in labels}
    if p in by_norm:
        return by_norm[p]
    first_line = normalize_label((pred or "").strip().splitlines()[0] if (pred or "").strip() else "")
    if first_line in by_norm:
        return by_norm[first_line]
    hits = [(len(n), lab) for n, lab in by_norm.items() if n and n in p]
    return max(hits)[1] if hits else None


def label_accuracy(preds: Sequence[str], refs: Sequence[str], labels: Sequence[str] | None = None) -> list[float]:
    labels = list(labels) if labels else sorted(set(refs))
    # Compare normalised forms: the label list may spell a label differently from a reference row.
    return [float(normalize_label(extract_label(p, labels)) == normalize_label(r)
                  or normalize_label(p) == normalize_label(r))
            for p, r in zip(preds, refs, strict=True)]


def macro_f1(preds: Sequence[str], refs: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-label F1, as sklearn's ``average="macro"``: over every label that occurs in the
    references or among the (mapped) predictions. Predictions that map to no label only count as misses."""
    labels = list(labels) if labels else sorted(set(refs))
    gold = [normalize_label(r) for r in refs]
    mapped = [normalize_label(m) if (m := extract_label(p, labels)) is not None else None for p in preds]
    f1s = []
    for lab in sorted(set(gold) | {m for m in mapped if m is not None}):
        tp = sum(1 for m, r in zip(mapped, gold, strict=True) if m == lab and r == lab)
        fp = sum(1 for m, r in zip(mapped, gold, strict=True) if m == lab and r != lab)
        fn = sum(1 for m, r in zip(mapped, gold, strict=True) if m != lab and r == lab)
        denom = 2 * tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


# ---------------------------------------------------------------------------------------------- intervals

def wilson_ci(k: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (well-behaved at 0 and n, unlike the normal one)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # At k = 0 or k = n the bound is exactly 0 or 1; rounding must not leave 0.9999999999999999.
    return (0.0 if k <= 0 else lo, 1.0 if k >= n else hi)


def bootstrap_ci(values: Sequence[float], *, stat: Callable[[Sequence[float]], float] | None = None,
                 n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` (default: the mean, resampled with numpy in one go)."""
    vals = list(values)
    if not vals:
        return (0.0, 0.0)
    n = len(vals)
    lo_i = int(math.floor(alpha / 2 * n_boot))
    hi_i = min(n_boot - 1, int(math.ceil((1 - alpha / 2) * n_boot)) - 1)
    if stat is None:
        import numpy as np

        arr = np.asarray(vals, dtype=np.float64)
        rng_np = np.random.default_rng(seed)
        # Resample in blocks so 10,000 rows x 2,000 resamples never needs a 160 MB index matrix.
        block = max(1, 2_000_000 // n)
        means = np.concatenate([arr[rng_np.integers(0, n, size=(min(block, n_boot - b), n))].mean(axis=1)
                                for b in range(0, n_boot, block)])
        means.sort()
        return (float(means[lo_i]), float(means[hi_i]))
    rng = random.Random(seed)
    boots = sorted(stat([vals[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    return (boots[lo_i], boots[hi_i])


def paired_bootstrap_diff(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                          alpha: float = 0.05) -> tuple[float, tuple[float, float]]:
    """Mean of (b - a) over paired items and its percentile bootstrap interval."""
    if len(a) != len(b):
        raise ValueError("paired comparison needs the same examples on both sides")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    mean = sum(diffs) / len(diffs) if diffs else 0.0
    return mean, bootstrap_ci(diffs, n_boot=n_boot, seed=seed, alpha=alpha)


def mcnemar(a_correct: Sequence[bool | float], b_correct: Sequence[bool | float]) -> dict[str, float]:
    """McNemar's test on paired right/wrong outcomes.

    ``b01``: A wrong, B right; ``b10``: A right, B wrong. With fewer than 25 discordant pairs the exact
    two-sided binomial p-value is used; otherwise the chi-square statistic with continuity correction.
    """
    b01 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if not x and y)
    b10 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if x and not y)
    n = b01 + b10
    if n == 0:
        return {"b01": 0, "b10": 0, "statistic": 0.0, "p_value": 1.0, "exact": True}
    if n < 25:
        k = min(b01, b10)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        return {"b01": b01, "b10": b10, "statistic": float(k), "p_value": min(1.0, 2 * tail), "exact": True}
    stat = (abs(b01 - b10) - 1) ** 2 / n
    p = math.erfc(math.sqrt(stat / 2))  # survival function of chi-square with 1 degree of freedom
    return {"b01": b01, "b10": b10, "statistic": stat, "p_value": p, "exact": False}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]), as numpy's default."""
    xs = sorted(values)
    if not xs:
        return 0.0
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ---------------------------------------------------------------------------------------------- reference metrics
# Free text is scored against its reference by overlap, not identity: chrF (character n-grams, sacrebleu),
# ROUGE-L (longest common subsequence of words, rouge-score) and SQuAD's token F1. Each gives a number in
# [0, 1] per row; the set's mean carries a bootstrap interval like every other non-0/1 metric.

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)


def _squad_tokens(text: str | None) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces; then words."""
    t = unicodedata.normalize("NFKC", str(text or "")).casefold()
    t = "".join(ch if not unicodedata.category(ch).startswith("P") else " " for ch in t)
    return _ARTICLES.sub(" ", t).split()


def token_f1(pred: str, ref: str) -> float:
    """SQuAD-style token F1: harmonic mean of word precision and recall (bag of words, articles dropped)."""
    p, r = _squad_tokens(pred), _squad_tokens(ref)
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


_CHRF: Any = None
_ROUGE: Any = None


def chrf(pred: str, ref: str) -> float:
    """chrF (sacrebleu's defaults: character 6-grams, beta 2) of one reply against its reference, in [0, 1]."""
    global _CHRF
    if _CHRF is None:
        from sacrebleu.metrics import CHRF

        _CHRF = CHRF()
    return float(_CHRF.sentence_score(pred or "", [ref or ""]).score) / 100.0


class _WordTokenizer:
    """Unicode words, case-folded: rouge-score's own tokenizer keeps only [a-z0-9] and empties other scripts."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(unicodedata.normalize("NFKC", text or "").casefold())


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F-measure (longest common word subsequence) from rouge-score, in [0, 1]."""
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WordTokenizer())
    return float(_ROUGE.score(ref or "", pred or "")["rougeL"].fmeasure)


# ---------------------------------------------------------------------------------------------- code

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(reply: str | None, language: str = "python") -> str:
    """The program in a reply: its first fenced block in ``language`` (or an unlabelled one), else the reply.

    Models wrap code in prose ("Here is the function: ```python ...``` It works by..."); only the block runs.
    """
    text = reply or ""
    blocks = _FENCE.findall(text)
    for lang, body in blocks:
        if lang.lower() in (language, "py", "python3") and body.strip():
            return str(body)
    for lang, body in blocks:
        if not lang and body.strip():
            return str(body)
    return text


@dataclass(frozen=True)
class Program:
    """What runs for one row: ``code`` (the prompt's code, then the reply's), ``context`` (the prompt's code run
    before the reply, "" when the prompt holds none) and ``bare_body`` (the reply continues the prompt's last
    function, so the two are joined as HumanEval's harness joins prompt + completion)."""

    code: str
    context: str = ""
    bare_body: bool = False


_DEFINITIONS = ("Import", "ImportFrom", "FunctionDef", "AsyncFunctionDef", "ClassDef")


def prompt_code(prompt: str | None) -> tuple[str, str]:
    """The code a row's prompt holds, as ``(definitions, source)``: its imports and top-level definitions
    (functions, classes, constants), and the whole code it came from (the prompt itself when it is Python, as
    HumanEval's are, else its fenced Python blocks). ``("", "")`` for a prose prompt (MBPP's "Write a function
    to ...")."""
    import ast

    text = prompt or ""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    for source in blocks or [text]:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        if not any(type(node).__name__ in _DEFINITIONS for node in tree.body):
            continue
        lines = source.splitlines()
        keep = []
        for node in tree.body:
            if type(node).__name__ in (*_DEFINITIONS, "Assign", "AnnAssign"):
                first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
                keep.append("\n".join(lines[first - 1:node.end_lineno]))
        return "\n".join(keep) + "\n", source
    return "", ""


def program_for(reply: str | None, prompt: str | None = "") -> Program:
    """The program one row runs, as HumanEval's harness runs a completion: the prompt's imports and definitions
    first, then the reply's code block; or the prompt + the reply when the reply is a bare function body (its
    first line indented, or it only parses after the prompt). A prose prompt adds nothing."""
    import ast

    code = extract_code(reply)
    definitions, source = prompt_code(prompt)
    if not definitions:
        return Program(code)
    first = next((ln for ln in code.splitlines() if ln.strip()), "")
    bare = first[:1] in (" ", "\t")
    if not bare:
        try:
            ast.parse(code)
        except (SyntaxError, ValueError):
            joined = source.rstrip("\n") + "\n" + code
            try:
                ast.parse(joined)
                bare = True
            except (SyntaxError, ValueError):
                pass
    if bare:
        return Program(source.rstrip("\n") + "\n" + code, definitions, True)
    return Program(definitions + "\n" + code, definitions)


def python_syntax(pred: str, ref: str | None = None) -> float:
    """1 when the reply's code parses as Python (``ast.parse``; nothing is run), else 0."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences warn, they still parse
            ast.parse(extract_code(pred))
        return 1.0
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return 0.0


# ---------------------------------------------------------------------------------------------- scoring a set

METRICS = ("exact_match", "label_accuracy", "macro_f1", "contains", "regex", "json_valid", "json_schema",
           "json_equal", "chrf", "rouge_l", "token_f1", "python_syntax", "pass_at_1", "final_answer_accuracy")
REFERENCE_METRICS = ("chrf", "rouge_l", "token_f1")
# Metrics whose value is the share of acceptable answers (each row right or wrong): the quality bar and the
# ROI rule speak in these units. A reference metric is a similarity, not a share (issue 14, item 5).
SHARE_METRICS = ("exact_match", "label_accuracy", "contains", "regex", "json_valid", "json_schema", "json_equal",
                 "python_syntax", "pass_at_1", "final_answer_accuracy", "judge_pass_rate", "human_votes")
# What else is reported beside the chosen metric, so a free-text result shows all three overlaps.
COMPANIONS: dict[str, tuple[str, ...]] = {
    "chrf": ("rouge_l", "token_f1"), "pass_at_1": ("python_syntax",), "exact_match": ("token_f1",),
}


def is_share(metric: str) -> bool:
    """Does this metric's value mean "share of acceptable answers" (comparable with a quality bar)?"""
    return metric in SHARE_METRICS


@dataclass
class MetricResult:
    metric: str
    quality: float
    ci95: tuple[float, float]
    n: int
    per_item: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def share(self) -> bool:
        """The quality is a share of acceptable answers (see ``SHARE_METRICS``)."""
        return is_share(self.metric)

    def to_dict(self, *, with_items: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"metric": self.metric, "quality": self.quality, "ci95": list(self.ci95),
                             "n": self.n, **self.extra, "share": self.share}
        if with_items:
            d["per_item"] = self.per_item
        return d


def choose_metric(refs: Sequence[str]) -> str:
    """From the references alone: JSON equality, label accuracy, exact match for short answers, chrF otherwise.

    Prefer ``metric_for_profile``: a profile is decided once for the whole set, this guess sees only ``refs``.
    """
    # JSON first: short JSON objects that repeat would otherwise pass for labels.
    if looks_like_json(refs):
        return "json_equal"
    if looks_like_labels(refs):
        return "label_accuracy"
    if refs and all(len(str(r).split()) <= 3 for r in refs):
        return "exact_match"  # short answers ("25", "false", "Paris")
    return "chrf"  # free text: never exact match


def metric_for_profile(profile: Any, *, has_tests: bool | None = None) -> str:
    """The metric a task's profile calls for, decided once for the whole set (``tools.types.TaskProfile``).

    label -> label_accuracy; structured -> json_equal; code with tests -> pass_at_1 (executed), code without
    tests -> chrf; reasoning -> final_answer_accuracy (strict, flexible beside it); short_answer -> exact_match
    (token F1 beside it); text -> chrf (ROUGE-L, token F1 beside).
    """
    kind = getattr(profile, "output_kind", None)
    tests = profile.has_tests if has_tests is None else has_tests
    if kind == "label":
        return "label_accuracy"
    if kind == "structured":
        return "json_equal"
    if kind == "code":
        return "pass_at_1" if tests else "chrf"
    if kind == "reasoning":
        return "final_answer_accuracy"
    if kind == "short_answer":
        return "exact_match"
    return "chrf"


def max_new_tokens_for(profile: Any, *, floor: int = 16, ceiling: int = 512) -> int:
    """Generation length from the references: 1.5x their 95th-percentile length plus 16, within bounds.

    A fixed 32 cuts off every program and paragraph; a label needs far fewer.
    """
    p95 = int(getattr(profile, "output_tokens_p95", 0) or 0)
    if p95 <= 0:
        return 32
    return max(floor, min(ceiling, int(math.ceil(p95 * 1.5)) + 16))


def load_user_metric(spec: str) -> Callable[[str, str], float]:
    """A user metric given as ``module:function``, checked by importing it in a sandboxed child process.

    The returned callable scores in the sandbox too (one child per call); ``per_item_scores`` batches the
    whole set into one child. Nothing of the module ever runs in this process (issue 18, item 6).
    """
    from tools.scoring import sandbox

    sandbox.check_user_metric(spec)

    def run(pred: str, ref: str) -> float:
        return sandbox.run_user_metric(spec, [pred], [ref])[0]

    return run


def per_item_scores(metric: str, preds: Sequence[str], refs: Sequence[str], *,
                    labels: Sequence[str] | None = None, schema: dict[str, Any] | None = None,
                    tests: Sequence[Sequence[str]] | None = None, answers: Sequence[str | None] | None = None,
                    prompts: Sequence[str] | None = None, setups: Sequence[str] | None = None,
                    on_progress: Any = None) -> list[float]:
    """One score per row. ``answers``: each row's own final answer (``meta["answer"]``) for
    ``final_answer_accuracy`` (else read from the reference); ``prompts`` and ``setups``: each row's prompt (its
    code is run before the reply, ``program_for``) and test setup code for ``pass_at_1``."""
    if metric in ("label_accuracy", "macro_f1"):
        return label_accuracy(preds, refs, labels)
    if metric == "final_answer_accuracy":
        return [s for s, _ in final_answer_scores(preds, refs, answers)]
    simple: dict[str, Callable[[str, str], float]] = {
        "exact_match": exact_match, "contains": contains, "regex": regex_match,
        "json_valid": json_valid, "json_equal": json_equal, "chrf": chrf, "rouge_l": rouge_l,
        "token_f1": token_f1, "python_syntax": python_syntax,
    }
    if metric in simple:
        return [simple[metric](p, r) for p, r in zip(preds, refs, strict=True)]
    if metric == "json_schema":
        return [json_schema_match(p, schema if schema is not None else r) for p, r in zip(preds, refs, strict=True)]
    if metric == "pass_at_1":
        from tools.scoring import sandbox

        if tests is None or len(tests) != len(preds):
            from tools.errors import InputError

            raise InputError("pass_at_1 needs tests on every row", where="--metric",
                             fix="give a test file whose rows carry 'tests' (or MBPP's 'test_list')")
        programs = [program_for(p, prompts[i] if prompts else "") for i, p in enumerate(preds)]
        outcomes = sandbox.run_tests_many([prog.code for prog in programs], tests, setups=setups,
                                          on_progress=on_progress)
        return [1.0 if o.passed else 0.0 for o in outcomes]
    if ":" not in metric:
        from tools.errors import InputError

        raise InputError(f"unknown metric {metric!r}", where="--metric",
                         fix=f"use one of {', '.join(METRICS)} or module:function")
    from tools.scoring import sandbox

    return sandbox.run_user_metric(metric, list(preds), list(refs))


def final_answer_scores(preds: Sequence[str], refs: Sequence[str],
                        answers: Sequence[str | None] | None = None) -> list[tuple[float, float]]:
    """(strict, flexible) per row, as lm-eval-harness reports GSM8K: strict reads what the reference's own
    marker marks in the reply, flexible the reply's last number (or option letter); see ``tools.data.answers``."""
    from tools.data.answers import score_final_answer

    return [score_final_answer(p, r, answers[i] if answers else None)
            for i, (p, r) in enumerate(zip(preds, refs, strict=True))]


def score(preds: Sequence[str], refs: Sequence[str], metric: str | None = None, *,
          labels: Sequence[str] | None = None, schema: dict[str, Any] | None = None,
          tests: Sequence[Sequence[str]] | None = None, answers: Sequence[str | None] | None = None,
          prompts: Sequence[str] | None = None, setups: Sequence[str] | None = None, seed: int = 0,
          companions: bool = True, on_progress: Any = None) -> MetricResult:
    """Score predictions against references with a 95% CI. ``metric=None`` guesses from the references
    (prefer deciding it once with ``metric_for_profile``). ``tests``: per-row Python asserts (``pass_at_1``),
    run after the prompt's own code when the row's prompt holds some (``prompts``; ``code_context_rows`` says on
    how many rows). ``answers``: per-row final answers (``final_answer_accuracy``, whose quality is the strict
    reading; ``final_answer_flexible`` with its interval beside it).
    With ``companions``, free text also reports ROUGE-L and token F1 beside chrF (``extra``), code its syntax
    validity beside pass@1, each with its own interval as ``<name>_ci95``."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} references")
    metric = metric or choose_metric(refs)
    items = per_item_scores(metric, preds, refs, labels=labels, schema=schema, tests=tests, answers=answers,
                            prompts=prompts, setups=setups, on_progress=on_progress)
    n = len(items)
    if metric == "macro_f1":
        f1 = macro_f1(preds, refs, labels)
        idx = list(range(n))
        ci = bootstrap_ci(idx, stat=lambda ix: macro_f1([preds[int(i)] for i in ix], [refs[int(i)] for i in ix],
                                                        labels), n_boot=500, seed=seed) if n else (0.0, 0.0)
        return MetricResult(metric, f1, ci, n, items, {"accuracy": sum(items) / n if n else 0.0})
    q, ci = mean_ci(items, seed=seed)
    extra: dict[str, Any] = {}
    if metric == "label_accuracy" and n:
        extra["macro_f1"] = macro_f1(preds, refs, labels)
    if metric == "final_answer_accuracy" and n:
        flexible = [f for _, f in final_answer_scores(preds, refs, answers)]
        f_q, f_ci = mean_ci(flexible, seed=seed)
        extra.update({"final_answer_strict": q, "final_answer_strict_ci95": list(ci),
                      "final_answer_flexible": f_q, "final_answer_flexible_ci95": list(f_ci)})
    if metric == "pass_at_1" and prompts:
        extra["code_context_rows"] = sum(bool(program_for(p, pr).context) for p, pr in
                                         zip(preds, prompts, strict=True))
    if companions and n:
        for other in COMPANIONS.get(metric, ()):
            o_items = per_item_scores(other, preds, refs)
            o_q, o_ci = mean_ci(o_items, seed=seed)
            extra[other] = o_q
            extra[f"{other}_ci95"] = list(o_ci)
    return MetricResult(metric, q, ci, n, items, extra)


def mean_ci(items: Sequence[float], *, seed: int = 0, alpha: float = 0.05) -> tuple[float, tuple[float, float]]:
    """Mean of per-row scores with its 1 - ``alpha`` interval (95% by default): Wilson for 0/1 scores,
    bootstrap otherwise."""
    n = len(items)
    q = sum(items) / n if n else 0.0
    binary = all(x in (0.0, 1.0) for x in items)
    if alpha == 0.05:
        return q, (wilson_ci(sum(items), n) if binary else bootstrap_ci(items, seed=seed))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - alpha / 2)
    return q, (wilson_ci(sum(items), n, z=z) if binary else bootstrap_ci(items, seed=seed, alpha=alpha))


@dataclass
class PairedDifference:
    """B minus A on the same rows with the same metric: the mean difference, its 95% CI, and McNemar's test
    when both sides are 0/1 per row."""

    metric: str
    n: int
    a_quality: float
    b_quality: float
    diff: float
    diff_ci95: tuple[float, float]
    mcnemar: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"metric": self.metric, "n": self.n, "a_quality": self.a_quality,
                             "b_quality": self.b_quality, "diff": self.diff, "diff_ci95": list(self.diff_ci95)}
        if self.mcnemar is not None:
            d["mcnemar"] = self.mcnemar
        return d


def paired_difference(a_items: Sequence[float], b_items: Sequence[float], *, metric: str = "",
                      seed: int = 0) -> PairedDifference:
    """Compare two systems scored on the SAME rows with the SAME metric: mean(b - a) with a paired bootstrap
    CI (and McNemar's test for 0/1 scores). Raises ``ValueError`` when the rows do not pair up."""
    diff, ci = paired_bootstrap_diff(a_items, b_items, seed=seed)
    n = len(a_items)
    mc = (mcnemar([x >= 1 for x in a_items], [x >= 1 for x in b_items])
          if all(x in (0.0, 1.0) for x in [*a_items, *b_items]) else None)
    return PairedDifference(metric, n, sum(a_items) / n if n else 0.0, sum(b_items) / n if n else 0.0,
                            diff, ci, mc)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa of two raters over the same items: (observed - chance agreement) / (1 - chance)."""
    if len(a) != len(b):
        raise ValueError("kappa needs the same items rated by both")
    n = len(a)
    if n == 0:
        return 0.0
    po = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else 0.0  # both raters constant and equal: perfect agreement by convention
    return (po - pe) / (1 - pe)


def label_distribution(refs: Sequence[str]) -> dict[str, int]:
    return dict(Counter(refs).most_common())


# ---------------------------------------------------------------------------------------------- evaluation additions
# Added for model evaluation (issue 7): probe checks, and the two-proportion test of the online A/B router.

_WORD_NUMBERS = {w: i for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}
_WORD_NUMBERS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                      "ninety": 90, "hundred": 100, "thousand": 1000})
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+|\b(?:" + "|".join(_WORD_NUMBERS) + r")\b",
                     re.IGNORECASE)


def numbers_in(text: str | None) -> list[float]:
    """Every number in the text, in order: digits (``1,000`` reads as 1000) and single number words."""
    out = []
    for m in _NUMBER.findall(text or ""):
        word = _WORD_NUMBERS.get(m.lower())
        if word is not None:
            out.append(float(word))
            continue
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            continue
    return out


def number_match(pred: str, ref: str, *, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> float:
    """The first or the last number in the prediction equals the reference number (within a tiny tolerance).

    Models either lead with the answer ("56.") or end with it ("7 x 8 = 56"); both count.
    """
    want = numbers_in(str(ref))
    got = numbers_in(pred)
    if not want or not got:
        return 0.0
    return float(any(math.isclose(g, want[0], rel_tol=rel_tol, abs_tol=abs_tol) for g in (got[0], got[-1])))


def any_of(pred: str, refs: Sequence[str]) -> float:
    """The prediction contains at least one of the accepted answers (normalised; see ``contains``)."""
    return float(any(contains(pred, r) for r in refs))


def two_proportion_test(k_a: int, n_a: int, k_b: int, n_b: int) -> dict[str, float]:
    """Two-sided z-test for a difference between two success rates (pooled standard error).

    Used for unpaired traffic (each request goes to one variant only); paired examples use ``mcnemar``.
    """
    if n_a <= 0 or n_b <= 0:
        return {"diff": 0.0, "z": 0.0, "p_value": 1.0}
    pa, pb = k_a / n_a, k_b / n_b
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return {"diff": pb - pa, "z": 0.0, "p_value": 1.0}
    z = (pb - pa) / se
    return {"diff": pb - pa, "z": z, "p_value": math.erfc(abs(z) / math.sqrt(2))}
