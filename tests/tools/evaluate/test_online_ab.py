"""The online A/B router: routing by ratio, per-request logging, significance once enough requests are in."""

from __future__ import annotations

import pytest

from tools.errors import InputError
from tools.evaluate.online_ab import ABRouter, report


def test_ratio_routes_traffic() -> None:
    assert {ABRouter("x", ratio=0.0, seed=1).choose() for _ in range(50)} == {"a"}
    assert {ABRouter("x", ratio=1.0, seed=1).choose() for _ in range(50)} == {"b"}
    r = ABRouter("x", ratio=0.3, seed=7)
    share = sum(r.choose() == "b" for _ in range(2000)) / 2000
    assert share == pytest.approx(0.3, abs=0.04)
    with pytest.raises(InputError):
        ABRouter("x", ratio=1.5)


def test_route_times_and_logs_each_request() -> None:
    r = ABRouter("exp-route", ratio=0.5, seed=3, min_requests=10)
    answers = [r.route(i, a=lambda q: f"A{q}", b=lambda q: f"B{q}", outcome=lambda q, ans: float(ans[0] == "B"),
                       cost=lambda q, ans: 0.01) for i in range(20)]
    rep = r.report()
    assert rep.a.requests + rep.b.requests == 20
    assert rep.a.requests == sum(a.startswith("A") for a in answers)
    assert rep.b.success_rate == 1.0 and rep.a.success_rate == 0.0
    assert rep.a.cost_mean == pytest.approx(0.01) and rep.a.latency_ms_mean is not None and rep.a.latency_ms_mean >= 0


def test_outcome_recorded_later() -> None:
    r = ABRouter("exp-later", min_requests=2)
    rid = r.record("b", latency_ms=12.0)
    assert report("exp-later", min_requests=2).b.with_outcome == 0
    r.record_outcome(rid, 1.0)
    assert report("exp-later", min_requests=2).b.successes == 1


def test_significance_only_once_enough_requests() -> None:
    # 500 requests each, 250 vs 300 successes: pooled .55, se = sqrt(.2475 * 2/500) = 0.031464,
    # z = 0.10/0.031464 = 3.178, p = 0.00148
    r = ABRouter("exp-sig", min_requests=1000)
    for i in range(500):
        r.record("a", outcome=float(i < 250))
        r.record("b", outcome=float(i < 300))
    rep = r.report()
    assert rep.enough_requests and rep.significant
    assert rep.z == pytest.approx(3.178, abs=1e-3)
    assert rep.p_value == pytest.approx(0.00148, abs=5e-5)
    assert rep.verdict.startswith("B is better")
    few = report("exp-sig", min_requests=5000)
    assert not few.enough_requests and not few.significant and few.verdict.startswith("collecting")


def test_the_report_is_typed_and_its_json_keys_are_kept() -> None:
    r = ABRouter("exp-keys", min_requests=2)
    r.record("a", outcome=1.0, latency_ms=5.0)
    doc = r.report().to_dict()
    assert list(doc) == ["experiment", "a", "b", "diff", "z", "p_value", "enough_requests", "min_requests",
                         "significant", "verdict", "rule_ids"]
    assert list(doc["a"]) == ["requests", "with_outcome", "successes", "success_rate", "ci95", "latency_ms_mean",
                              "latency_ms_p95", "cost_mean"]
    assert doc["a"]["successes"] == 1 and doc["b"]["requests"] == 0 and doc["rule_ids"] == ["eval.ab_test"]
