"""Every metric and interval against cases computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math
import sys

import pytest

from tools.errors import InputError
from tools.scoring import metrics as M


def test_normalize() -> None:
    assert M.normalize('  "Hello,   World!" ') == "hello, world"
    assert M.normalize("ﬁne") == "fine"  # NFKC folds the ligature
    assert M.normalize(None) == ""
    assert M.normalize_label("Card-Arrival") == M.normalize_label("card arrival") == "card_arrival"


def test_exact_match_contains_regex() -> None:
    assert M.exact_match("Paris.", "paris") == 1.0
    assert M.exact_match("Paris, France", "paris") == 0.0
    assert M.contains("The capital is Paris.", "paris") == 1.0
    assert M.contains("anything", "") == 0.0  # an empty reference never counts as contained
    assert M.regex_match("Order #12345 shipped", r"#\d{5}\b") == 1.0
    assert M.regex_match("ORDER", "order") == 1.0  # case-insensitive
    assert M.regex_match("x", "(") == 0.0  # a broken pattern scores 0, it does not raise


def test_json_metrics() -> None:
    assert M.json_valid('{"a": 1}') == 1.0
    assert M.json_valid('```json\n{"a": 1}\n```') == 1.0  # a fenced block counts
    assert M.json_valid("{a: 1}") == 0.0
    assert M.json_equal('{"b": 2, "a": 1}', '{"a":1,"b":2}') == 1.0
    assert M.json_equal('{"a": 1}', '{"a": 2}') == 0.0
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert M.json_schema_match('{"a": 3}', schema) == 1.0
    assert M.json_schema_match('{"a": "3"}', schema) == 0.0
    assert M.json_schema_match("not json", schema) == 0.0


def test_extract_label() -> None:
    labels = ["card_arrival", "card_arrival_time", "refund"]
    assert M.extract_label("Card Arrival", labels) == "card_arrival"
    assert M.extract_label("refund\nbecause the customer asks", labels) == "refund"
    assert M.extract_label("I think it is card_arrival_time.", labels) == "card_arrival_time"  # longest wins
    assert M.extract_label("no idea", labels) is None


def test_label_accuracy_and_macro_f1_by_hand() -> None:
    refs = ["a", "a", "b", "b"]
    preds = ["a", "b", "b", "nothing"]
    # accuracy: rows 1 and 3 right -> 2/4
    assert M.label_accuracy(preds, refs) == [1.0, 0.0, 1.0, 0.0]
    # a: tp1 fp0 fn1 -> F1 = 2/(2+0+1) = 2/3; b: tp1 fp1 fn1 -> 2/(2+1+1) = 1/2; macro = 7/12
    assert M.macro_f1(preds, refs) == pytest.approx(7 / 12)
    # sklearn's macro also counts a label that only the predictions use: c gets F1 0.
    # a: tp1 fp0 fn1 -> 2/3; b: tp1 fp0 fn0 -> 1; c: tp0 fp1 fn0 -> 0; macro = (2/3 + 1 + 0) / 3 = 5/9
    assert M.macro_f1(["a", "c", "b"], ["a", "a", "b"], labels=["a", "b", "c"]) == pytest.approx(5 / 9)
    # labels spelled differently from the references still match
    assert M.label_accuracy(["card arrival"], ["card_arrival"], labels=["Card Arrival"]) == [1.0]


def test_wilson_ci_by_hand() -> None:
    # 8/10: p=.8, z^2=3.8415, centre=(.8+.19207)/1.38415=.71674, half=1.96*sqrt(.016+.0096)/1.38415=.22658
    lo, hi = M.wilson_ci(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    # 0/10: centre = 0.19207/1.38415 = 0.13876 = half, so the interval is [0, 0.2775]
    lo, hi = M.wilson_ci(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert M.wilson_ci(0, 0) == (0.0, 1.0)
    lo, hi = M.wilson_ci(10, 10)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.2775, abs=1e-4)


def test_bootstrap_ci() -> None:
    assert M.bootstrap_ci([0.5] * 20) == (0.5, 0.5)  # no spread, no interval
    lo, hi = M.bootstrap_ci([0.0, 1.0] * 50, seed=1)
    # the mean of 100 fair coins: sd = 0.05, so the interval is about 0.5 +- 0.1
    assert 0.38 < lo < 0.45 and 0.55 < hi < 0.62
    assert M.bootstrap_ci([0.2, 0.9, 0.4], seed=3) == M.bootstrap_ci([0.2, 0.9, 0.4], seed=3)  # seeded
    assert M.bootstrap_ci([]) == (0.0, 0.0)


def test_paired_bootstrap_and_mcnemar_by_hand() -> None:
    mean, (lo, hi) = M.paired_bootstrap_diff([0, 0, 1, 1], [1, 1, 1, 1])
    assert mean == 0.5 and 0.0 <= lo <= 0.5 <= hi <= 1.0
    with pytest.raises(ValueError):
        M.paired_bootstrap_diff([1], [1, 0])
    # 1 pair A-right/B-wrong, 5 pairs A-wrong/B-right: exact p = 2 * P(X <= 1 | n=6) = 2 * 7/64 = 0.21875
    a = [1, 0, 0, 0, 0, 0, 1]
    b = [0, 1, 1, 1, 1, 1, 1]
    r = M.mcnemar(a, b)
    assert (r["b01"], r["b10"], r["exact"]) == (5, 1, True) and r["p_value"] == pytest.approx(0.21875)
    # 30 vs 10 discordant: chi2 = (|30-10|-1)^2/40 = 9.025, p = erfc(sqrt(9.025/2)) = 0.002663
    r = M.mcnemar([0] * 30 + [1] * 10, [1] * 30 + [0] * 10)
    assert r["statistic"] == pytest.approx(9.025) and r["p_value"] == pytest.approx(0.002663, abs=1e-6)
    assert M.mcnemar([1, 0], [1, 0])["p_value"] == 1.0


def test_percentile_like_numpy() -> None:
    xs = [10, 20, 30, 40]
    # position (4-1)*0.5 = 1.5 -> 25; position 3*0.95 = 2.85 -> 30 + 0.85*10 = 38.5
    assert M.percentile(xs, 50) == 25 and M.percentile(xs, 95) == pytest.approx(38.5)
    assert M.percentile([], 50) == 0.0


def test_choose_metric() -> None:
    assert M.choose_metric(["a", "b", "a", "b"]) == "label_accuracy"
    assert M.choose_metric(['{"x": 1}', '{"x": 1}', '{"x": 2}']) == "json_equal"
    # free text never gets exact match (issue 14): chrF; short answers do
    assert M.choose_metric(["a long free-text answer with many words", "another different answer here"]) == "chrf"
    assert M.choose_metric(["25", "Paris", "New York City", "42"]) == "exact_match"


def test_score_attaches_ci_and_n() -> None:
    r = M.score(["a", "b", "a", "a", "b"], ["a", "b", "b", "a", "b"])
    assert r.metric == "label_accuracy" and r.n == 5 and r.quality == pytest.approx(0.8)
    assert r.ci95 == pytest.approx(M.wilson_ci(4, 5))
    # a: tp2 fp1 fn0 -> 4/5; b: tp2 fp0 fn1 -> 4/5; macro 0.8
    assert r.extra["macro_f1"] == pytest.approx(0.8)
    f1 = M.score(["a", "b", "a", "a", "b"], ["a", "b", "b", "a", "b"], "macro_f1")
    assert f1.quality == pytest.approx(0.8) and f1.extra["accuracy"] == pytest.approx(0.8)
    assert f1.ci95[0] <= 0.8 <= f1.ci95[1]
    with pytest.raises(ValueError):
        M.score(["a"], ["a", "b"])
    d = r.to_dict(with_items=True)
    assert d["n"] == 5 and d["per_item"] == [1.0, 1.0, 0.0, 1.0, 1.0] and len(d["ci95"]) == 2


def test_user_metric_runs_in_a_child(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "my_metrics_for_test.py").write_text(
        "import os\nLOADED_IN = os.getpid()\nprint('import-time noise')\n"
        "def half(p, r):\n    return 0.5 if p else 0.0\n"
        "def pid(p, r):\n    return float(os.getpid())\n"
        "def wrong(p):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    r = M.score(["x", "", "y"], ["a", "b", "c"], "my_metrics_for_test:half")
    # mean of 0.5, 0, 0.5 = 1/3; not 0/1 scores, so the interval is a bootstrap one
    assert r.quality == pytest.approx(1 / 3) and r.ci95[0] <= r.quality <= r.ci95[1]
    assert not math.isnan(r.ci95[1])
    import os

    assert M.per_item_scores("my_metrics_for_test:pid", ["x"], ["y"]) != [float(os.getpid())]  # not this process
    assert "my_metrics_for_test" not in sys.modules  # never imported here
    with pytest.raises(InputError):
        M.load_user_metric("no_colon")
    with pytest.raises(InputError, match="missing"):
        M.load_user_metric("my_metrics_for_test:missing")
    with pytest.raises(InputError, match="wrong signature"):
        M.score(["x"], ["y"], "my_metrics_for_test:wrong")
    with pytest.raises(InputError, match="unknown metric"):
        M.score(["x"], ["y"], "bleu")


def test_reference_metrics_by_hand() -> None:
    # token F1 (SQuAD): "the cat sat" vs "a cat sat down": articles dropped -> [cat, sat] vs [cat, sat, down]
    # precision 2/2, recall 2/3 -> F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
    assert M.token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert M.token_f1("", "") == 1.0 and M.token_f1("x", "") == 0.0
    # ROUGE-L: LCS of [the, cat, sat, on, the, mat] and [the, cat, is, on, the, mat] is 5 words of 6 -> F = 5/6
    assert M.rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert M.rouge_l("Ça marche très bien", "ça marche bien") > 0.8  # non-ASCII words are words too
    assert M.chrf("identical text", "identical text") == pytest.approx(1.0)
    assert 0.0 < M.chrf("the cat sat on the mat", "the cat is on the mat") < 1.0
    assert M.chrf("zzzz", "the cat") == 0.0


def test_free_text_scores_with_companions_and_ci() -> None:
    refs = ["The meeting moved to Tuesday afternoon.", "Please send the invoice by Friday.",
            "Our office is closed on public holidays.", "Refunds take five business days."]
    preds = ["The meeting is now on Tuesday afternoon.", "Send the invoice on Friday please.",
             "The office closes on holidays.", "Refunds take about a week."]
    r = M.score(preds, refs)
    assert r.metric == "chrf" and not r.share  # never exact match for free text; a similarity, not a share
    assert 0 < r.quality < 1 and r.ci95[0] <= r.quality <= r.ci95[1]
    assert {"rouge_l", "token_f1", "rouge_l_ci95", "token_f1_ci95"} <= set(r.extra)
    assert r.to_dict()["share"] is False


def test_extract_code_and_syntax() -> None:
    reply = "Here you go:\n```python\ndef f(x):\n    return x + 1\n```\nIt adds one."
    assert M.extract_code(reply).strip() == "def f(x):\n    return x + 1"
    assert M.extract_code("def g(): pass") == "def g(): pass"  # no block: the whole reply
    assert M.python_syntax(reply) == 1.0
    assert M.python_syntax("def f(x) return x") == 0.0


def test_metric_for_profile_and_generation_length() -> None:
    from tools.types import TaskProfile

    assert M.metric_for_profile(TaskProfile("label")) == "label_accuracy"
    assert M.metric_for_profile(TaskProfile("structured")) == "json_equal"
    assert M.metric_for_profile(TaskProfile("code", has_tests=True)) == "pass_at_1"
    assert M.metric_for_profile(TaskProfile("code")) == "chrf"
    assert M.metric_for_profile(TaskProfile("text")) == "chrf"
    assert M.metric_for_profile(TaskProfile("short_answer")) == "exact_match"
    # 1.5 x p95 + 16: a 100-token program gets 166 new tokens, a 4-token label the floor of 16
    assert M.max_new_tokens_for(TaskProfile("code", output_tokens_p95=100)) == 166
    assert M.max_new_tokens_for(TaskProfile("label", output_tokens_p95=4)) == 22
    assert M.max_new_tokens_for(TaskProfile("label", output_tokens_p95=0)) == 32  # unknown: the old default
    assert M.max_new_tokens_for(TaskProfile("text", output_tokens_p95=5000)) == 512


def test_paired_difference_and_kappa_by_hand() -> None:
    d = M.paired_difference([0, 0, 1, 1], [1, 1, 1, 1], metric="pass_at_1")
    assert d.diff == 0.5 and d.a_quality == 0.5 and d.b_quality == 1.0 and d.mcnemar is not None
    assert d.to_dict()["diff_ci95"][0] <= 0.5 <= d.to_dict()["diff_ci95"][1]
    with pytest.raises(ValueError):
        M.paired_difference([1], [1, 0])
    # kappa: 10 items, raters agree on 8 (po = 0.8); A says yes 5 times, B 5 times -> pe = 0.5 -> (0.8-0.5)/0.5 = 0.6
    a = ["y"] * 5 + ["n"] * 5
    b = ["y"] * 4 + ["n"] + ["y"] + ["n"] * 4
    assert M.cohen_kappa(a, b) == pytest.approx(0.6)
    assert M.cohen_kappa(["y", "y"], ["y", "y"]) == 1.0
    assert M.cohen_kappa(["y", "n"], ["n", "y"]) == pytest.approx(-1.0)
