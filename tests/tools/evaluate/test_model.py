"""Evaluation end to end on the tiny random model (a hand-made LoRA run), and once on the real SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tools.eval_run import make_run, write_test_file
from tools import evaluate as E
from tools.runlog import RunLog
from tools.scoring import rows as R

FAST = E.EvalConfig(max_new_tokens=4, probe_max_new_tokens=4)


@pytest.fixture
def run_id(tiny_model_dir: Path) -> str:
    return make_run(tiny_model_dir)


@pytest.fixture
def test_file(tmp_path: Path) -> Path:
    return write_test_file(tmp_path / "test.jsonl")


def _prompt_run(model: Path) -> str:
    """A prompt-baseline run as prompt evaluation (issue 5) logs it: kind prompt_eval, the best variant."""
    log = RunLog()
    rid = log.start_run("prompt_eval", config={"model": str(model)}, model=model.name)  # a display name, as prompt_eval logs it
    log.update_run(rid, status="completed", summary={
        "best": "few_shot", "variants": [
            {"name": "zero_shot", "system": "Answer with the label."},
            {"name": "few_shot", "system": "Answer with the label.",
             "few_shot": [{"input": "where is my card", "output": "card_arrival"}]}]})
    log.log_evaluation(rid, "prompt_eval", metric="label_accuracy", value=0.5, ci=(0.3, 0.7), n=20)
    return rid


def test_resolve_contract_of_the_fixture(run_id: str, tiny_model_dir: Path) -> None:
    from tools import models

    spec = models.resolve(f"run:{run_id}")
    assert spec.adapter is not None and spec.path == tiny_model_dir.resolve()
    assert E.base_variant(run_id).spec.adapter is None
    # A/B and forgetting specs: a run id, a unique prefix of one, run:ID, base, a model folder
    assert E.parse_variant(run_id[:-3]).label == f"run:{run_id}"
    assert E.parse_variant(f"run:{run_id}").kind == "tuned"
    assert E.parse_variant(str(tiny_model_dir)).kind == "base"
    a, b = E.pair_variants("base", run_id)
    assert (a.kind, b.kind) == ("base", "tuned") and a.spec.path == tiny_model_dir.resolve()


def test_evaluate_test_logs_and_warns_on_peeking(run_id: str, test_file: Path) -> None:
    res = E.evaluate_test(run_id, test_file, config=FAST).to_dict()
    assert set(res) >= {"quality", "ci95", "n", "metric", "vs"}
    assert res["n"] == 12 and res["metric"] == "label_accuracy"
    assert 0.0 <= res["ci95"][0] <= res["quality"] <= res["ci95"][1] <= 1.0
    assert res["vs"]["base"]["variant"].startswith("base:") and res["vs"]["prompt_baseline"] is None
    assert "diff_ci95" in res["vs"]["base"] and "mcnemar" in res["vs"]["base"]
    assert not res["peeking"] and res["test_evaluations"] == 1
    assert any("prompt baseline" in w for w in res["warnings"])
    log = RunLog()
    kinds = {r["kind"] for r in log.query("SELECT kind FROM evaluations WHERE run_id = ?", [run_id])}
    # free generation decides; the same rows in choice mode are logged beside it, and never count as a test look
    assert kinds == {"test", "test_base", "test_choice", "test_base_choice"}
    assert log.query("SELECT count(*) AS n FROM predictions WHERE eval_id = ?", [res["eval_id"]])[0]["n"] == 12
    choice = res["choice"]
    assert choice["mode"] == "choice" and choice["n"] == 12 and not choice["decides"]
    assert "diff_ci95" in choice["vs"]["base"] and choice["vs"]["base"]["n"] == 12
    labels = {e.output_text for e in R.load_test(test_file)}
    picked = log.query("SELECT prediction FROM predictions WHERE eval_id = ?", [choice["eval_id"]])
    assert len(picked) == 12 and {r["prediction"] for r in picked} <= labels  # never an invented label

    again = E.evaluate_test(run_id, test_file, config=FAST).to_dict()
    assert again["peeking"] and again["test_evaluations"] == 2
    assert any("test-set peeking" in w and "1 time" in w for w in again["warnings"])


def test_prompt_baseline_from_the_run_log(run_id: str, test_file: Path, tiny_model_dir: Path) -> None:
    prid = _prompt_run(tiny_model_dir)
    var = E.prompt_variant(prid)
    assert var.system == "Answer with the label." and var.few_shot == [("where is my card", "card_arrival")]
    msgs = var.prompts(R.load_test(test_file)[:1])[0]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    res = E.evaluate_test(run_id, test_file, config=FAST).to_dict()
    assert res["vs"]["prompt_baseline"]["variant"] == f"prompt:{prid}"


def test_compare_reuses_test_predictions(run_id: str, test_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    E.evaluate_test(run_id, test_file, config=FAST)
    calls = []
    monkeypatch.setattr(E.predictions, "predict", lambda *a, **k: calls.append(a) or pytest.fail("regenerated"))
    res = E.compare(run_id, test_file, n=6, config=FAST).to_dict()
    assert not calls
    assert res["n"] == 6 and res["columns"] == ["base", "tuned"]
    row = res["rows"][0]
    assert set(row) >= {"input", "expected", "base", "tuned", "base_ok", "tuned_ok", "prompt_baseline", "why"}
    assert any("longest input" in r["why"] for r in res["rows"])


def _probe_subset(tmp_path: Path, step: int = 6) -> Path:
    """Every ``step``-th shipped probe (all categories; generation on 2 shared CPU cores is the slow part)."""
    p = tmp_path / "probes.jsonl"
    p.write_text("".join(json.dumps(i) + "\n" for i in E.load_probes()[::step]))
    return p


def test_forgetting_tiny_model(run_id: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    # shipped probes against the tiny random model: the perturbed adapter changes its answers
    probes = _probe_subset(tmp_path)
    res = E.forgetting(run_id, probes=probes, config=FAST).to_dict()
    assert res["probes"] == 18 and len(res["items"]) == res["probes"] and len(res["categories"]) == 6
    assert res["changed"] > 0 and res["tuned"] == f"run:{run_id}"
    # an adapter with B = 0 is the base model: nothing changes, verdict preserved
    zero = make_run(tiny_model_dir, perturb=False, curves=False)
    same = E.forgetting(zero, probes=probes, config=FAST).to_dict()
    assert (same["drop"], same["changed"], same["verdict"]) == (0.0, 0, "preserved")
    logged = RunLog().query("SELECT kind, n FROM evaluations WHERE run_id = ?", [zero])
    assert logged == [{"kind": "forgetting", "n": res["probes"]}]


def test_user_probe_file(run_id: str, tmp_path: Path) -> None:
    p = tmp_path / "mine.jsonl"
    p.write_text(json.dumps({"question": "2+2?", "answer": "4", "check": "number"}) + "\n")
    assert E.forgetting(run_id, probes=p, config=FAST).to_dict()["probes"] == 1


def test_ab_offline_base_vs_run(run_id: str, test_file: Path) -> None:
    res = E.ab("base", f"run:{run_id}", test_file, bar=0.10, cost_per_1k_tokens=0.5, config=FAST).to_dict()
    assert res["a"]["variant"].startswith("base:") and res["b"]["variant"] == f"run:{run_id}"
    assert res["n"] == 12 and len(res["diff_ci95"]) == 2 and "mcnemar" in res
    assert res["roi"]["verdict"] in ("worth_it", "not_worth_it", "uncertain")
    assert res["a"]["cost_per_request"] == pytest.approx(res["a"]["tokens_per_request"] / 1000 * 0.5)
    assert res["a"]["latency_ms_mean"] > 0


def test_errors_are_user_errors(run_id: str, tmp_path: Path) -> None:
    from tools.errors import InputError, RunNotFoundError

    with pytest.raises(InputError):
        E.evaluate_test(run_id, tmp_path / "missing.jsonl", config=FAST)
    with pytest.raises(RunNotFoundError):
        E.evaluate_test("nope", tmp_path / "missing.jsonl", config=FAST)


@pytest.mark.real_model
def test_forgetting_real_model_base_vs_base_is_preserved(real_model_dir: Path, tmp_path: Path) -> None:
    probes = _probe_subset(tmp_path, 12)  # 9 probes across the categories
    res = E.forgetting("smollm2-135m-instruct", probes=probes, config=E.EvalConfig(probe_max_new_tokens=24)).to_dict()
    assert res["verdict"] == "preserved" and res["drop"] == 0.0 and res["changed"] == 0
    assert res["base_score"] > 0  # the real model knows some of these


# ---------------------------------------------------------------------------------------------- quick-check limits

def test_limits_score_the_first_rows_and_say_so(run_id: str, test_file: Path, tiny_model_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    res = E.evaluate_test(run_id, test_file, config=FAST, limit=5).to_dict()
    assert (res["n"], res["test_rows"], res["limit"]) == (5, 12, 5)
    assert any("first 5 of the 12 test rows" in w for w in res["warnings"])
    logged = RunLog().query("SELECT n FROM evaluations WHERE eval_id = ?", [res["eval_id"]])
    assert logged == [{"n": 5}]
    # the side-by-side table and the A/B on the same rows reuse those predictions: nothing is generated
    monkeypatch.setattr(E.predictions, "predict", lambda *a, **k: pytest.fail("regenerated"))
    cmp = E.compare(run_id, test_file, n=3, config=FAST, limit=5).to_dict()
    assert (cmp["n"], cmp["sampled_from"], cmp["test_rows"]) == (3, 5, 12)
    for a in ("base", str(tiny_model_dir)):
        ab = E.ab(a, f"run:{run_id}", test_file, config=FAST, limit=5).to_dict()
        assert ab["reused"] == ["a", "b"] and (ab["n"], ab["test_rows"]) == (5, 12)
        assert ab["b"]["quality"] == res["quality"] and ab["a"]["quality"] == res["vs"]["base"]["quality"]


def test_ab_generates_when_settings_differ(run_id: str, test_file: Path) -> None:
    E.evaluate_test(run_id, test_file, config=FAST, limit=4)
    other = E.EvalConfig(max_new_tokens=3, probe_max_new_tokens=4)
    res = E.ab("base", f"run:{run_id}", test_file, config=other, limit=4).to_dict()
    assert res["reused"] == [] and res["n"] == 4
    assert E.ab("base", f"run:{run_id}", test_file, config=FAST, limit=6).to_dict()["reused"] == []  # other rows


def test_forgetting_limit_spreads_over_every_category(run_id: str) -> None:
    res = E.forgetting(run_id, config=FAST, limit=12).to_dict()
    total = len(E.load_probes())
    assert (res["probes"], res["probes_total"], res["limit"]) == (12, total, 12)
    assert len(res["categories"]) == 6 and len(res["items"]) == 12


def test_bad_limit_is_a_user_error(run_id: str, test_file: Path) -> None:
    from tools.errors import InputError

    with pytest.raises(InputError, match="limit"):
        E.evaluate_test(run_id, test_file, config=FAST, limit=0)
    assert R.spread([{"i": i} for i in range(5)], None) == [{"i": i} for i in range(5)]
    assert [d["i"] for d in R.spread([{"i": i} for i in range(10)], 4)] == [0, 2, 5, 7]
