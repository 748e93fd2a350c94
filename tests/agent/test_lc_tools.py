"""The advisor's functions as LangChain tools with typed schemas; the GPU default comes from detection."""

from __future__ import annotations

from typing import Any

import pytest

from agent.lc_tools import all_tools
from agent.lc_tools.advisor import TOOLS as ADVISOR_TOOLS
from agent.lc_tools.reference import TOOLS as REFERENCE_TOOLS

TOOLS = REFERENCE_TOOLS + ADVISOR_TOOLS


def test_tools_have_typed_schemas_and_are_registered() -> None:
    names = {t.name for t in all_tools()}
    assert {t.name for t in TOOLS} <= names
    schema = {t.name: t.args for t in TOOLS}
    assert schema["recommend_method"]["gpu_memory_gb"]["type"] == "number"
    assert schema["training_plan"]["method"]["enum"] == ["full", "lora", "qlora"]
    assert schema["advise"]["answers"]["type"] == "object"


def test_tools_answer_from_the_knowledge() -> None:
    by = {t.name: t for t in TOOLS}
    assert by["recommend_method"].invoke({"gpu_memory_gb": 16})["method"] == "qlora"
    plan = by["training_plan"].invoke({"model_params_b": 7, "method": "lora", "n_examples": 3000, "gpu_memory_gb": 40})
    assert plan["hyperparameters"]["learning_rate"] == 2e-4 and plan["split"]["train"] == 0.7
    from agent.lc_tools.evaluate import fine_tune_roi  # the one ROI tool (issue 17)

    assert fine_tune_roi.invoke({"prompt_dev_hours": 4, "hourly_rate": 100, "data_prep_hours": 40,
                                 "training_cost": 500})["ratio"] == 11.25
    assert by["knowledge_rule"].invoke({"rule_id": "nope"})["error"]
    assert "LoRA" in by["knowledge_rule"].invoke({"rule_id": "hp.lr.correction.lora"})["text"]
    assert by["estimate_training_memory"].invoke({"params_b": 7, "method": "qlora"})["total_gb"] > 0
    assert by["fine_tune_roi"] is fine_tune_roi  # one ROI tool, one memory tool, whoever lists them
    names = [t.name for t in all_tools()]
    assert len(names) == len(set(names))
    rec = by["advise"].invoke({"answers": {"task": "tone", "goals": ["tone_style"], "test_set": "",
                                           "prompt_quality": 0.95}})
    assert rec["recommendation"]["path"] == "prompts"


def test_detected_gpu_is_the_default_for_the_training_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import graph
    from agent.advisor import Advisor, run_scripted

    monkeypatch.setattr(graph, "detect_device", lambda: {"kind": "cuda", "gpus": 2, "gpu_memory_gb": 40.0})
    answers: dict[str, Any] = {"task": "domain_language", "goals": ["quality"], "test_set": "", "prompt_quality": 0.5,
                               "optimized_prompt_quality": 0.6, "n_examples": 3000, "model_params_b": 7}
    adv = Advisor()
    step = adv.start(answers)
    while step.question.id != "gpu_memory_gb":
        step = adv.answer("")
    assert step.question.default == 40.0
    step = adv.answer("")
    assert step.question.id == "gpus" and step.question.default == 2
    rec = run_scripted(answers)["recommendation"]  # scripted: the detected machine fills the gap
    assert rec["method"] == "lora" and rec["hyperparameters"]["per_device_batch_size"] == 4
