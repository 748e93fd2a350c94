"""A learning curve on the user's own data: how test quality grows with the number of training examples.

The same short-run recipe trains on nested subsets of the cleaned training split (25%, 50%, 100% by default:
each subset holds the smaller ones), every run is scored on the same test rows, and a power law in the number
of examples is fitted to the error rate::

    error(n) = a * n ** -b          (quality = 1 - error)

The uncertainty comes from a paired bootstrap over the test rows (each resample scores every subset on the
same rows) and the fit is redone on each resample: the predictions at 2x, 5x and 10x the data and the number
of examples needed to reach the bar carry a 90% band. The curve refuses to extrapolate when it cannot support
it (``lc.measured``): too few points, too flat (the largest subset gains under ``min_gain`` on the smallest),
or too noisy (the band at 2x is wider than ``max_ci_width``). Predictions stop at ``max_extrapolation`` x
the largest subset; beyond it the curve says "not within 10x", not a number.

Each subset trains for the same number of passes over its rows (``epochs``, from the short run's step
budget when not given), so the cost grows with the subset: 25% + 50% + 100% is 1.75 short runs, and the
result says what it cost.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import knowledge
from tools.types import ProgressCallback, ProgressEvent, emit


def _rule() -> dict[str, Any]:
    import knowledge

    return dict(knowledge.rule("lc.measured").raw)


# ---------------------------------------------------------------------------------------------- the fit

@dataclass
class CurveFit:
    """A fitted power law and what it can say (see the module docstring)."""

    can_extrapolate: bool
    why_not: str | None  # "too few points" | "too flat" | "too noisy" | None
    a: float | None = None
    b: float | None = None  # the exponent: error shrinks as n ** -b
    predictions: list[dict[str, Any]] = field(default_factory=list)  # {factor, n, quality, band: [lo, hi]}
    n_to_bar: int | None = None  # examples at which the fitted curve reaches the bar (within max_extrapolation)
    n_to_bar_band: list[int | None] = field(default_factory=list)  # 90% band; None above: not reached in 10x
    reaches_bar_share: float | None = None  # share of bootstrap fits that reach the bar within the limit
    bootstrap: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fit(ns: Sequence[float], qs: Sequence[float], floor: float) -> tuple[float, float] | None:
    """Least squares of log(error) on log(n): returns (a, b) or None when it is degenerate."""
    xs = [math.log(n) for n in ns]
    ys = [math.log(max(1.0 - q, floor)) for q in qs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return math.exp(my - slope * mx), -slope


def _quality(a: float, b: float, n: float) -> float:
    return max(0.0, min(1.0, 1.0 - a * n ** -b))


def _n_for(a: float, b: float, bar: float) -> float:
    """Examples at which 1 - a * n ** -b reaches ``bar`` (inf when the curve does not improve)."""
    if b <= 0 or bar >= 1:
        return math.inf
    return (a / (1.0 - bar)) ** (1.0 / b)


def _pctl(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fit_curve(points: Sequence[tuple[int, Sequence[float]]], *, bar: float | None = None,
              factors: Sequence[float] = (2, 5, 10), seed: int = 0, rule: dict[str, Any] | None = None) -> CurveFit:
    """Fit ``error = a * n ** -b`` to ``points`` = [(n_examples, per-row scores on the SAME test rows), ...].

    Pure: no model, no I/O. The bootstrap resamples test rows (paired across points).
    """
    r = rule or _rule()
    pts = sorted((int(n), list(map(float, s))) for n, s in points if s)
    ns = [n for n, _ in pts]
    if len(set(ns)) < int(r["min_points"]):
        return CurveFit(False, "too few points")
    rows = min(len(s) for _, s in pts)
    pts = [(n, s[:rows]) for n, s in pts]
    qs = [sum(s) / rows for _, s in pts]
    floor = 0.5 / rows  # a perfect score is "under one error in this many rows", not log(0)
    if qs[-1] - qs[0] < float(r["min_gain"]):
        return CurveFit(False, "too flat")
    point = _fit(ns, qs, floor)
    if point is None:
        return CurveFit(False, "too few points")
    a, b = point
    rng = random.Random(seed)
    boots: list[tuple[float, float]] = []
    for _ in range(int(r["bootstrap"])):
        idx = [rng.randrange(rows) for _ in range(rows)]
        fit = _fit(ns, [sum(s[i] for i in idx) / rows for _, s in pts], floor)
        if fit is not None:
            boots.append(fit)
    n_max, limit = ns[-1], float(r["max_extrapolation"])
    preds: list[dict[str, Any]] = []
    for f in factors:
        if f > limit:
            continue
        n = n_max * f
        qb = [_quality(ba, bb, n) for ba, bb in boots]
        preds.append({"factor": f, "n": int(round(n)), "quality": round(_quality(a, b, n), 4),
                      "band": [round(_pctl(qb, 0.05), 4), round(_pctl(qb, 0.95), 4)]})
    two = next((p for p in preds if p["factor"] == min(factors)), None)
    out = CurveFit(True, None, round(a, 6), round(b, 6), preds, bootstrap=len(boots))
    if two is not None and two["band"][1] - two["band"][0] > float(r["max_ci_width"]):
        out.can_extrapolate, out.why_not = False, "too noisy"
    if bar is not None and boots:
        within = n_max * limit
        need = _n_for(a, b, bar)
        out.n_to_bar = int(math.ceil(need)) if need <= within else None
        nb = [_n_for(ba, bb, bar) for ba, bb in boots]
        out.reaches_bar_share = round(sum(1 for x in nb if x <= within) / len(nb), 3)
        lo, hi = _pctl(nb, 0.05), _pctl(nb, 0.95)
        out.n_to_bar_band = [int(math.ceil(lo)) if lo <= within else None,
                             int(math.ceil(hi)) if hi <= within else None]
    return out


# ---------------------------------------------------------------------------------------------- the tool

@dataclass
class CurveConfig:
    """One learning curve: subsets of ``train``, each trained with the same recipe, scored on ``test``."""

    train: str = ""  # the cleaned training split (JSONL chat or any format tools.data reads)
    test: str = ""  # the test rows every subset is scored on
    val: str | None = None  # validation rows for every run (None: each run holds out 10% of its subset)
    model: str = "smollm2-135m-instruct"
    fractions: tuple[float, ...] | None = None  # default from lc.measured (0.25, 0.5, 1.0)
    bar: float | None = None  # the quality bar: the curve says how many examples reach it
    epochs: float | None = None  # passes over each subset; None: from max_steps at 100% (the short run's budget)
    max_steps: int | None = 20  # the 100% subset's steps when epochs is None (the CPU short run's 20)
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float | None = None
    method: str = "lora"
    test_rows: int | None = None  # score the first N test rows (None: all)
    max_new_tokens: int | None = None  # None: from the references' lengths, as evaluation decides it
    seed: int = 0
    factors: tuple[float, ...] = (2, 5, 10)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CurvePoint:
    n: int
    fraction: float
    steps: int
    quality: float
    ci95: list[float]
    run_id: str | None
    train_seconds: float
    eval_seconds: float
    per_item: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, *, with_items: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_items:
            d.pop("per_item")
        return d


@dataclass
class LearningCurveResult:
    points: list[CurvePoint]
    metric: str
    test_rows: int
    fit: CurveFit
    bar: float | None
    epochs: float
    cost_seconds: float
    config: dict[str, Any]
    rule_ids: list[str] = field(default_factory=lambda: ["lc.measured"])

    @property
    def can_extrapolate(self) -> bool:
        return self.fit.can_extrapolate

    def message(self) -> str:
        """One sentence in the user's terms (what the advisor cites)."""
        last = self.points[-1]
        at = (f"At {last.n:,} examples the model reaches {last.quality:.0%} "
              f"[{last.ci95[0]:.0%}–{last.ci95[1]:.0%}] on {self.test_rows} test rows")
        cost = f" (the curve cost {self.cost_seconds / 60:.1f} min)"
        if self.bar is not None and last.quality >= self.bar:
            return f"{at}, already at the {self.bar:.0%} bar{cost}."
        if not self.fit.can_extrapolate:
            return f"{at}; the curve is {self.fit.why_not} to extrapolate{cost}."
        if self.bar is not None and self.fit.n_to_bar:
            return f"{at}; the curve reaches the {self.bar:.0%} bar at about {self.fit.n_to_bar:,} examples{cost}."
        far = self.fit.predictions[-1] if self.fit.predictions else None
        tail = f"; at {far['factor']:g}x the data it predicts {far['quality']:.0%}" if far else ""
        return f"{at}{tail}: more data of this kind will not reach the bar{cost}."

    def to_dict(self) -> dict[str, Any]:
        return {"points": [p.to_dict() for p in self.points], "metric": self.metric, "test_rows": self.test_rows,
                "fit": self.fit.to_dict(), "can_extrapolate": self.fit.can_extrapolate, "why_not": self.fit.why_not,
                "predictions": self.fit.predictions, "n_to_bar": self.fit.n_to_bar,
                "n_to_bar_band": self.fit.n_to_bar_band, "bar": self.bar, "epochs": self.epochs,
                "cost_seconds": round(self.cost_seconds, 1), "message": self.message(), "config": self.config,
                "rule_ids": self.rule_ids}


def _subsets(n_rows: int, fractions: Sequence[float]) -> list[tuple[float, int]]:
    out = []
    for f in sorted(set(fractions)):
        if not 0 < f <= 1:
            from tools.errors import InputError

            raise InputError(f"fraction {f} is outside (0, 1]", where="fractions", fix="e.g. 0.25,0.5,1")
        out.append((f, max(1, int(round(n_rows * f)))))
    return out


def learning_curve(config: CurveConfig, *, on_progress: ProgressCallback | None = None) -> LearningCurveResult:
    """Train the short-run recipe on nested subsets of ``config.train`` and fit the curve (see module doc)."""
    from tools.data.formats import load_examples, write_examples
    from tools.errors import InputError
    from tools.evaluate import predict, tuned_variant
    from tools.scoring.rows import decide_scoring, load_test, score_texts
    from tools.train import TrainConfig, train

    started = time.monotonic()
    r = _rule()
    fractions = tuple(config.fractions or r["fractions"])
    examples = load_examples(config.train, skip_invalid=True)
    if len(examples) < 4:
        raise InputError(f"{len(examples)} usable training rows: too few for a learning curve",
                         where=str(config.train), fix="use the cleaned training split of at least a few dozen rows")
    test = load_test(config.test)
    if config.test_rows:
        test = test[: config.test_rows]
    # the metric and generation length are decided once from the test set's profile, exactly as `eval test`
    # decides them, so a point of the curve and the check run's evaluation are the same number
    scoring = decide_scoring(test, max_new_tokens=config.max_new_tokens)
    metric = scoring.metric
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)  # nested: every subset is a prefix of one seeded order
    batch = config.per_device_batch_size * config.gradient_accumulation_steps
    epochs = config.epochs if config.epochs else max(1, int(config.max_steps or 20)) * batch / len(examples)
    workdir = Path(config.train).resolve().parent / "learning_curve"
    workdir.mkdir(parents=True, exist_ok=True)
    subsets = _subsets(len(examples), fractions)
    points: list[CurvePoint] = []
    for i, (frac, n) in enumerate(subsets):
        emit(on_progress, ProgressEvent("learning_curve", i, len(subsets), message=f"{n} examples ({frac:.0%})"))
        path = workdir / f"train_{n}.jsonl"
        write_examples([examples[j] for j in order[:n]], path)
        steps = max(1, math.ceil(epochs * n / batch))
        t0 = time.monotonic()
        cfg = TrainConfig(train=str(path), val=config.val, model=config.model,
                          method=knowledge.as_method(config.method),
                          learning_rate=config.learning_rate, max_steps=steps,
                          per_device_train_batch_size=config.per_device_batch_size,
                          gradient_accumulation_steps=config.gradient_accumulation_steps, seed=config.seed,
                          eval_steps=steps, early_stopping_patience=10**6)
        run = train(cfg)
        t1 = time.monotonic()
        preds = predict(tuned_variant(str(run.run_id)), [[m.to_dict() for m in e.prompt_messages] for e in test],
                        max_new_tokens=scoring.max_new_tokens)
        res = score_texts(preds.texts, test, scoring, seed=config.seed)
        t2 = time.monotonic()
        points.append(CurvePoint(n, frac, steps, round(res.quality, 4), [round(x, 4) for x in res.ci95],
                                 run.run_id, round(t1 - t0, 1), round(t2 - t1, 1), list(res.per_item)))
        emit(on_progress, ProgressEvent("learning_curve", i + 1, len(subsets), {"quality": res.quality, "n": n},
                                        message=f"{n} examples: {res.quality:.1%}"))
    fit = fit_curve([(p.n, p.per_item) for p in points], bar=config.bar, factors=config.factors, seed=config.seed,
                    rule=r)
    return LearningCurveResult(points, metric, len(test), fit, config.bar, round(epochs, 4),
                               time.monotonic() - started, config.to_dict())
