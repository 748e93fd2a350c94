"""Keys that always work (issue 26): focus comes back to the question after a view switch, F-keys work from a
focused field or table, Enter answers every question type with the default honoured, the words a question's
help offers are accepted, and the commands the app suggests work wherever they can be typed."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Input, RadioSet, SelectionList, TabbedContent

from agent.api import Question
from tests.tui import fakes
from tests.tui.test_advisor_view import SIZE, make_app, type_into, wait_question
from tui.screens.advisor import AdvisorView
from tui.widgets.question import QuestionInput, parse_answer, parse_command


async def settle(pilot: Any, cond: Any, n: int = 200) -> None:
    for _ in range(n):
        if cond():
            return
        await pilot.pause(0.02)
    raise AssertionError("the condition never held")


async def test_focus_returns_to_the_question_after_every_view_and_enter_answers() -> None:
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")  # the default: my own task
        q = await wait_question(pilot, "n_examples")
        tabs = app.query_one("#tabs", TabbedContent)
        for key, tab in (("f2", "data"), ("f3", "prompt"), ("f4", "training"), ("f5", "runs"), ("f6", "evaluation")):
            await pilot.press(key)
            await settle(pilot, lambda t=tab: tabs.active == t)
            await pilot.press("f1")
            await settle(pilot, lambda: tabs.active == "advisor")
            await settle(pilot, lambda: app.focused is q.query_one("#q-control"))
        field = q.query_one("#q-control", Input)
        field.value = ""
        await pilot.press(*"2500", "enter")  # typed straight into the question: no click, no Tab
        await wait_question(pilot, "prompt_quality")
        assert made[0].answers["n_examples"] == 2500


@pytest.mark.parametrize(("key", "tab", "field"), [
    ("f2", "data", "#data-path"), ("f3", "prompt", "#prompt-data"), ("f4", "training", "#train-data"),
    ("f5", "runs", "#runs-filter"), ("f6", "evaluation", "#eval-run")])
async def test_each_view_takes_typing_after_a_switch_and_f_keys_leave_its_field(key: str, tab: str, field: str) -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        tabs = app.query_one("#tabs", TabbedContent)
        await pilot.press(key)
        await settle(pilot, lambda: tabs.active == tab)
        await pilot.press("f1", key)  # away and back
        await settle(pilot, lambda: app.focused is app.query_one(field))
        await pilot.press(*"abc")
        assert app.query_one(field, Input).value.endswith("abc")
        await pilot.press("f1")  # an F-key from inside the focused field still switches views
        await settle(pilot, lambda: tabs.active == "advisor")


async def test_f_keys_work_from_the_focused_runs_table() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        tabs = app.query_one("#tabs", TabbedContent)
        await pilot.press("f5")
        await settle(pilot, lambda: tabs.active == "runs")
        table = app.query_one("#runs-table", DataTable)
        table.focus()
        await pilot.pause(0.05)
        assert app.focused is table
        await pilot.press("f6")
        await settle(pilot, lambda: tabs.active == "evaluation")


async def test_enter_in_the_data_path_field_inspects_the_new_file(tmp_path: Any) -> None:
    app, _ = make_app()
    calls: list[str] = []
    app.services.inspect_data = lambda path, **kw: calls.append(path) or {  # type: ignore[method-assign]
        "path": path, "format": "csv", "rows": 0, "valid_rows": 0, "invalid_rows": 0, "problems": []}
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("f2")
        await settle(pilot, lambda: app.focused is app.query_one("#data-path"))
        await pilot.press(*str(empty), "enter")
        await settle(pilot, lambda: calls == [str(empty)])
        summary = app.query_one("#data-summary")
        await settle(pilot, lambda: "no rows" in str(summary.render()))  # an empty file warns, not "0 rows" alone


def _questions(monkeypatch: pytest.MonkeyPatch, *qs: Question) -> None:
    monkeypatch.setattr(fakes, "QUESTIONS", list(qs))
    monkeypatch.setattr(fakes, "RULES", {q.id: f"rule.{q.id}" for q in qs})


async def test_enter_answers_a_multi_select_and_space_toggles(monkeypatch: pytest.MonkeyPatch) -> None:
    _questions(monkeypatch, Question(id="goals", type="multi_choice", prompt="What do you want to improve?",
                                     choices=["quality", "latency", "cost"], default=["quality"], required=False),
               Question(id="end", type="number", prompt="?"))
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")
        q = await wait_question(pilot, "goals")
        assert app.focused is q.query_one(SelectionList)
        await pilot.press("down", "space")  # space ticks "latency"; the box list keeps the focus
        assert q.question.id == "goals" and set(q.query_one(SelectionList).selected) == {"quality", "latency"}
        await pilot.press("enter")  # Enter answers (it used to toggle the highlighted box)
        await wait_question(pilot, "end")
        assert set(made[0].answers["goals"]) == {"quality", "latency"}


@pytest.mark.parametrize(("default", "expected"), [(False, False), (True, True)])
async def test_yes_no_starts_on_its_default_so_enter_keeps_it(monkeypatch: pytest.MonkeyPatch, default: bool,
                                                               expected: bool) -> None:
    _questions(monkeypatch, Question(id="go_on", type="yes_no", prompt="Train now?", default=default, required=False),
               Question(id="end", type="number", prompt="?"))
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")
        q = await wait_question(pilot, "go_on")
        rs = q.query_one(RadioSet)
        await settle(pilot, lambda: rs._selected == (1 if not default else 0))
        await pilot.press("enter")
        await wait_question(pilot, "end")
        assert made[0].answers["go_on"] is expected


def test_the_gpu_question_takes_every_word_its_help_offers() -> None:
    from agent.questions import question

    q = question("gpu_memory_gb")
    assert "'none'" in q.prompt
    for word in ("none", "None", "no gpu", "cpu", "0"):
        assert parse_answer(q, word) == (0.0 if word != "0" else 0, None), word
    assert parse_answer(q, "24 GB") == (24.0, None)
    assert parse_answer(q, "lots")[1] == "'lots' is not a number"


async def test_none_typed_for_the_gpu_reaches_the_advisor(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.questions import question

    _questions(monkeypatch, question("gpu_memory_gb"), Question(id="end", type="number", prompt="?"))
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")
        q = await wait_question(pilot, "gpu_memory_gb")
        await type_into(pilot, q, "none")
        await pilot.press("enter")
        await wait_question(pilot, "end")
        assert made[0].answers["gpu_memory_gb"] == 0.0


def test_parse_command_tells_commands_from_answers() -> None:
    assert parse_command("set test_set test.csv") == ("set", ["test_set", "test.csv"])
    assert parse_command("back") == ("back", [])
    assert parse_command("why") == ("why", [])
    assert parse_command("back pain clinic") is None
    assert parse_command("smollm2-135m-instruct") is None


async def test_set_typed_at_a_text_question_changes_the_answer_and_keeps_the_question(tmp_path: Any,
                                                                                      monkeypatch: pytest.MonkeyPatch
                                                                                      ) -> None:
    _questions(monkeypatch, Question(id="model", type="text", prompt="Which model?", default="smollm2-135m-instruct",
                                     required=False), Question(id="end", type="number", prompt="?"))
    test = tmp_path / "test.csv"
    test.write_text("text,intent\nhi,greet\n")
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")
        q = await wait_question(pilot, "model")
        await type_into(pilot, q, f"set test_set {test}")
        await pilot.press("enter")
        await settle(pilot, lambda: ("change", ("test_set", str(test))) in made[0].calls)
        q = await wait_question(pilot, "model")  # the model question is still the one asked
        assert q.query_one("#q-control", Input).value == "smollm2-135m-instruct"
        await type_into(pilot, q, "set nonsense 3")
        await pilot.press("enter")
        view = app.query_one(AdvisorView)
        await settle(pilot, lambda: any("no answer named 'nonsense'" in str(s.render())
                                        for s in view.query(".rejected")))
        assert ("change", ("nonsense", "3")) not in made[0].calls


async def test_commands_and_unknown_text_at_a_choice_question(monkeypatch: pytest.MonkeyPatch) -> None:
    _questions(monkeypatch, Question(id="task", type="choice", prompt="Kind?", choices=["classification", "other"],
                                     default="classification"), Question(id="end", type="number", prompt="?"))
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")
        q = await wait_question(pilot, "task")
        free = q.query_one("#q-free", Input)
        free.focus()
        await pilot.press(*"hello there", "enter")
        err = q.query_one("#q-error")
        await settle(pilot, lambda: "not understood" in str(err.render()))  # said, never dropped
        assert not any(c[0] == "answer" for c in made[0].calls)
        free.value = ""
        await pilot.press(*"why", "enter")
        await settle(pilot, lambda: ("why", None) in made[0].calls)
        view = app.query_one(AdvisorView)
        await settle(pilot, lambda: any("rule.task" in str(s.render()) for s in view.query(".note")))
        assert isinstance(app.query_one("#question"), QuestionInput)
