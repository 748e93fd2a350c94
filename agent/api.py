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
class Step:
    kind: Literal["question", "done"]
    session_id: str
    question: Question | None = None
    recommendation: dict[str, Any] | None = None  # the JSON shape of `tunewise advise --json`
    path: list[Reason] = field(default_factory=list)  # decisions so far, in order
    checklist: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> {done, text, evidence}
    answers: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)  # answers read from the data: {value, from}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
