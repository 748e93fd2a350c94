"""Metrics and confidence intervals: one implementation for prompt evaluation, model evaluation, A/B and forgetting.

Every metric scores one (prediction, reference) pair as a number in [0, 1]; ``score`` averages them and
attaches a 95% interval (Wilson for 0/1 scores, bootstrap otherwise) and the number of examples.
"""

from __future__ import annotations

import importlib
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
    """Percentile bootstrap interval of ``stat`` (default: the mean)."""
    vals = list(values)
    if not vals:
        return (0.0, 0.0)
    stat = stat or (lambda xs: sum(xs) / len(xs))
    rng = random.Random(seed)
    n = len(vals)
    boots = sorted(stat([vals[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    lo = boots[int(math.floor(alpha / 2 * n_boot))]
    hi = boots[min(n_boot - 1, int(math.ceil((1 - alpha / 2) * n_boot)) - 1)]
    return (lo, hi)


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


# ---------------------------------------------------------------------------------------------- scoring a set

METRICS = ("exact_match", "label_accuracy", "macro_f1", "contains", "regex", "json_valid", "json_schema",
           "json_equal")


@dataclass
class MetricResult:
    metric: str
    quality: float
    ci95: tuple[float, float]
    n: int
    per_item: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self, *, with_items: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"metric": self.metric, "quality": self.quality, "ci95": list(self.ci95),
                             "n": self.n, **self.extra}
        if with_items:
            d["per_item"] = self.per_item
        return d


def choose_metric(refs: Sequence[str]) -> str:
    """Label accuracy for label outputs, JSON equality for JSON outputs, exact match otherwise."""
    # JSON first: short JSON objects that repeat would otherwise pass for labels.
    if looks_like_json(refs):
        return "json_equal"
    if looks_like_labels(refs):
        return "label_accuracy"
    return "exact_match"


def load_user_metric(spec: str) -> Callable[[str, str], float]:
    """A user metric given as ``module:function``; the function takes (prediction, reference) -> float."""
    from tools.errors import InputError

    mod, _, fn = spec.partition(":")
    if not mod or not fn:
        raise InputError(f"metric {spec!r} is not of the form module:function", where="--metric")
    try:
        f = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as e:
        raise InputError(f"cannot load metric {spec!r}: {e}", where="--metric",
                         fix="make the module importable (on PYTHONPATH) and check the function name") from e
    if not callable(f):
        raise InputError(f"{spec!r} is not callable", where="--metric")
    return f  # type: ignore[no-any-return]


def per_item_scores(metric: str, preds: Sequence[str], refs: Sequence[str], *,
                    labels: Sequence[str] | None = None, schema: dict[str, Any] | None = None) -> list[float]:
    if metric in ("label_accuracy", "macro_f1"):
        return label_accuracy(preds, refs, labels)
    simple: dict[str, Callable[[str, str], float]] = {
        "exact_match": exact_match, "contains": contains, "regex": regex_match,
        "json_valid": json_valid, "json_equal": json_equal,
    }
    if metric in simple:
        return [simple[metric](p, r) for p, r in zip(preds, refs, strict=True)]
    if metric == "json_schema":
        return [json_schema_match(p, schema if schema is not None else r) for p, r in zip(preds, refs, strict=True)]
    fn = load_user_metric(metric)
    return [float(fn(p, r)) for p, r in zip(preds, refs, strict=True)]


def score(preds: Sequence[str], refs: Sequence[str], metric: str | None = None, *,
          labels: Sequence[str] | None = None, schema: dict[str, Any] | None = None,
          seed: int = 0) -> MetricResult:
    """Score predictions against references with a 95% CI. ``metric=None`` chooses from the references."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} references")
    metric = metric or choose_metric(refs)
    items = per_item_scores(metric, preds, refs, labels=labels, schema=schema)
    n = len(items)
    if metric == "macro_f1":
        f1 = macro_f1(preds, refs, labels)
        idx = list(range(n))
        ci = bootstrap_ci(idx, stat=lambda ix: macro_f1([preds[int(i)] for i in ix], [refs[int(i)] for i in ix],
                                                        labels), n_boot=500, seed=seed) if n else (0.0, 0.0)
        return MetricResult(metric, f1, ci, n, items, {"accuracy": sum(items) / n if n else 0.0})
    q = sum(items) / n if n else 0.0
    binary = all(x in (0.0, 1.0) for x in items)
    ci = wilson_ci(sum(items), n) if binary else bootstrap_ci(items, seed=seed)
    extra: dict[str, float] = {}
    if metric == "label_accuracy" and n:
        extra["macro_f1"] = macro_f1(preds, refs, labels)
    return MetricResult(metric, q, ci, n, items, extra)


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
