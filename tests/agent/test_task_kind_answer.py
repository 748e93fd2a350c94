"""The advisor's task answer outranks the kind guessed from the rows (issue 22, item 5)."""

from __future__ import annotations

from typing import Any

import pytest

from agent import pipeline


def test_the_task_answer_implies_a_kind_only_where_the_rules_say_so() -> None:
    assert pipeline.task_kind_of("classification") == "label"
    assert pipeline.task_kind_of("multi_step_reasoning") is None  # worked steps without a marked answer are prose
    assert pipeline.task_kind_of("other") is None and pipeline.task_kind_of(None) is None


def test_measure_prompts_passes_the_answer_to_prompt_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_call_tool(name: str, fn: Any, config: Any, **kw: Any) -> dict[str, Any]:
        seen["config"] = config
        return {"quality": 0.5, "ci95": [0.4, 0.6], "metric": "label_accuracy", "n": 10, "variants": [],
                "task_profile": {"output_kind": "label", "source": "user", "detected_kind": "short_answer",
                                 "reason": "150 of 150 outputs are a few words on one line"}}

    monkeypatch.setattr(pipeline, "call_tool", fake_call_tool)
    summary = pipeline.measure_prompts("test.csv", "smollm2-135m-instruct", bar=0.9, task="classification")
    assert seen["config"].task_kind == "label"
    # the disagreement travels with the baseline, for the card to show
    assert summary["baseline"]["task_profile"]["detected_kind"] == "short_answer"
    pipeline.measure_prompts("test.csv", "smollm2-135m-instruct", bar=0.9, task="tone")
    assert seen["config"].task_kind is None
