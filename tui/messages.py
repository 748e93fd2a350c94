"""Small dataclass messages that workers post and widgets render (the toolong pattern)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from textual.message import Message

from agent.api import Step


@dataclass
class AdvisorReady(Message):
    """The advisor was created in the background (or failed to be: ``error``)."""

    error: str | None = None


@dataclass
class SessionsFound(Message):
    """Earlier advisor sessions in the run log (newest first), to offer beside a new one."""

    sessions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StepReady(Message):
    """The advisor answered: a new question, the same question with an error, or the recommendation."""

    step: Step


@dataclass
class AdvisorFailed(Message):
    error: str


@dataclass
class Stopped(Message):
    """The user stopped the advisor's step; ``step`` is where the session stands now (or None)."""

    step: Step | None = None


@dataclass
class Progress(Message):
    """A ProgressEvent (as a dict) from a tool, the advisor or the training child process."""

    source: str
    event: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskDone(Message):
    """A worker's long job ended: ``result`` on success, ``error`` (user-facing text) on failure."""

    source: str
    result: Any = None
    error: str | None = None


def progress_line(ev: dict[str, Any], *, source: str | None = None) -> str:
    """One ProgressEvent as a line of console markup: ``[source: ]stage step[/total] message`` (escaped)."""
    total = f"/{ev['total']}" if ev.get("total") else ""
    head = f"{escape(source)}: " if source else ""
    return f"{head}{escape(str(ev.get('stage', '')))} {ev.get('step', 0)}{total} {escape(str(ev.get('message', '')))}"


@dataclass
class PreviewReady(Message):
    """``tools.train.preview.TrainPreview``: the first examples as the model will see them."""

    preview: Any = None


class WorkClock:
    """Re-estimates each stage's time as it runs, from the pace measured so far: "12 of 30 min, about 18 left".

    The first event of a stage starts its clock; the time per step since then, times the steps left, is what is
    left. A stage whose step goes back (a new run of it) starts again."""

    def __init__(self, now: Any = None) -> None:
        self.now = now or time.monotonic
        self.started: dict[str, tuple[float, int]] = {}
        self.last_step: dict[str, int] = {}

    def line(self, ev: dict[str, Any]) -> str:
        stage, step, total = str(ev.get("stage", "")), int(ev.get("step") or 0), ev.get("total")
        t = self.now()
        first = self.started.get(stage)
        before, self.last_step[stage] = self.last_step.get(stage, step), step
        if first is None or step < before:
            self.started[stage] = (t, step)
            return ""
        t0, s0 = first
        if not total or step <= s0:
            return ""
        spent = t - t0
        left = spent / (step - s0) * max(0, int(total) - step)
        return _spent_of_total(spent, spent + left, left)


def _spent_of_total(spent: float, whole: float, left: float) -> str:
    unit, name = (60.0, "min") if whole >= 120 else (1.0, "s")
    a, b = round(spent / unit), round(left / unit)  # the three numbers add up as shown
    return f"{a} of {a + b} {name}, about {b} left"

