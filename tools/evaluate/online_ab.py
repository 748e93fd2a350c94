"""An online A/B router for production: send each request to variant A or B by a ratio, record what happened.

    router = ABRouter("ticket-intent-v2", ratio=0.5)           # 50% of traffic to B
    answer = router.route(request, a=call_prompt_model, b=call_tuned_model)   # timed, logged
    router.record_outcome(router.last_request_id, 1.0)         # later: thumbs up (1) / down (0)
    router.report()   # counts, success rates, latency, cost, and significance once enough requests are in

Each request is a row in the run log's ``ab_requests`` table (experiment, variant, outcome, latency, cost), so
any number of processes can route for the same experiment and the report sees them all. Requests go to one
variant only, so the comparison is unpaired: a two-proportion z-test for 0/1 outcomes (rule ``eval.ab_test``:
the seed asks for 1000+ requests before reading the result).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tools.errors import InputError
from tools.runlog import RunLog, new_id
from tools.scoring import metrics as M


@dataclass
class VariantStats:
    """One variant's traffic: requests, those with an outcome, successes (Wilson CI), latency and cost."""

    requests: int
    with_outcome: int
    successes: int
    success_rate: float | None
    ci95: list[float] | None
    latency_ms_mean: float | None
    latency_ms_p95: float | None
    cost_mean: float | None


@dataclass
class ABReport:
    """The online experiment so far: both variants, B minus A with a two-proportion z-test, and the verdict
    (``significant`` only once ``min_requests`` with an outcome are in)."""

    experiment: str
    a: VariantStats
    b: VariantStats
    diff: float
    z: float
    p_value: float
    enough_requests: bool
    min_requests: int
    significant: bool
    verdict: str
    rule_ids: list[str] = field(default_factory=lambda: ["eval.ab_test"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def min_requests_default() -> int:
    import knowledge

    return int(knowledge.load().checklist.evaluation.ab_test.min_requests)


class ABRouter:
    """Route requests between two variants and log outcome, latency and cost per request."""

    def __init__(self, experiment: str, *, ratio: float = 0.5, seed: int | None = None,
                 min_requests: int | None = None, runlog: RunLog | None = None) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise InputError(f"ratio {ratio} is not between 0 and 1", where="ratio",
                             fix="give the share of traffic for B, e.g. 0.5")
        if not experiment.strip():
            raise InputError("the experiment needs a name", where="experiment")
        self.experiment = experiment
        self.ratio = ratio
        self.min_requests = min_requests if min_requests is not None else min_requests_default()
        self.log = runlog or RunLog()
        self._rng = random.Random(seed)
        self.last_request_id: str | None = None

    def choose(self) -> str:
        """``"b"`` with probability ``ratio``, else ``"a"``."""
        return "b" if self._rng.random() < self.ratio else "a"

    def record(self, variant: str, *, outcome: float | None = None, latency_ms: float | None = None,
               cost: float | None = None) -> str:
        """Log one request; returns its id, to attach an outcome later with ``record_outcome``."""
        if variant not in ("a", "b"):
            raise InputError(f"variant {variant!r} is not 'a' or 'b'", where="variant")
        request_id = new_id("req-")
        self.log.log_ab_request(self.experiment, variant, request_id, outcome=outcome, latency_ms=latency_ms,
                                cost=cost)
        self.last_request_id = request_id
        return request_id

    def record_outcome(self, request_id: str, outcome: float) -> None:
        """Attach an outcome (1 success / 0 failure, or a score in [0, 1]) to an earlier request."""
        self.log.set_ab_outcome(self.experiment, request_id, outcome)

    def route(self, request: Any, *, a: Callable[[Any], Any], b: Callable[[Any], Any],
              outcome: Callable[[Any, Any], float] | None = None,
              cost: Callable[[Any, Any], float] | None = None) -> Any:
        """Send ``request`` to A or B, time it, log it, and return the variant's answer.

        ``outcome(request, answer)`` and ``cost(request, answer)`` are optional: give them when they are known
        at once (e.g. a validity check, tokens x price); otherwise call ``record_outcome`` later.
        """
        variant = self.choose()
        t0 = time.perf_counter()
        answer = (b if variant == "b" else a)(request)
        latency = (time.perf_counter() - t0) * 1000
        self.record(variant, outcome=outcome(request, answer) if outcome else None, latency_ms=latency,
                    cost=cost(request, answer) if cost else None)
        return answer

    def report(self, *, alpha: float = 0.05) -> ABReport:
        return report(self.experiment, min_requests=self.min_requests, alpha=alpha, runlog=self.log)


def report(experiment: str, *, min_requests: int | None = None, alpha: float = 0.05,
           runlog: RunLog | None = None) -> ABReport:
    """Per-variant counts, success rate (with Wilson CI), latency and cost; the test once enough requests are in."""
    log = runlog or RunLog()
    need = min_requests if min_requests is not None else min_requests_default()
    rows = log.query("""SELECT variant, count(*) AS requests, count(outcome) AS with_outcome,
                               sum(outcome) AS successes, avg(latency_ms) AS latency_ms_mean,
                               quantile_cont(latency_ms, 0.95) AS latency_ms_p95, avg(cost) AS cost_mean
                        FROM ab_requests WHERE experiment = ? GROUP BY variant""", [experiment])
    sides: dict[str, VariantStats] = {}
    for v in ("a", "b"):
        r = next((x for x in rows if x["variant"] == v), None) or {"requests": 0, "with_outcome": 0, "successes": 0}
        k, n = float(r.get("successes") or 0), int(r.get("with_outcome") or 0)
        sides[v] = VariantStats(requests=int(r["requests"]), with_outcome=n, successes=round(k),
                                success_rate=k / n if n else None, ci95=list(M.wilson_ci(k, n)) if n else None,
                                latency_ms_mean=r.get("latency_ms_mean"), latency_ms_p95=r.get("latency_ms_p95"),
                                cost_mean=r.get("cost_mean"))
    a, b = sides["a"], sides["b"]
    enough = min(a.with_outcome, b.with_outcome) * 2 >= need
    test = M.two_proportion_test(a.successes, a.with_outcome, b.successes, b.with_outcome)
    if not enough:
        verdict = (f"collecting: {a.with_outcome + b.with_outcome} of {need} requests "
                   "with an outcome; wait before reading the difference")
    elif test["p_value"] < alpha:
        verdict = f"{'B' if test['diff'] > 0 else 'A'} is better (p = {test['p_value']:.3g})"
    else:
        verdict = f"no significant difference (p = {test['p_value']:.3g})"
    return ABReport(experiment=experiment, a=a, b=b, diff=test["diff"], z=test["z"], p_value=test["p_value"],
                    enough_requests=enough, min_requests=need, significant=enough and test["p_value"] < alpha,
                    verdict=verdict)
