"""The typed Recommendation: its ``to_dict()`` is the ``advise --json`` document, key for key."""

from __future__ import annotations

from agent.advisor import run_scripted
from agent.api import Card, Recommendation

ANSWERS = dict(task="domain_language", goals=["quality"], quality_target=0.9, test_set="", prompt_quality=0.6,
               optimized_prompt_quality=0.7, n_examples=5000, consistency="variable", gpu_memory_gb=24, gpus=1,
               model_params_b=7)
KEYS = ["path", "summary", "method", "hyperparameters", "memory_estimate_gb", "roi", "split", "short_run",
        "quality_bar", "prompt_quality", "card", "what_would_change", "derived", "device", "reasons",
        "quality_bar_user_set", "prompt_baseline", "latency_budget_ms"]


def test_the_document_keeps_its_keys_and_reads_back_equal() -> None:
    doc = run_scripted(ANSWERS)["recommendation"]
    assert list(doc) == KEYS  # the optional keys (pipeline, outcome, ...) appear only when there is something
    assert list(doc["card"]) == ["decision", "method", "summary", "numbers", "deciding", "what_would_change",
                                 "reasons_total", "deciding_number"]
    rec = Recommendation.from_dict(doc)
    assert isinstance(rec.card, Card) and rec.card.decision == rec.path == "fine_tune"
    assert rec.to_dict() == doc


def test_optional_keys_appear_when_set() -> None:
    rec = Recommendation.from_dict(run_scripted({**ANSWERS, "prompt_quality": 0.95})["recommendation"])
    assert rec.path == "prompts" and rec.method is None and "outcome" not in rec.to_dict()
    rec.outcome, rec.next_step = {"verdict": "not_yet"}, "train longer"
    assert list(rec.to_dict())[-2:] == ["next_step", "outcome"]
