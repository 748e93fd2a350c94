"""Deciding Steps 1 and 2 in minutes: sequential stopping and racing of prompt variants (issue 25).

Steps 1 and 2 answer one question: does a prompt reach the quality bar? Rows are scored in a seeded random
order, in growing batches planned before the first row (``StopRule.looks``). After each batch the share of
acceptable answers gets an interval at level alpha / (looks x arms) (rule ``eval.sequential.stop``, a
Bonferroni split, valid however many looks are taken); scoring stops when the interval lies wholly above or
below the bar. Step 2 races its variants on the same rows (rule ``eval.race.halving``, successive halving):
the worse half, ranked on the rows every survivor answered, is dropped at each look.

The functions here know nothing about models: an ``Arm`` is a prompt being measured, and a ``RowScorer``
answers and scores some rows for it (``tools.prompt.evaluation`` supplies one over its backend).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.generation import Generation
from tools.prompt.variants import Variant
from tools.scoring import metrics

# (variant, row indices) -> (generations, raw replies, scored predictions, per-row scores), one per row
RowScorer = Callable[[Variant, list[int]], tuple[list[Generation], list[str], list[str], list[float]]]
LookCallback = Callable[[str, int, int], None]  # (arm name, rows scored, rows in the set)


@dataclass(frozen=True)
class StopRule:
    """The rules ``eval.sequential.stop`` and ``eval.race.halving`` as numbers (from knowledge/decide.yaml)."""

    rule_id: str
    alpha: float
    first_batch: int
    growth: float
    race_rule_id: str
    keep_fraction: float

    def looks(self, n_rows: int, *, full: bool = False) -> list[int]:
        """The planned looks: cumulative row counts, growing by ``growth`` from ``first_batch`` to ``n_rows``;
        one look (every row) with ``full``."""
        if full or n_rows <= self.first_batch:
            return [n_rows]
        out, n = [], self.first_batch
        while n < n_rows:
            out.append(n)
            n = max(n + 1, math.ceil(n * self.growth))
        return [*out, n_rows]

    def alpha_per_look(self, looks: int, arms: int = 1) -> float:
        """The error allowed to one interval: alpha split over every look of every arm (Bonferroni)."""
        return self.alpha / max(1, looks * arms)


def stop_rule() -> StopRule:
    """The stopping and racing rules from the knowledge base, validated by ``knowledge.schema``."""
    import knowledge
    from knowledge.schema import RaceRow, SequentialStopRow

    k = knowledge.load()
    stop = SequentialStopRow.model_validate(k.rule("eval.sequential.stop").raw)
    race = RaceRow.model_validate(k.rule("eval.race.halving").raw)
    return StopRule(stop.id, stop.alpha, stop.first_batch, stop.growth, race.id, race.keep_fraction)


def row_order(n_rows: int, seed: int) -> list[int]:
    """The seeded random order rows are scored in (so the first batch is a fair sample of the set)."""
    order = list(range(n_rows))
    random.Random(seed).shuffle(order)
    return order


def verdict(ci: Sequence[float], bar: float) -> str | None:
    """``above`` when the whole interval reaches the bar, ``below`` when it lies under it, else None."""
    lo, hi = ci[0], ci[1]
    if lo >= bar:
        return "above"
    if hi < bar:
        return "below"
    return None


@dataclass
class Arm:
    """One prompt measured row by row: the rows it answered (test-set indices, in scoring order) and theirs."""

    variant: Variant
    rows: list[int] = field(default_factory=list)
    gens: list[Generation] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    preds: list[str] = field(default_factory=list)
    items: list[float] = field(default_factory=list)
    dropped_at: int | None = None

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def n(self) -> int:
        return len(self.rows)

    def extend(self, order: Sequence[int], n: int, scorer: RowScorer) -> None:
        """Answer the rows ``order[self.n:n]`` (in test-set order, so the generations do not depend on the
        batch); nothing when ``n`` rows are already answered."""
        new = sorted(order[self.n:n])
        if not new:
            return
        gens, raw, preds, items = scorer(self.variant, new)
        self.rows += new
        self.gens += gens
        self.raw += raw
        self.preds += preds
        self.items += items

    def items_on(self, rows: Sequence[int]) -> list[float]:
        """Per-row scores on these rows (which this arm answered), in their order: for paired comparisons."""
        at = {r: i for i, r in enumerate(self.rows)}
        return [self.items[at[r]] for r in rows]

    def prompt_tokens(self) -> float:
        return statistics.fmean(g.prompt_tokens for g in self.gens) if self.gens else 0.0

    def sorted_rows(self) -> tuple[list[int], list[Generation], list[str], list[str]]:
        """Rows, generations, raw replies and predictions in test-set order (for scoring and the run log)."""
        idx = sorted(range(self.n), key=lambda i: self.rows[i])
        return ([self.rows[i] for i in idx], [self.gens[i] for i in idx], [self.raw[i] for i in idx],
                [self.preds[i] for i in idx])


@dataclass
class Decision:
    """Where a sequential measurement stopped and why: the result's ``sequential`` (Step 1) key."""

    rule: str
    n: int
    n_total: int
    looks: list[int]
    alpha_per_look: float
    decision_ci: list[float]
    verdict: str  # above, below, undecided (every row scored), or not_a_share (never compared with the bar)
    stopped_early: bool

    @property
    def message(self) -> str:
        if self.stopped_early:
            return f"stopped early: decisive at n={self.n} of {self.n_total}"
        if self.verdict == "not_a_share":
            return f"scored every row (n={self.n}): a similarity is not compared with the bar"
        if len(self.looks) == 1:
            return f"scored every row (n={self.n})"
        return f"scored every row (n={self.n}): {self.verdict} at the last look"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "n": self.n, "n_total": self.n_total, "looks": self.looks,
                "alpha_per_look": round(self.alpha_per_look, 6),
                "decision_ci": [round(x, 4) for x in self.decision_ci], "verdict": self.verdict,
                "stopped_early": self.stopped_early, "message": self.message}


def _ci(arm: Arm, alpha: float, seed: int) -> list[float]:
    return list(metrics.mean_ci(arm.items, seed=seed, alpha=alpha)[1])


def measure_sequentially(arm: Arm, order: Sequence[int], looks: Sequence[int], bar: float | None, rule: StopRule,
                         scorer: RowScorer, *, arms: int = 1, seed: int = 0,
                         on_look: LookCallback | None = None) -> Decision:
    """Score ``arm`` look by look until its interval (level alpha / (looks x arms)) is wholly above or below
    ``bar``, or every row is scored. ``bar=None`` (a similarity, not a share) scores every planned look."""
    alpha = rule.alpha_per_look(len(looks), arms)
    ci: list[float] = [0.0, 1.0]
    found: str | None = None
    for n in looks:
        if n < arm.n:
            continue
        arm.extend(order, n, scorer)
        if on_look is not None:
            on_look(arm.name, arm.n, len(order))
        ci = _ci(arm, alpha, seed)
        found = verdict(ci, bar) if bar is not None else None
        if found:
            break
    return Decision(rule.rule_id, arm.n, len(order), list(looks), alpha, ci,
                    found or ("not_a_share" if bar is None else "undecided"),
                    stopped_early=found is not None and arm.n < len(order))


@dataclass
class Race:
    """Successive halving over prompt variants on the same rows: the result's ``race`` key."""

    rule: str
    winner: str
    decision: Decision
    dropped: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    generations: int  # rows answered, summed over the arms
    generations_full: int  # what scoring every arm on every row costs

    @property
    def message(self) -> str:
        gone = "; ".join(f"{d['name']} at n={d['at_n']} ({d['diff']:+.3f} vs {d['vs']})" for d in self.dropped)
        return f"winner {self.winner}: {self.decision.message}" + (f"; dropped {gone}" if gone else "")

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "stop_rule": self.decision.rule, "winner": self.winner,
                "decision": self.decision.to_dict(), "dropped": self.dropped, "rounds": self.rounds,
                "generations": self.generations, "generations_full": self.generations_full,
                "message": self.message}


def race(arms: Sequence[Arm], order: Sequence[int], looks: Sequence[int], bar: float | None, rule: StopRule,
         scorer: RowScorer, *, seed: int = 0, on_look: LookCallback | None = None) -> Race:
    """Race the arms on the same rows (rule ``eval.race.halving``); returns the winner and what was dropped.

    At each look every survivor answers the rows up to it; survivors are ranked by their mean score on those
    common rows (ties: fewer prompt tokens, as the full sweep picks its best); the race stops when one is
    decisively above the bar or all are decisively below it; otherwise the worse half is dropped (their paired
    difference with the leader recorded) and the rest go on. With one look (``--full``) nothing is dropped.
    """
    alpha = rule.alpha_per_look(len(looks), len(arms))
    survivors = list(arms)
    dropped: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    found: str | None = None
    n = 0
    for li, n in enumerate(looks):
        for a in survivors:
            a.extend(order, n, scorer)
            if on_look is not None:
                on_look(a.name, a.n, len(order))
        common = list(order[:n])
        means = {a.name: statistics.fmean(a.items_on(common)) if common else 0.0 for a in survivors}
        survivors.sort(key=lambda a: (-means[a.name], a.prompt_tokens()))
        cis = {a.name: _ci(a, alpha, seed) for a in survivors}
        rounds.append({"n": n, "survivors": [a.name for a in survivors],
                       "quality": {k: round(v, 4) for k, v in means.items()}})
        if bar is not None:
            verdicts = [verdict(cis[a.name], bar) for a in survivors]
            if "above" in verdicts:
                found = "above"
                # the arm that is decisively above wins, the best ranked of them
                survivors = [a for a, v in zip(survivors, verdicts, strict=True) if v == "above"] + \
                            [a for a, v in zip(survivors, verdicts, strict=True) if v != "above"]
                break
            if all(v == "below" for v in verdicts):
                found = "below"
                break
        if li == len(looks) - 1 or len(survivors) == 1:
            continue
        keep = max(1, math.ceil(len(survivors) * rule.keep_fraction))
        leader = survivors[0]
        for a in survivors[keep:]:
            d = metrics.paired_difference(leader.items_on(common), a.items_on(common), metric="", seed=seed)
            a.dropped_at = n
            dropped.append({"name": a.name, "at_n": n, "vs": leader.name, "quality": round(d.b_quality, 4),
                            "leader_quality": round(d.a_quality, 4), "diff": round(d.diff, 4),
                            "diff_ci95": [round(x, 4) for x in d.diff_ci95],
                            **({"mcnemar_p": round(d.mcnemar["p_value"], 4)} if d.mcnemar else {})})
        survivors = survivors[:keep]
    winner = survivors[0]
    decision = Decision(rule.rule_id, winner.n, len(order), list(looks), alpha, cis[winner.name],
                        found or ("not_a_share" if bar is None else "undecided"),
                        stopped_early=found is not None and winner.n < len(order))
    return Race(rule.race_rule_id, winner.name, decision, dropped, rounds, sum(a.n for a in arms),
                len(arms) * len(order))
