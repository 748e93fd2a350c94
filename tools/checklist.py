"""Which of the 15 best-practice items (``knowledge/checklist.yaml``) a session or a run has done.

One evaluator for both readers: the advisor ticks items from its session (``agent.routing.checklist``) and the
report ticks them from the run log (``tools.report.checklist_status``). Each reader gathers ``ChecklistFacts``
its own way; the thresholds (1,000 examples, 3-5 epochs, the learning-rate range of the method, 20 outputs to
read) come from the YAML here and nowhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import knowledge
from knowledge.schema import ChecklistItem

Phase = Literal["before", "during", "after"]


@dataclass(frozen=True)
class ChecklistFacts:
    """What is known about a session or run; ``None`` is "not known" (the item is then neither done nor open
    when ``unknown_is_open`` is false)."""

    prompt_baseline_measured: bool | None = None
    n_examples: int | None = None
    dataset_cleaned: bool | None = None
    split_created: bool | None = None
    metric_defined: bool | None = None
    method: str | None = None
    learning_rate: float | None = None
    model_params_b: float | None = None  # picks the learning-rate row; without it, the method's whole range
    epochs: float | None = None
    val_loss_monitored: bool | None = None
    runlog: bool | None = None
    test_evaluated: bool | None = None
    side_by_side_rows: int | None = None  # rows of the tuned-vs-expected table offered for reading
    forgetting_checked: bool | None = None
    ab_tested: bool | None = None
    hyperparameters_documented: bool | None = None


@dataclass(frozen=True)
class ChecklistTick:
    """One item: ``done`` is True, False, or None when the facts cannot say."""

    id: str
    n: int
    phase: Phase
    text: str
    evidence: str  # the fact the YAML names for this item
    done: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_range(method: str, model_params_b: float | None = None) -> tuple[float, float] | None:
    """The learning-rate range of ``method`` for a model size (``hp.lr.<method>.<size>``); without a size, the
    method's range over every size row. None for a method the table does not know."""
    try:
        known = knowledge.as_method(method)
    except ValueError:
        return None
    if model_params_b:
        advice = knowledge.lr_for(model_params_b, known)
        return advice.lr_min, advice.lr_max
    rows = [r for r in knowledge.load().hyperparameters.learning_rate_by_method if r.method == known]
    return min(r.lr_min for r in rows), max(r.lr_max for r in rows)


def _judge(evidence: str, params: dict[str, Any], f: ChecklistFacts) -> bool | None:
    """One item's verdict from the facts and the item's own ``params``."""
    if evidence == "n_examples>=1000":
        return None if f.n_examples is None else f.n_examples >= float(params["min_examples"])
    if evidence == "method_lora":
        return None if not f.method else f.method.lower() in ("lora", "qlora")
    if evidence == "lr_in_range":
        if f.learning_rate is None or not f.method:
            return None
        bounds = lr_range(f.method, f.model_params_b)
        return None if bounds is None else bounds[0] <= float(f.learning_rate) <= bounds[1]
    if evidence == "epochs_3_5":
        if f.epochs is None:
            return None
        return float(params["min_epochs"]) <= float(f.epochs) <= float(params["max_epochs"])
    if evidence == "manual_review":
        return None if f.side_by_side_rows is None else f.side_by_side_rows >= int(params["min_examples"])
    value = getattr(f, evidence, None)
    return None if value is None else bool(value)


def evaluate(facts: ChecklistFacts) -> list[ChecklistTick]:
    """Every checklist item, in order, ticked from ``facts``."""
    items = knowledge.load().checklist.checklist
    out: list[ChecklistTick] = []
    phases: list[tuple[Phase, list[ChecklistItem]]] = [("before", items.before), ("during", items.during),
                                                        ("after", items.after)]
    for phase, rows in phases:
        for item in rows:
            out.append(ChecklistTick(item.id, item.n, phase, item.text, item.evidence,
                                     _judge(item.evidence, dict(item.params), facts)))
    return out
