"""Prompt baseline: variants scored with quality and 95% CI, latency, the best one, and the 90% bar.

The table fills row by row: each variant's score lands as soon as it is measured (the tool's per-variant
ProgressEvent), from this view's own run or from the advisor's; the final result then fills in every column.
**Cancel** (or ctrl+x) stops this view's run at its next progress step; the run log records it interrupted."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, ProgressBar, Static

from tui.messages import Progress, TaskDone
from tui.widgets.field import Field
from tui.widgets.question import PathSuggester


class PromptView(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: dict[str, dict[str, Any]] = {}  # variant -> what is known so far
        self.busy = False
        self.note = ""  # the time estimate the work was announced with

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Field(compact=True, placeholder="labelled examples to score prompts on", id="prompt-data",
                        suggester=PathSuggester())
            yield Field(compact=True, placeholder="rows: all", id="prompt-rows", type="integer", classes="steps",
                        tooltip="Score at most this many rows (the first ones). Empty: every row; the measurement "
                                "still stops early once the answer against the bar is clear.")
            yield Button("Run baseline", compact=True, id="prompt-run", variant="primary")
            yield Button("Cancel", compact=True, id="prompt-cancel", variant="error", disabled=True)
        yield ProgressBar(id="prompt-progress", show_eta=False, classes="-hidden")
        yield Static("Measure prompts first: most tasks never need training.", id="prompt-summary")
        table: DataTable[str] = DataTable(id="prompt-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("variant", "quality", "95% CI", "latency ms", "prompt tokens", "n")
        yield table

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "prompt-cancel":
            self.cancel()
            return
        path = self.query_one("#prompt-data", Input).value.strip()
        if not path:
            self.query_one("#prompt-summary", Static).update("[red]Give a data file first.[/red]")
            return
        rows_text = self.query_one("#prompt-rows", Input).value.strip()
        limit = int(rows_text) if rows_text.isdigit() and int(rows_text) > 0 else None
        if rows_text and limit is None:
            self.query_one("#prompt-summary", Static).update(
                f"[red]rows: {escape(rows_text)!s} is not a row count[/red] (a whole number above 0, or empty for "
                "every row)")
            return
        self.note = ""
        self.query_one("#prompt-summary", Static).update("scoring prompt variants…")
        self.query_one("#prompt-progress", ProgressBar).remove_class("-hidden")
        self.rows = {}
        self._render_rows()
        self._set_running(True)
        self.run_eval(path, limit)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "prompt-data":  # Enter in the data field runs the baseline (unless one runs)
            event.stop()
            self.query_one("#prompt-run", Button).press()

    def _set_running(self, running: bool) -> None:
        self.busy = running
        self.query_one("#prompt-run", Button).disabled = running
        self.query_one("#prompt-cancel", Button).disabled = not running

    def cancel(self) -> None:
        if not self.busy:
            self.app.notify("No prompt baseline is running here.", title="Cancel", severity="warning")
            return
        self.app.services.cancel("prompt")  # type: ignore[attr-defined]
        self.query_one("#prompt-summary", Static).update("stopping after the current batch…")

    @work(thread=True, exclusive=True, group="prompt")
    def run_eval(self, path: str, limit: int | None = None) -> None:
        svc: Any = self.app.services  # type: ignore[attr-defined]

        def progress(ev: Any) -> None:
            self.post_message(Progress("prompt", ev.to_dict() if hasattr(ev, "to_dict") else dict(ev)))

        # the estimate watches the machine for a moment (how busy other work keeps it): here, not in the UI
        note = svc.prompt_estimate(path, limit=limit)
        if note:
            self.post_message(Progress("prompt", {"stage": "prompt_eval", "step": 0, "total": None, "message": note}))
        try:
            result = svc.prompt_eval(path, on_progress=progress, limit=limit)
        except BaseException as e:  # noqa: BLE001 - a cancel is a KeyboardInterrupt (agent.jobs.JobCancelled)
            if not isinstance(e, Exception) and not svc.is_cancelled(e):
                raise
            self.post_message(TaskDone("prompt", error=svc.describe_error(e)))
            return
        self.post_message(TaskDone("prompt", result=result))

    def on_progress(self, message: Progress) -> None:
        message.stop()
        self.feed(message.event)

    def feed(self, ev: dict[str, Any]) -> None:
        """One ProgressEvent (from this view's worker or the advisor's prompt baseline)."""
        if ev.get("total"):
            bar = self.query_one("#prompt-progress", ProgressBar)
            bar.remove_class("-hidden")
            bar.update(total=ev["total"], progress=ev.get("step", 0))
        m = ev.get("metrics") or {}
        message = str(ev.get("message") or "")
        name = message.partition(":")[0].strip()
        if ev.get("stage") == "prompt_eval" and name and "n" in m:
            # one look of one variant ("plain: 40/300 rows"): its row shows the score so far
            row = self.rows.setdefault(name, {"name": name})
            row.pop("pending", None)
            row["n"] = int(m["n"])
            if m.get("quality") is not None:
                row["quality"] = m["quality"]
            if m.get("ci_low") is not None and m.get("ci_high") is not None:
                row["ci95"] = [m["ci_low"], m["ci_high"]]
            for k in ("latency_ms", "prompt_tokens"):
                if m.get(k) is not None:
                    row[k] = m[k]
            self._render_rows()
        elif ev.get("stage") == "prompt_eval" and message and not ev.get("total") and not m:
            # a line about the work, not a variant (the time estimate before it starts): above the table
            self.note = message
        if message:
            q = m.get("quality")
            self.query_one("#prompt-summary", Static).update(
                f"scoring prompt variants: {escape(message)}" + (f" → {float(q):.1%}" if q is not None else "")
                + (f"\n[dim]{escape(self.note)}[/dim]" if self.note and self.note != message else ""))

    def _render_rows(self) -> None:
        table = self.query_one("#prompt-table", DataTable)
        table.clear()
        for v in self.rows.values():
            if v.get("pending") and v.get("quality") is None:
                table.add_row(str(v["name"]), "measuring…", "", "", "", "")
            else:
                table.add_row(str(v["name"]), _pct(v.get("quality")), _ci(v.get("ci95")), _num(v.get("latency_ms")),
                              _num(v.get("prompt_tokens")), str(v.get("n", "")))

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        self._set_running(False)
        self.query_one("#prompt-progress", ProgressBar).add_class("-hidden")
        if message.error == "stopped":
            self.query_one("#prompt-summary", Static).update(
                "[yellow]■ stopped[/yellow]: the variants scored so far are in the table; the run log records the "
                "run as interrupted.")
            return
        if message.error:
            self.query_one("#prompt-summary", Static).update(f"[red]✗ {escape(message.error)}[/red]")
            return
        self.show(message.result or {})

    def show(self, r: Any) -> None:
        """The final result (``PromptEvalResult`` or its dict): every column of every variant, the best one."""
        if hasattr(r, "to_dict"):
            r = r.to_dict()
        self.rows = {str(v.get("name") or v.get("variant")): {**v, "name": str(v.get("name") or v.get("variant"))}
                     for v in r.get("variants") or []}
        self._render_rows()
        best = r.get("best")
        best_name = best.get("name") if isinstance(best, dict) else best
        by_name = {v.get("name"): v for v in r.get("variants") or []}
        best_row = by_name.get(best_name, {})
        quality = r.get("best_quality", best_row.get("quality", r.get("quality")))
        ci = r.get("best_ci95", best_row.get("ci95", r.get("ci95")))
        bar = r.get("bar") or 0.9
        verdict = "reaches" if r.get("reaches_bar") else "is below"
        self.query_one("#prompt-summary", Static).update(
            f"[b]best[/b]: {escape(str(best_name))} — {escape(str(r.get('metric', 'quality')))} {_pct(quality)} "
            f"({_ci(ci)}), {_num(best_row.get('latency_ms', r.get('latency_ms')))} ms; it {verdict} the "
            f"{float(bar):.0%} bar" + ("" if r.get("reaches_bar") else " → fine-tuning may be worth it")
            + (f"\n[dim]plain prompt: {_pct(r.get('quality'))} ({_ci(r.get('ci95'))}) · run {r['run_id']}[/dim]"
               if r.get("run_id") else ""))


def _pct(v: Any) -> str:
    return "" if v is None else f"{float(v):.1%}"


def _ci(ci: Any) -> str:
    return f"{float(ci[0]):.1%}–{float(ci[1]):.1%}" if ci else ""


def _num(v: Any) -> str:
    if isinstance(v, dict):  # {"p50": .., "p95": ..} or {"mean": ..}
        v = v.get("p50", v.get("mean"))
    return "" if v is None else f"{float(v):,.0f}"
