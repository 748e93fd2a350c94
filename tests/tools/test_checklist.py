"""The one checklist evaluator: its thresholds are the YAML's, read the same for the advisor and the report."""

from __future__ import annotations

from tools.checklist import ChecklistFacts, evaluate, lr_range


def done(facts: ChecklistFacts) -> dict[str, bool | None]:
    return {t.evidence: t.done for t in evaluate(facts)}


def test_fifteen_items_in_order_with_phases() -> None:
    ticks = evaluate(ChecklistFacts())
    assert [t.n for t in ticks] == list(range(1, 16))
    assert [t.phase for t in ticks] == ["before"] * 5 + ["during"] * 5 + ["after"] * 5
    assert all(t.done is None for t in ticks)  # nothing known: nothing ticked, nothing open


def test_example_count_edge_is_the_checklist_s() -> None:
    assert done(ChecklistFacts(n_examples=999))["n_examples>=1000"] is False
    assert done(ChecklistFacts(n_examples=1000))["n_examples>=1000"] is True


def test_epochs_three_to_five() -> None:
    assert [done(ChecklistFacts(epochs=e))["epochs_3_5"] for e in (2, 3, 5, 6)] == [False, True, True, False]


def test_learning_rate_range_follows_method_and_size() -> None:
    assert lr_range("lora", 7) == (1e-4, 2e-4)
    assert lr_range("full", 7) == (1e-6, 1e-5)
    assert lr_range("lora") == (5e-5, 3e-4)  # no size known: the method's range over every size
    assert lr_range("prompts") is None
    assert done(ChecklistFacts(method="full", learning_rate=2e-4, model_params_b=7))["lr_in_range"] is False
    assert done(ChecklistFacts(method="lora", learning_rate=2e-4, model_params_b=7))["lr_in_range"] is True
    assert done(ChecklistFacts(method="LoRA", learning_rate=2e-4))["method_lora"] is True


def test_manual_review_needs_enough_rows_to_read() -> None:
    assert done(ChecklistFacts(side_by_side_rows=19))["manual_review"] is False
    assert done(ChecklistFacts(side_by_side_rows=20))["manual_review"] is True
