"""Answer validation: numbers, fractions, choices, yes/no, paths; a bad value gives a reason, never an exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.questions import QUESTIONS, coerce, validate_answers

CONTRACT_IDS = {"task", "goals", "quality_target", "prompt_quality", "optimized_prompt_quality", "test_set",
                "n_examples", "latency_budget_ms", "consistency", "gpu_memory_gb", "gpus", "model_params_b",
                "prompt_dev_hours", "hourly_rate", "data_prep_hours", "training_cost"}


def test_contract_ids_exist() -> None:
    assert set(QUESTIONS) >= CONTRACT_IDS
    assert QUESTIONS["task"].choices[-1] == "other" and len(QUESTIONS["task"].choices) == 9
    assert QUESTIONS["consistency"].choices == ["variable", "high", "perfect"]


@pytest.mark.parametrize("qid,raw,value", [
    ("prompt_quality", "85%", 0.85), ("prompt_quality", 0.85, 0.85), ("prompt_quality", "85", 0.85),
    ("prompt_quality", "1", 1.0), ("prompt_quality", " 0.5 ", 0.5),
    ("n_examples", "2k", 2000), ("n_examples", "1,500", 1500), ("n_examples", 3000.0, 3000),
    ("gpu_memory_gb", "24GB", 24.0), ("latency_budget_ms", "200ms", 200.0), ("hourly_rate", "$100", 100.0),
    ("task", "Multi-step reasoning", "multi_step_reasoning"), ("task", "1", "classification"),
    ("goals", "quality, latency", ["quality", "latency"]), ("goals", ["tone_style"], ["tone_style"]),
    ("go_on", "y", True), ("go_on", "No", False), ("go_on", True, True),
    ("quality_target", "", 0.90), ("latency_budget_ms", "", None), ("consistency", "", "variable"),
])
def test_valid(qid: str, raw: Any, value: Any) -> None:
    ok, got, reason = coerce(QUESTIONS[qid], raw)
    assert ok, reason
    assert got == pytest.approx(value) if isinstance(value, float) else got == value


@pytest.mark.parametrize("qid,raw,words", [
    ("prompt_quality", "150%", "at most 1"), ("prompt_quality", "good", "not a number"), ("prompt_quality", "", "required"),
    ("n_examples", "2.5", "whole number"), ("n_examples", "-3", "at least 0"), ("n_examples", True, "yes/no"),
    ("gpus", "0", "at least 1"), ("task", "sorting", "one of"), ("goals", "quality, telepathy", "telepathy"),
    ("go_on", "maybe", "yes or no"), ("test_set", "/no/such/file.jsonl", "does not exist"),
    ("model_params_b", "nan", "not a number"), ("model_params_b", float("inf"), "finite"),
])
def test_invalid(qid: str, raw: Any, words: str) -> None:
    ok, value, reason = coerce(QUESTIONS[qid], raw)
    assert not ok and value is None and reason and words in reason


def test_path_is_resolved(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text("{}\n")
    assert coerce(QUESTIONS["test_set"], str(f)) == (True, str(f.resolve()), None)


def test_validate_answers_keeps_unknown_ids_and_reports_bad_ones() -> None:
    values, errors = validate_answers({"n_examples": "3k", "custom": 1, "task": "nope"})
    assert values == {"n_examples": 3000, "custom": 1} and set(errors) == {"task"}


def test_aliases_map_onto_question_ids() -> None:
    values, errors = validate_answers({"data_path": __file__, "demo": True})
    assert not errors and values["data"].endswith("test_questions.py") and values["demo"] is True
