"""Pilot-driven tests of the advisor conversation, through the real widgets and a fake Advisor."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, RadioSet, SelectionList

from tests.tui.fakes import FakeAdvisor, FakeServices
from tui.app import TunewiseApp
from tui.screens.advisor import AdvisorView
from tui.widgets.panels import Checklist, DecisionPath
from tui.widgets.question import QuestionInput

SIZE = (100, 30)


def make_app(**kw: Any) -> tuple[TunewiseApp, list[FakeAdvisor]]:
    made: list[FakeAdvisor] = []

    def factory(**kwargs: Any) -> FakeAdvisor:
        adv = FakeAdvisor(**kwargs, **kw)
        made.append(adv)
        return adv

    return TunewiseApp(advisor_factory=factory, services=FakeServices()), made


async def wait_question(pilot: Any, qid: str, *, error: bool = False) -> QuestionInput:
    for _ in range(500):
        await pilot.pause(0.02)
        found = pilot.app.query("#question")
        if found:
            q = found.first(QuestionInput)
            if q.question.id == qid and (q.question.error is not None) == error and not q.disabled:
                return q
    raise AssertionError(f"question {qid} never appeared")


async def type_into(pilot: Any, q: QuestionInput, text: str) -> None:
    field = q.query_one("#q-control", Input)
    field.value = ""
    field.focus()
    await pilot.press(*list(text))


async def test_first_screen_names_the_app_and_asks() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        q = await wait_question(pilot, "_start")
        assert "tunewise" in str(app.query_one("#conversation").query("Static").first().render())
        assert q.question.choices == ["my own task", "the built-in demo task"]
        for _ in range(100):
            if app.first_question_s is not None:
                break
            await pilot.pause(0.02)
        assert app.first_question_s is not None


async def test_answers_through_widgets_reach_a_recommendation() -> None:
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        q = await wait_question(pilot, "_start")
        await pilot.click("#q-submit")  # the default: my own task
        q = await wait_question(pilot, "n_examples")
        await type_into(pilot, q, "2500")
        await pilot.press("enter")
        q = await wait_question(pilot, "prompt_quality")
        await type_into(pilot, q, "72%")
        await pilot.press("enter")
        q = await wait_question(pilot, "task")
        assert app.focused is q.query_one(RadioSet)  # the options have focus as soon as the question is shown
        await pilot.press("down", "enter")  # Enter on the highlighted option answers: extraction
        q = await wait_question(pilot, "goals")
        sel = q.query_one(SelectionList)
        sel.select("latency")
        await pilot.click("#q-submit")
        q = await wait_question(pilot, "data_path")
        await type_into(pilot, q, __file__)
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.02)
            if app.query_one(AdvisorView).step and app.query_one(AdvisorView).step.kind == "done":
                break
        adv = made[0]
        assert adv.answers["n_examples"] == 2500
        assert abs(adv.answers["prompt_quality"] - 0.72) < 1e-9
        assert adv.answers["task"] == "extraction"
        assert set(adv.answers["goals"]) == {"quality", "latency"}
        assert app.query_one(AdvisorView).step.kind == "done"
        recs = app.query(".recommendation")
        assert recs and "Recommendation: fine tune" in str(recs.first().render())
        assert len(app.query_one(DecisionPath).reasons) == 5
        assert app.query_one(Checklist).done_count() == 2


async def test_bad_number_is_rejected_inline_and_reasked() -> None:
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")
        q = await wait_question(pilot, "n_examples")
        await type_into(pilot, q, "lots")
        await pilot.press("enter")
        await pilot.pause(0.05)
        err = q.query_one("#q-error")
        assert "not a number" in str(err.render())
        assert not err.has_class("-empty")
        assert made[0].calls == [("start", None)]  # never sent to the advisor
        await type_into(pilot, q, "-5")
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert "below the minimum" in str(q.query_one("#q-error").render())
        await type_into(pilot, q, "800")
        await pilot.press("enter")
        await wait_question(pilot, "prompt_quality")


async def test_advisor_rejection_is_shown_inline() -> None:
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")
        await wait_question(pilot, "n_examples")
        # bypass the widget's own check: the advisor's error must also appear inline
        app.query_one(AdvisorView)._call("answer", "many")
        q = await wait_question(pilot, "n_examples", error=True)
        assert "not a count" in str(q.query_one("#q-error").render())
        from tests.tui.test_long_work import views_mounted

        await views_mounted(pilot)  # ending before the lazy views mount races the shutdown on a busy machine


async def test_back_revises_the_previous_answer() -> None:
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")
        q = await wait_question(pilot, "n_examples")
        await type_into(pilot, q, "1500")
        await pilot.press("enter")
        await wait_question(pilot, "prompt_quality")
        await pilot.click("#q-back")
        q = await wait_question(pilot, "n_examples")
        assert "n_examples" not in made[0].answers
        await type_into(pilot, q, "3000")
        await pilot.press("enter")
        await wait_question(pilot, "prompt_quality")
        assert made[0].answers["n_examples"] == 3000


async def test_demo_choice_prefills_answers() -> None:
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("down", "enter")  # Enter answers with the highlighted option: the demo
        await wait_question(pilot, "prompt_quality")  # n_examples came pre-filled
        start_answers = made[0].calls[0][1]
        assert start_answers["data"].endswith("support_tickets.jsonl")
        assert start_answers["test_set"].endswith("support_tickets_test.jsonl")


async def test_below_minimum_size_shows_a_message() -> None:
    app, _ = make_app()
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause(0.05)
        msg = app.query_one("#too-small")
        assert msg.display and "80x24" in str(msg.render())
        assert not app.query_one("#main").display
        await pilot.resize_terminal(100, 30)
        await pilot.pause(0.05)
        assert app.query_one("#main").display


async def test_free_text_field_when_a_chat_model_is_configured() -> None:
    made: list[FakeAdvisor] = []

    def factory(**kwargs: Any) -> FakeAdvisor:
        made.append(FakeAdvisor(**kwargs))
        return made[-1]

    app = TunewiseApp(advisor_factory=factory, services=FakeServices(), chat=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")
        q = await wait_question(pilot, "n_examples")
        free = q.query_one("#q-free", Input)
        free.focus()
        await pilot.press(*"about 2500", "enter")
        await wait_question(pilot, "n_examples", error=True)  # the fake advisor rejects text; the chat model would parse it
        assert made[0].calls[-1] == ("answer", "about 2500")


async def test_path_suggester_completes_files(tmp_path: Any) -> None:
    from tui.widgets.question import PathSuggester

    (tmp_path / "tickets.jsonl").write_text("")
    (tmp_path / "splits").mkdir()
    s = PathSuggester()
    assert await s.get_suggestion(str(tmp_path / "tic")) == str(tmp_path / "tickets.jsonl")
    assert await s.get_suggestion(str(tmp_path / "spl")) == str(tmp_path / "splits") + "/"
    assert await s.get_suggestion(str(tmp_path / "nothing")) is None


def test_parse_answer_checks_types_and_ranges() -> None:
    from agent.api import Question
    from tui.widgets.question import parse_answer

    frac = Question(id="q", type="fraction", prompt="?")
    assert parse_answer(frac, "90%") == (0.9, None)
    assert parse_answer(frac, "1.5")[1] == "1.5 is above the maximum of 1"
    num = Question(id="n", type="number", prompt="?", minimum=0)
    assert parse_answer(num, "1_200") == (1200, None)
    assert parse_answer(num, "abc")[1] == "'abc' is not a number"
    optional = Question(id="o", type="number", prompt="?", required=False)
    assert parse_answer(optional, "") == (None, None)
    path = Question(id="p", type="path", prompt="?")
    assert "no file" in str(parse_answer(path, "/definitely/not/here")[1])


PIPELINE = {
    "clean": {"input_rows": 488, "kept_rows": 480, "removed": {"exact_duplicate": 6, "empty_output": 1},
              "flagged": {}, "examples": {}, "histograms": {}},
    "split": {"train": 336, "val": 72, "test": 72, "files": {"train": "/tmp/s/train.jsonl", "val": "/tmp/s/val.jsonl",
                                                             "test": "/tmp/s/test.jsonl"}},
    "train": {"run_id": "train-demo", "status": "completed", "best_val_loss": 0.42, "steps": 30,
              "train_seconds": 95.0, "peak_memory_mb": 900.0},
    "evaluate": {"quality": 0.9, "ci95": [0.81, 0.95], "n": 72, "metric": "accuracy", "vs": {}},
}


async def test_pipeline_results_fill_the_views() -> None:
    app, made = make_app(pipeline=PIPELINE)
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")
        view = app.query_one(AdvisorView)
        adv_answers = {"n_examples": 2000, "prompt_quality": 0.7, "task": "classification", "goals": ["quality"],
                       "data_path": __file__}
        for qid, value in adv_answers.items():
            await wait_question(pilot, qid)
            view._call("answer", value)
        for _ in range(300):
            await pilot.pause(0.02)
            if view.step and view.step.kind == "done":
                break
        await pilot.pause(0.1)
        rec = str(app.query(".recommendation").first().render())
        assert "kept 480 of 488" in rec and "train-demo" in rec
        assert "train-demo" in str(app.query_one("#train-stats").render())
        assert app.query_one("#eval-run", Input).value == "train-demo"
        assert app.query_one("#eval-test", Input).value == "/tmp/s/test.jsonl"
        assert "90.0%" in str(app.query_one("#eval-summary").render())
        assert "488 rows, 480 kept" in str(app.query_one("#data-summary").render())


async def test_works_at_80x24() -> None:
    app, made = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_question(pilot, "_start")
        assert not app.screen.has_class("-too-small")
        await pilot.click("#q-submit")  # raises OutOfBounds if the button were off screen
        q = await wait_question(pilot, "n_examples")
        await type_into(pilot, q, "1500")
        await pilot.click("#q-submit")
        q = await wait_question(pilot, "prompt_quality")
        await pilot.click("#q-back")
        await wait_question(pilot, "n_examples")


async def test_advisor_progress_reaches_the_live_views() -> None:
    from tui.widgets.charts import LossChart

    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")
        view = app.query_one(AdvisorView)
        for qid, value in (("n_examples", 2000), ("prompt_quality", 0.7), ("task", "classification"),
                           ("goals", ["quality"])):
            await wait_question(pilot, qid)
            view._call("answer", value)
        await wait_question(pilot, "data_path")
        await pilot.pause(0.1)
        assert app.query_one(LossChart).point_count("train") == 1
        assert "few_shot → 60.0%" in str(app.query_one("#prompt-summary").render())
