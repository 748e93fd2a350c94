"""Side panels of the advisor view: the decision path so far (rule ids + evidence) and the 15-item checklist."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.widgets import Static

from agent.api import Reason


def _evidence(ev: Any) -> str:
    if ev in (None, "", {}, []):
        return ""
    if isinstance(ev, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in ev.items())
    return _short(ev)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "…"


class DecisionPath(Static):
    """The advisor's decisions in order: each shows its knowledge rule id, the sentence and the evidence."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, classes="panel")
        self.reasons: list[Reason] = []

    def on_mount(self) -> None:
        self.border_title = "Decision path"
        self.refresh_text()

    def set_path(self, reasons: list[Reason]) -> None:
        self.reasons = list(reasons)
        self.refresh_text()

    def refresh_text(self) -> None:
        t = Text()
        if not self.reasons:
            t.append("No decisions yet: each answer adds the rule it triggers.", style="dim")
        for i, r in enumerate(self.reasons, 1):
            if i > 1:
                t.append("\n")
            t.append(f"{i}. ", style="bold")
            t.append(r.rule, style="bold cyan")
            t.append(f"\n   {r.text}")
            ev = _evidence(r.evidence)
            if ev:
                t.append(f"\n   evidence: {ev}", style="green")
        self.update(t)


class Checklist(Static):
    """The 15 best-practice items, ticked as evidence arrives (from the advisor's Step.checklist)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, classes="panel")
        self.items: list[dict[str, Any]] = []
        self.state: dict[str, dict[str, Any]] = {}

    def on_mount(self) -> None:
        self.border_title = "Checklist"
        self.refresh_text()

    def set_items(self, items: list[dict[str, Any]]) -> None:
        self.items = list(items)
        self.refresh_text()

    def set_state(self, state: dict[str, dict[str, Any]]) -> None:
        self.state = dict(state or {})
        if not self.items:  # no knowledge list yet: show what the advisor sent
            self.items = [{"id": k, "n": i, "text": v.get("text", k)}
                          for i, (k, v) in enumerate(self.state.items(), 1)]
        self.refresh_text()

    def done_count(self) -> int:
        return sum(1 for it in self.items if self._entry(it).get("done"))

    def _entry(self, item: dict[str, Any]) -> dict[str, Any]:
        for key in (item["id"], str(item["n"]), item.get("evidence")):
            if key and key in self.state:
                return self.state[key]
        return {}

    def refresh_text(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        if not self.items:
            t.append("loading…", style="dim")
        else:
            t.append(f"{self.done_count()}/{len(self.items)} done\n", style="bold")
        for it in self.items:
            entry = self._entry(it)
            done = bool(entry.get("done"))
            t.append("✔ " if done else "☐ ", style="green" if done else "dim")
            t.append(f"{it['n']:>2} {entry.get('text') or it['text']}", style="" if done else "dim")
            ev = _evidence(entry.get("evidence")) if done else ""
            if ev:
                t.append(f" ({ev})", style="green")
            t.append("\n")
        self.update(t)
