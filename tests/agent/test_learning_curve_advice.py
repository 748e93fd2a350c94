"""The data-size criterion reads a measured learning curve: its reason changes with the curve."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent import routing
from agent.advisor import Advisor
from tests.agent.test_advisor_session import SCRIPT, drive
from tools.evaluate.learning_curve import fit_curve


def curve(points: list[tuple[int, float]], *, bar: float, rows: int = 400) -> dict[str, Any]:
    """A curve document as tools.evaluate.learning_curve writes it, from (n, quality) points on ``rows`` test rows."""
    items = [(n, [1.0] * round(q * rows) + [0.0] * (rows - round(q * rows))) for n, q in points]
    fit = fit_curve(items, bar=bar)
    return {"points": [{"n": n, "quality": q, "ci95": [max(0, q - 0.05), min(1, q + 0.05)]} for n, q in points],
            "can_extrapolate": fit.can_extrapolate, "why_not": fit.why_not, "predictions": fit.predictions,
            "n_to_bar": fit.n_to_bar, "n_to_bar_band": fit.n_to_bar_band, "bar": bar, "cost_seconds": 300.0}


RISING = [(750, 1 - 4 * 750 ** -0.35), (1500, 1 - 4 * 1500 ** -0.35), (3000, 1 - 4 * 3000 ** -0.35)]


def test_the_size_reason_changes_with_the_curve() -> None:
    _, plain = routing.dataset_size(3000)
    assert [r.rule for r in plain] == ["size.band.1k_10k", "ftw.min_examples"]

    decision, reasons = routing.dataset_size(3000, curve=curve(RISING, bar=0.85), bar=0.85)
    lc = reasons[1]
    assert decision == "continue" and lc.rule == "lc.reaches_bar"
    assert lc.text.startswith("At 3,000 examples the model reaches 76% [71%–81%]")
    assert "reaches your 85% bar at about" in lc.text and lc.evidence["n_to_bar"] > 3000

    _, reasons = routing.dataset_size(3000, curve=curve(RISING, bar=0.99), bar=0.99)
    assert reasons[1].rule == "lc.below_bar" and "will not reach your 99% bar" in reasons[1].text
    assert "larger base model" in reasons[1].text

    flat = curve([(750, 0.60), (1500, 0.605), (3000, 0.61)], bar=0.9)
    _, reasons = routing.dataset_size(3000, curve=flat, bar=0.9)
    assert reasons[1].rule == "lc.cannot_extrapolate" and "too flat to extrapolate" in reasons[1].text


def test_too_noisy_curve_leaves_the_band_alone() -> None:
    noisy = curve([(100, 0.20), (200, 0.50), (400, 0.35)], bar=0.9, rows=20)
    assert noisy["why_not"] == "too noisy"
    decision, reasons = routing.dataset_size(400, curve=noisy, bar=0.9)
    assert decision == "collect_more_data"  # the seed's band stands on its own
    assert [r.rule for r in reasons] == ["size.band.100_1k", "lc.cannot_extrapolate"]
    assert "too noisy to extrapolate" in reasons[1].text


def test_a_curve_already_at_the_bar_outranks_the_band() -> None:
    at_bar = curve([(200, 0.80), (400, 0.88), (800, 0.93)], bar=0.9)
    decision, reasons = routing.dataset_size(800, curve=at_bar, bar=0.9)
    assert decision == "continue" and reasons[1].rule == "lc.reaches_bar" and "already at your 90% bar" in reasons[1].text
    assert routing.decide({"bar": 0.9, "prompt_quality": 0.6, "optimized_quality": 0.7, "goals": ["quality"],
                           "n_examples": 800, "gpu_memory_gb": 24, "gpus": 1}, at_bar)["path"] == "fine_tune"


@dataclass
class FakeCurveConfig:
    train: str
    test: str
    model: str = ""
    bar: float | None = None
    max_steps: int | None = None
    per_device_batch_size: int = 8
    test_rows: int | None = None
    method: str = "lora"
    learning_rate: float | None = None


@pytest.mark.parametrize("points,rule", [(RISING, "lc.below_bar"),  # the 90% bar needs ~37,000: beyond 10x
                                         ([(750, 0.60), (1500, 0.605), (3000, 0.61)], "lc.cannot_extrapolate")])
def test_the_pipeline_step_feeds_the_size_criterion(fake_tools: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                    points: list[tuple[int, float]], rule: str) -> None:
    seen: list[Any] = []

    class Result:
        def to_dict(self) -> dict[str, Any]:
            return curve(points, bar=0.9)

    def learning_curve(config: FakeCurveConfig, *, on_progress: Any = None) -> Result:
        seen.append(config)
        return Result()

    mod = types.ModuleType("tools.evaluate.learning_curve")
    mod.CurveConfig = FakeCurveConfig  # type: ignore[attr-defined]
    mod.learning_curve = learning_curve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tools.evaluate.learning_curve", mod)
    answers = {**SCRIPT, "test_set": fake_tools["test_file"], "model": "smollm2-135m-instruct", "go_on": "yes",
               "data": fake_tools["data_file"], "max_steps": "20", "learning_curve": "yes"}
    adv = Advisor()
    step = drive(adv, adv.start(), answers)
    assert step.kind == "done"
    assert seen and seen[0].train.endswith("train.jsonl") and seen[0].bar == 0.9 and seen[0].test_rows == 40
    rec = step.recommendation
    assert not rec.pipeline.get("errors"), rec.pipeline.get("errors")
    assert rec.learning_curve["points"][-1]["n"] == 3000
    cited = [r["rule"] for r in rec.reasons]
    assert rule in cited and cited.count("size.band.1k_10k") == 1  # beside the band, each rule once
    assert "learning_curve" in rec.pipeline["timings"]


# ------------------------------------------------------------------ after the pipeline: what was measured

def test_outcome_summary_from_the_measurements_and_the_use(fake_tools: dict[str, Any]) -> None:
    """The public 150-intent case: the check run beats the prompt by 7 points (10 needed) and forgets."""
    from agent import pipeline

    fake_tools["test_quality"] = 0.225
    state = {"bar": 0.9, "best_prompt_quality": 0.153, "answers": {"use": "dedicated"},
             "plan": {"hyperparameters": {"epochs": 3}, "short_run": {"effective_batch_size": 8}},
             "pipeline": {"evaluate": {"quality": 0.225, "n": 40, "ci95": [0.12, 0.38]},
                          "train": {"steps": 150, "train_seconds": 600.0}, "split": {"train": 3000},
                          "forgetting": {"verdict": "degraded by 45.8 points", "degraded": True, "base_score": 0.6,
                                         "tuned_score": 0.142}}}
    out = pipeline.outcome_summary(state)
    assert out["verdict"] == "not_yet"
    s = out["summary"]
    assert s.startswith("The check run scores 22.5% [12%–38%] on 40 test rows against your 90% bar (+7.2 points")
    assert "10% needed" in s and "45.8 points" in s and "dedicated model can afford" in s
    assert out["full_run"]["full_run_steps"] == 1125 and "about 75 min on this machine" in s  # 4 s x 1,125 steps
    assert [c["text"] for c in out["what_would_change"]] == ["if the check run reached 25.4%: a full run is worth trying",
                                                             "if the check run reached 90.0%: train the full run"]
    assistant = pipeline.outcome_summary({**state, "answers": {"use": "assistant"}})
    assert "a defect for an assistant" in assistant["summary"]
    unsure = pipeline.outcome_summary({**state, "answers": {}})
    assert "fine for a dedicated classifier, a defect for an assistant" in unsure["summary"]


def test_forgetting_asks_what_the_model_is_for(fake_tools: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    ev = sys.modules["tools.evaluate"]
    monkeypatch.setattr(ev, "forgetting", lambda run_id, **kw: {"verdict": "degraded by 30.0 points",
                                                                "degraded": True, "base_score": 0.6,
                                                                "tuned_score": 0.3})
    answers = {**SCRIPT, "test_set": fake_tools["test_file"], "model": "smollm2-135m-instruct", "go_on": "yes",
               "data": fake_tools["data_file"], "max_steps": "20"}
    answers.pop("use")
    adv = Advisor()
    step = drive(adv, adv.start(), answers, stop_at="use")
    assert step.question.id == "use" and step.question.choices == ["dedicated", "assistant", "not_sure"]
    step = adv.answer("assistant")
    rec = step.recommendation
    assert step.kind == "done" and "use.assistant" in [r["rule"] for r in rec.reasons]
    assert "a defect for an assistant" in rec.summary and rec.pre_pipeline_summary.startswith("Fine-tune")
    assert rec.next_step and rec.outcome["timings"]["train_model"] >= 0
    from tools.runlog import RunLog

    # the check run's training time is recorded beside its estimate: 5 steps at this machine's pace
    trained = RunLog().query("SELECT units, actual_s, estimate_s FROM time_estimates WHERE kind = 'train'")
    assert len(trained) == 1 and trained[0]["units"] == 5 and trained[0]["actual_s"] == 1.0
    assert trained[0]["estimate_s"] > 0


def test_a_long_prompt_baseline_is_estimated_before_and_timed_after(fake_tools: dict[str, Any],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import estimate_time
    from tools.types import ProgressEvent

    monkeypatch.setattr(estimate_time, "load_now", lambda: (0.0, 2))  # an idle 2-core machine

    big = Path(fake_tools["test_file"]).with_name("big_test.jsonl")
    big.write_text(Path(fake_tools["test_file"]).read_text() * 200)
    events: list[ProgressEvent] = []
    adv = Advisor(on_progress=events.append)
    step = adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "",
                      "test_set": str(big), "model": "smollm2-135m-instruct"})
    first = next(e for e in events if e.stage == "prompt_eval")
    # 200 rows x 5 variants x 0.37 s: nothing measured on this machine yet, so the cost table, said so
    assert first.message.startswith("at most about 6 min on this machine, less when the answer is clear early "
                                    "(estimate: 0.37 s a row x variant from the cost table (nothing measured here "
                                    "yet), other work on 0.0 of 2 cores now")
    measured = adv._graph.get_state(adv._config).values["measured"]
    assert measured["estimate_seconds"] == 370.0 and measured["seconds"] >= 0
    assert step.kind in ("question", "done")
    from tools.runlog import RunLog

    logged = RunLog().query("SELECT kind, estimate_s, actual_s, shape, load_1m FROM time_estimates")
    assert logged == [{"kind": "prompt_eval", "estimate_s": 370.0, "actual_s": measured["seconds"], "shape": "label",
                       "load_1m": 0.0}]


# ------------------------------------------------------------------ read before asking

def test_a_data_file_answers_the_counts_and_the_test_set(fake_tools: dict[str, Any]) -> None:
    """Given a data file and an empty answer for the test set (asked right after the data, issue 26): no
    question about counts; the held-out split of the file measures the prompt; each derived value is shown and
    can be changed."""
    adv = Advisor()
    step = adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9,
                      "data": fake_tools["data_file"], "model": "smollm2-135m-instruct"})
    asked: list[str] = []
    while step.kind == "question":
        asked.append(step.question.id)
        step = adv.answer({"gpu_memory_gb": "none"}.get(step.question.id, step.question.default))
    assert asked[0] == "test_set"  # the user's files first: an empty answer means "split my data"
    assert not {"n_examples", "prompt_quality", "model_params_b"} & set(asked), asked
    names = fake_tools["calls"].names()
    assert names[:3] == ["clean", "split", "prompt_eval"]
    pe_config = fake_tools["calls"][2][1]
    assert pe_config.test.endswith("split/test.jsonl")
    assert step.derived["n_examples"]["value"] == 1100 and "1100 usable rows" in step.derived["n_examples"]["from"]
    assert step.derived["test_set"]["value"] == pe_config.test
    assert step.recommendation.prompt_quality["measured"] is True
    assert step.recommendation.card.numbers[-1]["source"] == "measured"  # counted, not reported
    assert "data.derived" in [r["rule"] for r in step.recommendation.reasons]
    # a derived value can be replaced: the decisions re-run with the user's number
    changed = adv.change("n_examples", 50)
    assert changed.answers["n_examples"] == 50 and "n_examples" not in changed.derived
    assert changed.recommendation.path == "prompts"
    assert "you have 50" in changed.recommendation.summary


def test_outcome_names_the_metric_and_uses_the_paired_difference(fake_tools: dict[str, Any]) -> None:
    """Issue 14: the same rows and metric decide; a similarity (chrF) is compared head to head, not with the bar."""
    from agent import pipeline

    paired = {"metric": "label_accuracy", "share": True, "n": 40, "tuned_quality": 0.40, "prompt_quality": 0.20,
              "diff": 0.20, "diff_ci95": [0.05, 0.35]}
    state = {"bar": 0.9, "best_prompt_quality": 0.153, "answers": {"use": "dedicated"},
             "pipeline": {"evaluate": {"quality": 0.40, "n": 40, "ci95": [0.26, 0.55], "metric": "label_accuracy",
                                       "share": True, "vs": {"prompt_baseline": {"quality": 0.20}}},
                          "paired": paired}}
    out = pipeline.outcome_summary(state)
    assert out["verdict"] == "worth_a_full_run" and "label_accuracy on 40 test rows" in out["summary"]
    assert "paired 95% CI [+5.0, +35.0]" in out["summary"] and "not shown" not in out["summary"]
    roi = next(r for r in pipeline.outcome_reasons(state) if r.rule == "roi.worth_it")
    assert roi.evidence["best_prompt_quality"] == 0.20 and roi.evidence["metric"] == "label_accuracy"
    assert "on the same 40 rows by label_accuracy" in roi.text

    # the gain's CI includes 0: said so
    unsure = {**state, "pipeline": {**state["pipeline"], "paired": {**paired, "diff_ci95": [-0.05, 0.45]}}}
    assert "not shown to be better" in pipeline.outcome_summary(unsure)["summary"]

    # chrF 95% is not "95% acceptable": no bar verdict, the prompt is the yardstick
    chrf = {"bar": 0.9, "answers": {},
            "pipeline": {"evaluate": {"quality": 0.95, "n": 30, "metric": "chrf", "share": False,
                                      "vs": {"prompt_baseline": {"quality": 0.93}}},
                         "paired": {**paired, "metric": "chrf", "share": False, "prompt_quality": 0.93,
                                    "diff": 0.02, "diff_ci95": [-0.01, 0.05]}}}
    out = pipeline.outcome_summary(chrf)
    assert out["verdict"] == "not_yet" and "compared head to head with the prompt" in out["summary"]
    assert all("90.0%" not in c["text"] for c in out["what_would_change"])


def test_read_data_profiles_the_cleaned_rows(tmp_path: Path) -> None:
    """The profile comes from the cleaned file itself (a clean report's "examples" are removed rows per reason)."""
    from agent import pipeline

    rows = [{"messages": [{"role": "user", "content": f"my card {i} has not arrived"},
                          {"role": "assistant", "content": "card_arrival" if i % 2 else "refund"}]} for i in range(20)]
    f = tmp_path / "clean.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prof = pipeline.task_profile(str(f))
    assert prof is not None and prof["output_kind"] == "label" and sorted(prof["labels"]) == ["card_arrival", "refund"]


def test_choice_mode_is_reported_beside_generation_which_decides() -> None:
    """Issue 14: both modes where both apply; the advisor says which one the recommendation assumes."""
    from agent import pipeline

    evaluation = {"quality": 0.40, "n": 40, "metric": "label_accuracy", "share": True,
                  "vs": {"prompt_baseline": {"quality": 0.20, "variant": "prompt:p", "diff": 0.20,
                                             "diff_ci95": [0.05, 0.35]}},
                  "choice": {"mode": "choice", "metric": "label_accuracy", "quality": 0.85, "n": 40,
                             "vs": {"prompt_baseline": {"quality": 0.30, "diff": 0.55, "diff_ci95": [0.4, 0.7]}}}}
    paired = pipeline.paired_vs_prompt(evaluation)
    assert paired is not None and paired["mode"] == "generation" and paired["diff"] == 0.20
    assert paired["choice"] == {"metric": "label_accuracy", "n": 40, "tuned_quality": 0.85, "prompt_quality": 0.30,
                                "diff": 0.55, "diff_ci95": [0.4, 0.7]}
    state = {"bar": 0.9, "answers": {}, "pipeline": {"evaluate": evaluation, "paired": paired}}
    reasons = pipeline.outcome_reasons(state)
    roi = next(r for r in reasons if r.rule == "roi.worth_it")
    assert roi.evidence["gain"] == 0.20  # generation decides, not the larger choice-mode gain
    choice = next(r for r in reasons if r.rule == "eval.choice_mode")
    assert "85.0%" in choice.text and "30.0%" in choice.text and "assumes free generation" in choice.text
    # without a choice block (free text, an endpoint) nothing is said about choice mode
    plain = {**evaluation, "choice": None}
    state = {"bar": 0.9, "answers": {}, "pipeline": {"evaluate": plain, "paired": pipeline.paired_vs_prompt(plain)}}
    assert not any(r.rule == "eval.choice_mode" for r in pipeline.outcome_reasons(state))
