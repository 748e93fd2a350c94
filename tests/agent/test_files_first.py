"""The user's files first (issue 26): the data and the test set are asked before anything else and read at
once; what they answer is pre-filled; the user's test set, given up front or by ``set test_set``, is the file
the prompt baseline and the tuned model are both measured on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.advisor import Advisor
from tests.agent.test_advisor_session import SCRIPT, drive


def _user_test(tmp_path: Path) -> str:
    test = tmp_path / "my_test.jsonl"
    test.write_text('{"messages": [{"role": "user", "content": "card?"}, {"role": "assistant", "content": "card"}]}\n')
    return str(test)


def test_files_are_asked_first_and_what_they_answer_is_not_asked(fake_tools: dict[str, Any], monkeypatch: Any) -> None:
    from agent import pipeline

    monkeypatch.setattr(pipeline, "task_profile", lambda path: {"output_kind": "label", "labels": ["a", "b", "c"]})
    adv = Advisor()
    step = adv.start()
    assert [step.question.id] == ["data"]
    step = adv.answer(fake_tools["data_file"])
    assert step.question.id == "test_set"
    step = adv.answer("")  # no test file: a held-out split of the data
    # the file was read before the task question: its rows are pre-filled, the label set suggests the kind
    assert fake_tools["calls"].names()[:2] == ["clean", "split"]
    assert step.question.id == "task" and step.question.default == "classification"
    assert "3 labels" in step.question.help
    assert step.derived["n_examples"]["value"] == 1100 and step.derived["test_set"]["value"].endswith("test.jsonl")
    step = adv.answer("")  # Enter takes the kind read from the data
    assert step.answers["task"] == "classification"


def test_the_users_test_set_is_the_one_every_step_measures_on(fake_tools: dict[str, Any], tmp_path: Path) -> None:
    mine = _user_test(tmp_path)
    adv = Advisor()
    answers = {**SCRIPT, "data": fake_tools["data_file"], "test_set": mine, "model": "smollm2-135m-instruct",
               "go_on": "yes", "max_steps": "20"}
    step = drive(adv, adv.start(), answers)
    assert step.kind == "done"
    calls = fake_tools["calls"]
    assert next(c for c in calls if c[0] == "prompt_eval")[1].test == str(Path(mine).resolve())
    assert next(c for c in calls if c[0] == "evaluate_test")[2] == str(Path(mine).resolve())
    assert "test_set" not in step.derived  # the user's answer stands; the split's test rows are not used


def test_set_test_set_at_a_later_question_takes_effect(fake_tools: dict[str, Any], tmp_path: Path) -> None:
    mine = _user_test(tmp_path)
    adv = Advisor()
    answers = {**SCRIPT, "data": fake_tools["data_file"], "test_set": "", "model": "smollm2-135m-instruct"}
    step = drive(adv, adv.start(), answers, stop_at="model")
    assert step.derived["test_set"]["value"] != mine  # the split's test rows, read from the data
    step = adv.change("test_set", mine)
    assert step.question.id == "model"  # the question pending before stays the one asked
    assert step.answers["test_set"] == str(Path(mine).resolve()) and "test_set" not in step.derived
    step = adv.answer("")
    assert next(c for c in fake_tools["calls"] if c[0] == "prompt_eval")[1].test == str(Path(mine).resolve())


def test_the_bar_is_the_users_when_typed_and_the_card_says_each_sentence_once(fake_tools: dict[str, Any]) -> None:
    from tui.screens.advisor import render_recommendation

    def finish(bar_answer: str) -> dict[str, Any]:
        adv = Advisor()
        answers = {**SCRIPT, "quality_target": bar_answer, "data": fake_tools["data_file"], "test_set": "",
                   "model": "smollm2-135m-instruct", "latency_budget_ms": "500", "go_on": "yes", "max_steps": "20"}
        step = drive(adv, adv.start(), answers)
        assert step.kind == "done"
        assert step.recommendation is not None
        return step.recommendation.to_dict()

    typed = finish("90%")  # the default's value, typed: the user's bar
    bar_reason = next(r for r in typed["reasons"] if r["rule"] == "dt.quality_bar")
    assert bar_reason["evidence"]["user_set"] is True and typed["quality_bar_user_set"] is True
    card = render_recommendation(typed)
    assert "accuracy 70% [60%, 80%] on 40 test rows" in card and "your bar 90%" in card
    assert "latency 12 ms (within your 500 ms budget)" in card
    assert typed["next_step"] and card.count(typed["next_step"].rstrip(".")) == 1
    taken = finish("")  # Enter alone: the default bar
    assert taken["quality_bar_user_set"] is False
    assert "the default bar 90%" in render_recommendation(taken)
