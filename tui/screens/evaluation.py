"""Evaluation: test results with CIs, the side-by-side table, the forgetting table, the A/B result, and the
report export."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Static

from tui.messages import Progress, TaskDone
from tui.widgets.question import PathSuggester


class EvaluationView(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Input(compact=True, placeholder="run id", id="eval-run")
            yield Input(compact=True, placeholder="test.jsonl", id="eval-test", suggester=PathSuggester())
            yield Input(compact=True, placeholder="A/B against (run id or base)", id="eval-b", value="base")
        with Horizontal(classes="toolbar"):
            yield Button("Test score", compact=True, id="eval-test-btn", variant="primary")
            yield Button("Side by side", compact=True, id="eval-compare")
            yield Button("Forgetting", compact=True, id="eval-forgetting")
            yield Button("A/B", compact=True, id="eval-ab")
            yield Button("Export report", compact=True, id="eval-report")
        yield Static("Score the trained adapter once on the held-out test split.", id="eval-summary")
        table: DataTable[str] = DataTable(id="eval-table", zebra_stripes=True)
        yield table

    def _val(self, wid: str) -> str:
        return self.query_one(f"#{wid}", Input).value.strip()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        run_id, test = self._val("eval-run"), self._val("eval-test")
        kind = (event.button.id or "").removeprefix("eval-").removesuffix("-btn")
        if not run_id or (kind in ("test", "compare", "ab") and not test):
            self.query_one("#eval-summary", Static).update("[red]Give the run id (and the test file).[/red]")
            return
        self.query_one("#eval-summary", Static).update(f"{kind}: working…")
        self.run_eval(kind, run_id, test, self._val("eval-b") or "base")

    @work(thread=True, exclusive=True, group="evaluation")
    def run_eval(self, kind: str, run_id: str, test: str, other: str) -> None:
        svc: Any = self.app.services  # type: ignore[attr-defined]

        def progress(ev: Any) -> None:
            self.post_message(Progress(kind, ev.to_dict() if hasattr(ev, "to_dict") else dict(ev)))

        try:
            if kind == "test":
                result: Any = svc.evaluate_test(run_id, test, on_progress=progress)
            elif kind == "compare":
                result = svc.compare_outputs(run_id, test)
            elif kind == "forgetting":
                result = svc.forgetting(run_id, on_progress=progress)
            elif kind == "ab":
                result = svc.ab_test(run_id, other, test)
            else:
                from tools import paths  # light: no torch

                result = {"path": svc.export_report(run_id, str(paths.home() / "reports" / f"{run_id}.md"))}
        except Exception as e:  # noqa: BLE001
            self.post_message(TaskDone(kind, error=svc.describe_error(e)))
            return
        self.post_message(TaskDone(kind, result=result))

    def on_progress(self, message: Progress) -> None:
        message.stop()
        ev = message.event
        total = f"/{ev['total']}" if ev.get("total") else ""
        self.query_one("#eval-summary", Static).update(f"{message.source}: {ev.get('step', 0)}{total}")

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        summary = self.query_one("#eval-summary", Static)
        if message.error:
            summary.update(f"[red]✗ {escape(message.error)}[/red]")
            return
        r = message.result or {}
        if message.source == "report":
            summary.update(f"report written to {escape(str(r.get('path')))}")
            return
        summary.update(escape(_headline(message.source, r)))
        rows = r.get("rows") or r.get("probes") or r.get("details") or []
        self._table(rows if isinstance(rows, list) else [])

    def _table(self, rows: list[Any]) -> None:
        table = self.query_one("#eval-table", DataTable)
        table.clear(columns=True)
        if not rows or not isinstance(rows[0], dict):
            return
        cols = list(rows[0].keys())[:6]
        table.add_columns(*cols)
        for row in rows[:200]:
            table.add_row(*[_cell(row.get(c)) for c in cols])


def _headline(kind: str, r: dict[str, Any]) -> str:
    parts = [kind]
    for key in ("metric", "value", "quality", "accuracy", "ci95", "n", "verdict", "winner", "preserved",
                "significant", "p_value", "delta"):
        if key in r and r[key] is not None and not isinstance(r[key], (list, dict)) or key == "ci95" and r.get(key):
            v = r[key]
            if isinstance(v, float):
                v = f"{v:.3f}"
            elif isinstance(v, list):
                v = "–".join(f"{float(x):.3f}" for x in v)
            parts.append(f"{key}: {v}")
    return " · ".join(parts)


def _cell(v: Any) -> str:
    s = f"{v:.3f}" if isinstance(v, float) else str(v)
    s = s.replace("\n", " ").replace("[", "(").replace("]", ")")
    return s if len(s) < 60 else s[:57] + "…"
