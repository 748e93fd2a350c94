"""The advisor view says its answer: the card before the pipeline question, values read from the data shown,
every rule one key away, and the learning curve as a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult

from tests.tui.fakes import FakeServices
from tests.tui.test_advisor_view import SIZE, wait_question
from tui.app import TunewiseApp
from tui.screens.advisor import AdvisorView, render_recommendation
from tui.widgets.charts import LearningCurveChart

REC = {"path": "prompts", "summary": "Stay with prompts for now: prompts reach 70% (reported) of your 95% bar; "
                                     "fine-tuning needs at least ~1,000 examples and you have 50.",
       "card": {"numbers": [{"name": "optimised prompt", "value": 0.7, "bar": 0.95, "source": "reported"},
                            {"name": "examples", "value": 50, "bar": 1000, "source": "reported"}],
                "deciding": [{"rule": "size.band.lt_100", "text": "Under 100 examples, prompts only."}],
                "what_would_change": ["with ≥1,000 examples: fine-tune with LoRA"]},
       "reasons": [{"rule": f"r.{i}", "text": f"reason {i}"} for i in range(25)]}


def test_the_card_leads_and_every_rule_is_one_key_away() -> None:
    card = render_recommendation(REC)
    assert "Stay with prompts for now" in card and "optimised prompt 70% vs 95% bar (reported)" in card
    assert "size.band.lt_100" in card and "with ≥1,000 examples: fine-tune with LoRA" in card
    assert "r.3" not in card and "25 rules cited: press w" in card
    full = render_recommendation(REC, full=True)
    assert all(f"r.{i}" in full for i in range(25))


def test_learning_curve_chart_draws_points_predictions_and_bar() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield LearningCurveChart(id="lc")

    async def run() -> str:
        app = Host()
        async with app.run_test(size=(70, 20)) as pilot:
            chart = app.query_one(LearningCurveChart)
            chart.set_curve({"points": [{"n": 750, "quality": 0.55, "ci95": [0.5, 0.6]},
                                        {"n": 3000, "quality": 0.68, "ci95": [0.63, 0.73]}],
                             "predictions": [{"factor": 10, "n": 30000, "quality": 0.82}],
                             "message": "At 3,000 examples the model reaches 68%."}, bar=0.9)
            await pilot.pause(0.05)
            return str(chart.render())

    import asyncio

    text = asyncio.run(run())
    assert text.count("●") == 2 + 1 and "○" in text and "╌" in text  # two points + the legend's mark
    assert "750 examples" in text and "30,000 (log scale)" in text and "reaches 68%" in text


async def test_the_recommendation_is_said_before_the_pipeline_question(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    from agent import graph
    from agent.advisor import Advisor

    monkeypatch.setattr(graph, "detect_device", lambda: {"kind": "cpu", "name": "x86_64", "gpus": 0,
                                                         "gpu_memory_gb": None})
    app = TunewiseApp(advisor_factory=lambda **kw: Advisor(**kw), services=FakeServices())
    answers: dict[str, Any] = {"task": "classification", "goals": "quality", "quality_target": "0.9", "data": "",
                               "test_set": "", "prompt_quality": "0.6", "optimized_prompt_quality": "0.7",
                               "n_examples": "3000", "latency_budget_ms": "", "consistency": "variable",
                               "prompt_dev_hours": "", "gpu_memory_gb": "none", "model_params_b": "0.135"}
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")
        view = app.query_one(AdvisorView)
        for _ in range(40):
            for _ in range(500):
                await pilot.pause(0.02)
                if view.step and view.step.kind == "question" and not view.busy:
                    break
            qid = view.step.question.id
            if qid == "go_on":
                break
            view._call("answer", answers[qid])
        q = await wait_question(pilot, "go_on")
        assert "about" in q.question.prompt and "on this machine" in q.question.prompt  # a time estimate first
        recs = app.query(".recommendation")
        assert recs, "the recommendation is in the conversation before the pipeline question"
        text = str(recs.last().render())
        assert "Fine-tune with LoRA" in text and "method.select.no_gpu" in text
        assert "what would change it" in text and "if optimised prompts reached 90%" in text
        cfs = [c["text"] for c in view.step.recommendation.what_would_change]
        assert "with a 16 GB GPU: fine-tune with QLoRA" in cfs


def test_set_changes_a_value_read_from_the_data() -> None:
    from tui.screens.advisor import parse_set

    assert parse_set("set n_examples 800") == ("n_examples", "800")
    assert parse_set("set test_set /data/my test.jsonl") == ("test_set", "/data/my test.jsonl")
    assert parse_set("set nonsense 1") is None and parse_set("800") is None and parse_set(800) is None
