"""Runs: the history in the DuckDB run log; filter it, open one, compare two (config diff, curves, metrics)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Static

from tui.messages import TaskDone
from tui.widgets.charts import LossChart
from tui.widgets.field import Field

COLUMNS = ("run", "kind", "status", "method", "model", "started", "best val loss", "steps")


class RunsView(Vertical):
    BINDINGS = [Binding("m", "mark", "Mark"), Binding("c", "compare", "Compare"),
                Binding("r", "reload", "Reload")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[dict[str, Any]] = []
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Field(compact=True, placeholder="filter: id, kind, status, method, model", id="runs-filter")
            yield Button("Reload", compact=True, id="runs-reload")
            yield Button("Compare marked", compact=True, id="runs-compare")
        table: DataTable[str] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        with VerticalScroll(id="run-detail"):
            yield Static("Select a run (enter) to open it; m marks two runs, c compares them.", id="run-info")
            yield LossChart(id="run-chart")

    def on_show(self) -> None:
        self.reload()

    def reload(self) -> None:
        found = self.query("#runs-filter")
        if found:  # absent while the app is shutting down
            self._load_runs(found.first(Input).value.strip())

    @work(thread=True, exclusive=True, group="runs")
    def _load_runs(self, text: str) -> None:
        app: Any = self.app
        try:
            rows = app.services.list_runs(text)
        except Exception as e:  # noqa: BLE001
            self.post_message(TaskDone("runs", error=app.services.describe_error(e)))
            return
        self.post_message(TaskDone("runs", result=rows))

    def action_reload(self) -> None:
        self.reload()

    def fill(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        for r in rows:
            mark = "● " if r["run_id"] in self.marked else ""
            table.add_row(mark + str(r["run_id"]), str(r.get("kind") or ""), str(r.get("status") or ""),
                          str(r.get("method") or ""), str(r.get("model") or ""),
                          str(r.get("started_at") or "")[:16],
                          "" if r.get("best_val_loss") is None else f"{r['best_val_loss']:.4f}",
                          "" if r.get("steps") is None else str(r["steps"]), key=str(r["run_id"]))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":  # Enter: the filtered runs, with the cursor in the table
            event.stop()
            self.reload()
            self.query_one("#runs-table", DataTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            self.reload()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "runs-reload":
            self.reload()
        elif event.button.id == "runs-compare":
            self.action_compare()

    def _current(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return str(self.rows[table.cursor_row]["run_id"])

    def action_mark(self) -> None:
        run_id = self._current()
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked = [*self.marked[-1:], run_id]
        self.fill(self.rows)

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.query_one("#run-info", Static).update("[yellow]Mark two runs with m first.[/yellow]")
            return
        self.load_detail(self.marked[0], self.marked[1])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.load_detail(str(event.row_key.value), None)

    @work(thread=True, exclusive=True, group="run-detail")
    def load_detail(self, a: str, b: str | None) -> None:
        app: Any = self.app
        try:
            result = app.services.compare_runs(a, b) if b else app.services.run_detail(a)
        except Exception as e:  # noqa: BLE001
            self.post_message(TaskDone("run-detail", error=app.services.describe_error(e)))
            return
        self.post_message(TaskDone("compare" if b else "run-detail", result=result))

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        info = self.query_one("#run-info", Static)
        if message.error:
            info.update(f"[red]✗ {escape(message.error)}[/red]")
        elif message.source == "runs":
            self.fill(message.result or [])
        elif message.source == "run-detail":
            self.show_run(message.result)
        elif message.source == "compare":
            self.show_compare(message.result)

    def show_run(self, d: dict[str, Any]) -> None:
        run = d["run"]
        lines = [f"[b]{escape(str(run['run_id']))}[/b]  {run.get('kind')} · {run.get('status')} · "
                 f"{run.get('method') or ''} · {run.get('model') or ''}"]
        for key in ("best_val_loss", "steps", "train_seconds", "peak_memory_mb"):
            if run.get(key) is not None:
                lines.append(f"  {key.replace('_', ' ')}: {run[key]}")
        if run.get("config"):
            lines.append("[b]config[/b]: " + escape(", ".join(f"{k}={v}" for k, v in run["config"].items())))
        for e in d.get("evaluations") or []:
            ci = f" [{e['ci_low']:.3f}, {e['ci_high']:.3f}]" if e.get("ci_low") is not None else ""
            lines.append(f"  eval {e['kind']}: {e['metric']} = {e['value']}{ci} (n={e.get('n')})")
        self.query_one("#run-info", Static).update("\n".join(lines))
        self.query_one("#run-chart", LossChart).set_series(d.get("curves") or {})

    def show_compare(self, d: dict[str, Any]) -> None:
        a, b = d["a"]["run"]["run_id"], d["b"]["run"]["run_id"]
        lines = [f"[b]A[/b] = {escape(str(a))}   [b]B[/b] = {escape(str(b))}", "[b]config diff[/b]"]
        if not d["config_diff"]:
            lines.append("  (same config)")
        lines += [f"  {escape(str(r['key']))}: A={escape(str(r['a']))}  B={escape(str(r['b']))}"
                  for r in d["config_diff"]]
        lines.append("[b]metrics[/b]")
        lines += [f"  {r['key']}: A={r['a']}  B={r['b']}" for r in d["metrics"]]
        self.query_one("#run-info", Static).update("\n".join(lines))
        series = {f"A {k}": v for k, v in (d["a"].get("curves") or {}).items()}
        series.update({f"B {k}": v for k, v in (d["b"].get("curves") or {}).items()})
        self.query_one("#run-chart", LossChart).set_series(series)
