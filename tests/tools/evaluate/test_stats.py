"""Evaluation statistics with numbers checked by hand (worked out in the comments), and the pure logic of
evaluation: probes, checks, sample selection, verdicts, ROI. No model is loaded here."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from tools import evaluate as E
from tools.errors import InputError
from tools.scoring import metrics as M
from tools.types import Example

# ---------------------------------------------------------------------------------------------- intervals and tests


def test_wilson_ci_by_hand() -> None:
    # k=8, n=10, z=1.96: denom = 1 + 3.8415/10 = 1.38415; centre = (0.8 + 0.19207)/1.38415 = 0.71681;
    # half = 1.96 * sqrt(0.016 + 0.0096037)/1.38415 = 0.22658  ->  (0.4902, 0.9434)
    lo, hi = M.wilson_ci(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    assert M.wilson_ci(0, 12) == (0.0, pytest.approx(0.2425, abs=1e-4))  # exactly 0, not float noise
    assert M.wilson_ci(12, 12)[1] == 1.0


def test_mcnemar_exact_by_hand() -> None:
    # 8 items A wrong/B right, 2 items A right/B wrong: n = 10, k = 2;
    # P(X <= 2 | Bin(10, .5)) = (1 + 10 + 45)/1024 = 0.0546875; two-sided p = 0.109375
    a = [False] * 8 + [True] * 2 + [True] * 5
    b = [True] * 8 + [False] * 2 + [True] * 5
    r = M.mcnemar(a, b)
    assert (r["b01"], r["b10"], r["exact"]) == (8, 2, True)
    assert r["p_value"] == pytest.approx(0.109375, abs=1e-12)


def test_mcnemar_chi_square_by_hand() -> None:
    # b01 = 30, b10 = 10: chi2 = (|30 - 10| - 1)^2 / 40 = 361/40 = 9.025; P(chi2_1 > 9.025) = 0.002663
    a = [False] * 30 + [True] * 10
    b = [True] * 30 + [False] * 10
    r = M.mcnemar(a, b)
    assert r["statistic"] == pytest.approx(9.025)
    assert r["p_value"] == pytest.approx(0.002663, abs=2e-6)
    assert r["exact"] is False


def test_paired_bootstrap_by_hand() -> None:
    # diffs [1, 1, 0, 0]: mean 0.5. A resample of 4 is all zeros with probability 1/16 = 6.25% > 2.5%,
    # and all ones likewise, so the 95% percentile interval is exactly (0, 1).
    diff, (lo, hi) = M.paired_bootstrap_diff([0, 0, 1, 1], [1, 1, 1, 1], n_boot=4000, seed=1)
    assert diff == 0.5
    assert (lo, hi) == (0.0, 1.0)
    # constant differences have a zero-width interval
    assert M.paired_bootstrap_diff([0, 1, 0], [1, 2, 1])[1] == (1.0, 1.0)


def test_bootstrap_matches_normal_theory() -> None:
    # 100 items, half right: standard error sqrt(.25/100) = 0.05, so the 95% interval is about 0.5 +- 0.098
    lo, hi = M.bootstrap_ci([1.0] * 50 + [0.0] * 50, n_boot=4000, seed=0)
    assert lo == pytest.approx(0.402, abs=0.02)
    assert hi == pytest.approx(0.598, abs=0.02)


def test_two_proportion_test_by_hand() -> None:
    # 50/100 vs 60/100: pooled 0.55, se = sqrt(.55 * .45 * (1/100 + 1/100)) = 0.070356;
    # z = 0.10/0.070356 = 1.4213; two-sided p = 0.1552
    r = M.two_proportion_test(50, 100, 60, 100)
    assert r["diff"] == pytest.approx(0.10)
    assert r["z"] == pytest.approx(1.4213, abs=1e-4)
    assert r["p_value"] == pytest.approx(0.1552, abs=1e-4)
    assert M.two_proportion_test(0, 0, 1, 1)["p_value"] == 1.0


# ---------------------------------------------------------------------------------------------- probe checks


def test_number_match_reads_first_or_last_number_and_words() -> None:
    assert M.number_match("2 + 2 = 4", "4") == 1.0
    assert M.number_match("56. Seven eights make fifty-six", "56") == 1.0
    assert M.number_match("A spider has eight legs.", "8") == 1.0
    assert M.number_match("1,000 meters", "1000") == 1.0
    assert M.number_match("I am not sure", "4") == 0.0
    assert M.number_match("5, 6 or 7", "6") == 0.0


@pytest.mark.parametrize(("answer", "item", "ok"), [
    ("The capital of France is Paris.", {"answer": "Paris", "check": "contains"}, True),
    ("paris", {"answer": "Paris", "check": "exact"}, True),
    ("It is Paris, France", {"answer": "Paris", "check": "exact"}, False),
    ("Hola!", {"answer": ["hola", "buenos días"], "check": "any_of"}, True),
    ("Bonjour", {"answer": ["hola"], "check": "any_of"}, False),
    ("7 x 8 = 56", {"answer": "56", "check": "number"}, True),
    ("William Shakespeare", {"answer": r"shakesp[e]are", "check": "regex"}, True),
])
def test_check_probe(answer: str, item: dict, ok: bool) -> None:
    assert E.check_probe(answer, item) is ok


def test_shipped_probe_set() -> None:
    items = E.load_probes()
    assert len(items) >= 100
    cats = Counter(i["category"] for i in items)
    assert set(cats) >= {"facts", "arithmetic", "translation", "literature", "units", "common_sense"}
    assert all(n >= 10 for n in cats.values())
    assert len({i["id"] for i in items}) == len(items)
    # every expected answer passes its own check: the checks are satisfiable
    for it in items:
        ans = it["answer"][0] if isinstance(it["answer"], list) else it["answer"]
        assert E.check_probe(str(ans), it), it["id"]


def test_probe_file_errors_name_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "probes.jsonl"
    p.write_text('{"question": "2+2?", "answer": "4", "check": "number"}\n{"question": "x"}\n')
    with pytest.raises(InputError) as e:
        E.load_probes(p)
    assert e.value.where == f"{p}:2:answer"
    p.write_text('{"question": "2+2?", "answer": "4", "check": "fuzzy"}\n')
    with pytest.raises(InputError, match="unknown check"):
        E.load_probes(p)


# ---------------------------------------------------------------------------------------------- forgetting logic


def _fake_predict(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def predict(variant, prompts, **kw):  # type: ignore[no-untyped-def]
        texts = answers[variant.kind]
        return E.Predictions(variant.label, texts[: len(prompts)], [1.0] * len(prompts), [5] * len(prompts),
                             [2] * len(prompts))
    return predict


def test_forgetting_degraded_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    # 10 probes "What is i + i?". Base answers all 10 right; tuned gets 7 right: scores 1.0 vs 0.7, drop 0.30,
    # 3 lost, McNemar exact with b10 = 3, b01 = 0: p = 2 * (1/8) = 0.25.
    from tests.tools.eval_run import make_run

    probes = tmp_path / "p.jsonl"
    probes.write_text("".join(json.dumps({"id": f"q{i}", "category": "arithmetic", "question": f"What is {i} + {i}?",
                                          "answer": str(2 * i), "check": "number"}) + "\n" for i in range(10)))
    base = [f"{2 * i}" for i in range(10)]
    tuned = base[:7] + ["no idea"] * 3
    monkeypatch.setattr(E.predictions, "predict", _fake_predict({"base": base, "tuned": tuned}))
    rid = make_run(tiny_model_dir, curves=False)
    r = E.forgetting(rid, probes=probes).to_dict()
    assert (r["probes"], r["base_score"], r["tuned_score"]) == (10, 1.0, 0.7)
    assert r["drop"] == pytest.approx(0.3)
    assert r["verdict"] == "degraded by 30.0 points" and r["degraded"]
    assert (r["lost"], r["gained"], r["changed"]) == (3, 0, 3)
    assert r["mcnemar"]["p_value"] == pytest.approx(0.25)
    assert [f["rule"] for f in r["fixes"]] == list(E.FORGETTING_FIXES)
    assert "learning rate" in r["fixes"][0]["text"].lower()
    assert [i["status"] for i in r["items"]][-3:] == ["lost"] * 3
    assert set(r) >= {"probes", "base_score", "tuned_score", "drop", "verdict", "items"}


def test_forgetting_within_tolerance_is_preserved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  tiny_model_dir: Path) -> None:
    from tests.tools.eval_run import make_run

    probes = tmp_path / "p.jsonl"
    probes.write_text("".join(json.dumps({"question": f"q{i}", "answer": "yes"}) + "\n" for i in range(50)))
    base = ["yes"] * 50
    tuned = ["yes"] * 49 + ["no"]  # a 2-point drop is within the default tolerance
    monkeypatch.setattr(E.predictions, "predict", _fake_predict({"base": base, "tuned": tuned}))
    r = E.forgetting(make_run(tiny_model_dir, curves=False), probes=probes).to_dict()
    assert r["drop"] == pytest.approx(0.02)
    assert r["verdict"] == "preserved" and r["fixes"] == []


# ---------------------------------------------------------------------------------------------- sample and ROI


def _compare_mod():  # type: ignore[no-untyped-def]
    import importlib

    return importlib.import_module("tools.evaluate.compare")  # the package's ``compare`` is the function


def _ab_mod():  # type: ignore[no-untyped-def]
    import importlib

    return importlib.import_module("tools.evaluate.ab")


def test_compare_sample_includes_edge_cases() -> None:
    exs = [Example.from_pair("x" * (10 + i), "common" if i < 8 else f"rare{i}") for i in range(12)]
    exs[3] = Example.from_pair("y" * 500, "common")
    ok = {"base": [0.0, 1.0] + [1.0] * 10, "tuned": [1.0, 0.0] + [1.0] * 10}
    picked = _compare_mod()._pick_sample(exs, ok, 8, seed=0)
    assert len(picked) == 8
    assert "longest input" in picked[3]
    assert picked[0] == ["base wrong, tuned right"]
    assert picked[1] == ["base right, tuned wrong"]
    assert any("rare label" in why for why in picked.values())
    assert _compare_mod()._pick_sample(exs, ok, 100, seed=0).keys() == set(range(12))  # n larger than the set: everything


def test_roi_verdicts() -> None:
    assert _ab_mod()._roi_verdict(0.2, [0.12, 0.28], 0.10) == "worth_it"
    assert _ab_mod()._roi_verdict(0.12, [0.02, 0.22], 0.10) == "uncertain"
    assert _ab_mod()._roi_verdict(0.02, [-0.03, 0.07], 0.10) == "not_worth_it"


def test_roi_seed_example_and_gain() -> None:
    # seed: 4 h x $100 = $400 of prompting; 40 h x $100 + $500 = $4500 of fine-tuning: 11.25x
    r = E.roi(4, 100, 40, 500).to_dict()
    assert (r["prompt_cost"], r["fine_tune_cost"], r["ratio"]) == (400, 4500, 11.25)
    assert r["min_quality_improvement"] == 0.10 and r["worth_it"] is None
    assert E.roi(4, 100, 40, 500, quality_gain=0.15).worth_it is True
    assert E.roi(4, 100, 40, 500, quality_gain=0.05).worth_it is False
    assert E.roi(0, 100, 40, 500).ratio is None  # prompting cost nothing: the ratio is unbounded
    with pytest.raises(InputError):
        E.roi(-1, 100, 40, 500)
    assert math.isclose(E.roi(4, 100, 40, 500, quality_gain=0.15, bar=0.2).min_quality_improvement, 0.2)
