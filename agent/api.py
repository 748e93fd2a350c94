"""The advisor's public face: the types the TUI, the CLI and scripts use to talk to the graph.

An ``Advisor`` (in ``agent.advisor``) runs a LangGraph session. Each call returns a ``Step``: either a
``Question`` to answer (the graph is paused at an ``interrupt()``), or the final recommendation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

QuestionType = Literal["number", "fraction", "choice", "multi_choice", "yes_no", "path", "text"]


@dataclass
class Question:
    id: str  # stable id, the contract for scripted answers (e.g. "n_examples")
    type: QuestionType
    prompt: str  # what to show the person
    choices: list[str] = field(default_factory=list)  # allowed values for choice / multi_choice
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = True
    help: str = ""  # why it is asked; cites the rule
    error: str | None = None  # set when the previous answer was rejected: the reason, shown inline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reason:
    rule: str  # knowledge rule id
    text: str
    evidence: Any = None  # measured numbers when there are

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Card:
    """The short card the CLI and the TUI lead with: the decision, the key numbers against the bar, the 2-4
    deciding rules and the top changes that would flip it."""

    decision: str | None  # the path: prompts | optimized_prompts | fine_tune | rag | collect_more_data
    method: str | None
    summary: str
    numbers: list[dict[str, Any]]  # {name, value, bar, source}
    deciding: list[dict[str, str]]  # {rule, text}
    what_would_change: list[str]
    reasons_total: int
    deciding_number: dict[str, Any] | None = None  # which number met (or could not meet) the bar, and its kind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Card:
        return cls(decision=d.get("decision"), method=d.get("method"), summary=str(d.get("summary") or ""),
                   numbers=list(d.get("numbers") or []), deciding=list(d.get("deciding") or []),
                   what_would_change=list(d.get("what_would_change") or []),
                   reasons_total=int(d.get("reasons_total") or 0), deciding_number=d.get("deciding_number"))


OPTIONAL_KEYS = ("learning_curve", "pipeline", "pre_pipeline_summary", "next_step", "outcome")


@dataclass
class Recommendation:
    """The advisor's answer: ``to_dict()`` is the ``recommendation`` of ``tunewise advise --json`` (a contract:
    its keys stay; the last five appear only when there is something to say)."""

    path: str | None
    summary: str
    method: str | None
    hyperparameters: dict[str, Any] | None
    memory_estimate_gb: float | None
    roi: dict[str, Any] | None
    split: dict[str, Any] | None
    short_run: dict[str, Any] | None
    quality_bar: float | None
    prompt_quality: dict[str, Any]  # {plain, optimized, best, measured}
    card: Card
    what_would_change: list[dict[str, Any]]  # counterfactuals, nearest first
    derived: dict[str, dict[str, Any]]
    device: dict[str, Any] | None
    reasons: list[dict[str, Any]]  # every rule cited, each once ({rule, text, evidence[, also]})
    quality_bar_user_set: bool = False  # the user gave the bar (typed or in the answers), not Enter on the default
    prompt_baseline: dict[str, Any] | None = None  # the measured baseline: quality, ci95, metric, n, latency_ms
    latency_budget_ms: float | None = None
    learning_curve: dict[str, Any] | None = None
    pipeline: dict[str, Any] | None = None  # what the "go on" phase measured
    pre_pipeline_summary: str | None = None  # the summary before the pipeline replaced it
    next_step: str | None = None
    outcome: dict[str, Any] | None = None  # the check run against the bar and the prompt

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in OPTIONAL_KEYS:
            if d[k] is None:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recommendation:
        """From the JSON document (a session's checkpoint keeps the document)."""
        known: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        known["card"] = Card.from_dict(d.get("card") or {})
        return cls(**known)


@dataclass
class Step:
    kind: Literal["question", "done"]
    session_id: str
    question: Question | None = None
    recommendation: Recommendation | None = None
    path: list[Reason] = field(default_factory=list)  # decisions so far, in order
    checklist: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> {done, text, evidence}
    answers: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)  # answers read from the data: {value, from}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recommendation"] = self.recommendation.to_dict() if self.recommendation else None
        return d
