"""Evaluation: test results with CIs, the side-by-side table (with A / B / tie votes on each row, stored in the
run log and resumable), the forgetting table, the A/B result, and the report export."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Static

from tui.messages import Progress, TaskDone, progress_line
from tui.widgets.field import Field
from tui.widgets.question import PathSuggester


class EvaluationView(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Field(compact=True, placeholder="run id", id="eval-run")
            yield Field(compact=True, placeholder="test.jsonl", id="eval-test", suggester=PathSuggester())
            yield Field(compact=True, placeholder="A/B against (run id or base)", id="eval-b", value="base")
        with Horizontal(classes="toolbar"):
            yield Button("Test score", compact=True, id="eval-test-btn", variant="primary")
            yield Button("Side by side", compact=True, id="eval-compare")
            yield Button("Forgetting", compact=True, id="eval-forgetting")
            yield Button("A/B", compact=True, id="eval-ab")
            yield Button("Export report", compact=True, id="eval-report")
        with Horizontal(classes="toolbar", id="eval-votes"):
            yield Button("A better", compact=True, id="vote-a")
            yield Button("B better", compact=True, id="vote-b")
            yield Button("Tie", compact=True, id="vote-tie")
        yield Static("Score the trained adapter once on the held-out test split.", id="eval-summary")
        table: DataTable[str] = DataTable(id="eval-table", zebra_stripes=True)
        yield table

    def on_show(self) -> None:
        # read the run log when the view is first shown, not at start-up (duckdb loads after the first paint)
        if not getattr(self, "_read_log", False):
            self._read_log = True
            self.load_past()

    @work(thread=True, exclusive=True, group="evaluation-past")
    def load_past(self) -> None:
        """After a reopen: the evaluations already in the run log, newest first."""
        svc: Any = self.app.services  # type: ignore[attr-defined]
        try:
            rows = svc.past_evaluations()
        except Exception:  # noqa: BLE001 - an unreadable run log: the view starts empty
            return
        if rows:
            self.post_message(TaskDone("past", result={"rows": rows}))

    def show_past(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one("#eval-table", DataTable)
        if table.row_count:
            return  # a result of this session is on screen
        table.clear(columns=True)
        table.add_columns("run", "kind", "metric", "score", "95% CI", "n", "when")
        for r in rows:
            ci = (f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if isinstance(r.get("ci_low"), float)
                  and isinstance(r.get("ci_high"), float) else "")
            value = f"{r['value']:.3f}" if isinstance(r.get("value"), float) else str(r.get("value") or "")
            table.add_row(str(r.get("run_id")), str(r.get("kind")), str(r.get("metric") or ""), value, ci,
                          str(r.get("n") or ""), str(r.get("created_at") or "")[:16])
        self.query_one("#eval-summary", Static).update(
            f"{len(rows)} earlier evaluation{'s' if len(rows) != 1 else ''} from the run log (newest first); a "
            "run id and a test file score again.")
        if not self._val("eval-run"):
            self.query_one("#eval-run", Input).value = str(rows[0].get("run_id") or "")

    def _val(self, wid: str) -> str:
        return self.query_one(f"#{wid}", Input).value.strip()

    compare_result: Any = None
    """The side-by-side sample on screen (a ``CompareResult``), which votes refer to."""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if (event.button.id or "").startswith("vote-"):
            self.vote((event.button.id or "").removeprefix("vote-"))
            return
        run_id, test = self._val("eval-run"), self._val("eval-test")
        kind = (event.button.id or "").removeprefix("eval-").removesuffix("-btn")
        if not run_id or (kind in ("test", "compare", "ab") and not test):
            self.query_one("#eval-summary", Static).update("[red]Give the run id (and the test file).[/red]")
            return
        self.query_one("#eval-summary", Static).update(f"{kind}: working…")
        self.run_eval(kind, run_id, test, self._val("eval-b") or "base")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("eval-run", "eval-test"):  # Enter in the run or test field scores the run
            event.stop()
            self.query_one("#eval-test-btn", Button).press()

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

    def vote(self, choice: str) -> None:
        """Vote on the highlighted side-by-side row: A (``vote_a``), B (the tuned model) or a tie."""
        res = self.compare_result
        table = self.query_one("#eval-table", DataTable)
        if res is None or not res.rows or res.vote_a is None:
            self.query_one("#eval-summary", Static).update("[red]Show a side-by-side sample first.[/red]")
            return
        row = res.rows[min(max(table.cursor_row, 0), len(res.rows) - 1)]
        self.record(choice, row["idx"])

    @work(thread=True, exclusive=True, group="evaluation-vote")
    def record(self, choice: str, idx: int) -> None:
        from tools.evaluate import human_win_rate, record_vote, votes_for

        res = self.compare_result
        try:
            record_vote(res, idx, choice)
            votes = votes_for(res.run_id, res.test_sha256, a_variant=res.vote_a)
            wr = human_win_rate(res.run_id, res.test_sha256, a_variant=res.vote_a)
        except Exception as e:  # noqa: BLE001 - shown to the user, like every worker's error
            self.post_message(TaskDone("vote", error=self.app.services.describe_error(e)))  # type: ignore[attr-defined]
            return
        self.post_message(TaskDone("vote", result={"votes": votes, "win_rate": wr.to_dict(), "idx": idx}))

    def on_progress(self, message: Progress) -> None:
        message.stop()
        self.feed(message.event)

    def feed(self, ev: dict[str, Any]) -> None:
        self.query_one("#eval-summary", Static).update(progress_line(ev))

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        summary = self.query_one("#eval-summary", Static)
        if message.error:
            summary.update(f"[red]✗ {escape(message.error)}[/red]")
            return
        r = message.result or {}
        if message.source == "past":
            self.show_past(r["rows"])
            return
        if message.source == "report":
            summary.update(f"report written to {escape(str(r.get('path')))}")
            return
        if message.source == "vote":
            self.show_votes(r["votes"], r["win_rate"])
            table = self.query_one("#eval-table", DataTable)
            table.move_cursor(row=min(table.cursor_row + 1, table.row_count - 1))
            return
        if message.source == "compare":
            self.compare_result = _as_compare(r)
            self.load_votes()
        self.show(message.source, r.to_dict() if hasattr(r, "to_dict") else r)  # typed results show their document

    @work(thread=True, exclusive=True, group="evaluation-vote")
    def load_votes(self) -> None:
        """Votes already in the run log for this sample: a resumed session shows them and goes on."""
        from tools.evaluate import human_win_rate, votes_for

        res = self.compare_result
        if res is None or not res.test_sha256:
            return
        try:
            votes = votes_for(res.run_id, res.test_sha256, a_variant=res.vote_a)
            wr = human_win_rate(res.run_id, res.test_sha256, a_variant=res.vote_a)
        except Exception:  # noqa: BLE001 - no run log yet: nothing to resume
            return
        if votes:
            self.post_message(TaskDone("vote", result={"votes": votes, "win_rate": wr.to_dict(), "idx": -1}))

    def show_votes(self, votes: dict[int, str], wr: dict[str, Any]) -> None:
        res = self.compare_result
        if res is None:
            return
        for row in res.rows:
            row["vote"] = {"a": "A", "b": "B", "tie": "tie"}.get(votes.get(row["idx"], ""), "")
        cols, rows = _rows("compare", {"columns": res.columns, "rows": res.rows})
        cursor = self.query_one("#eval-table", DataTable).cursor_row
        self._table(cols, rows)
        self.query_one("#eval-table", DataTable).move_cursor(row=cursor)
        self.query_one("#eval-summary", Static).update(escape(
            f"votes: {wr['n']} of {len(res.rows)} rows; B ({res.vote_b}) wins {wr['rate']:.1%} "
            f"({_ci(wr['ci95'])}) against A ({res.vote_a}): {wr['b_wins']} B, {wr['a_wins']} A, {wr['ties']} ties"))

    def show(self, kind: str, r: Any) -> None:
        self.query_one("#eval-summary", Static).update(escape(_headline(kind, r)))
        self._table(*_rows(kind, r))

    def _table(self, cols: list[str], rows: list[dict[str, Any]]) -> None:
        table = self.query_one("#eval-table", DataTable)
        table.clear(columns=True)
        if not rows:
            return
        table.add_columns(*cols)
        for row in rows[:200]:
            table.add_row(*[_cell(row.get(c)) for c in cols])


def _headline(kind: str, r: dict[str, Any]) -> str:
    """One line per result kind, with the CI wherever there is one."""
    if kind == "test":
        vs = {k: v for k, v in (r.get("vs") or {}).items() if v}  # a side not measured (no prompt baseline) is None
        others = "; ".join(f"{k} {_pct(v.get('quality'))} ({_ci(v.get('ci95'))})" for k, v in vs.items())
        warn = " | " + " ".join(r["warnings"]) if r.get("warnings") else ""
        of = f" of {r['test_rows']} rows" if (r.get("test_rows") or 0) > (r.get("n") or 0) else ""
        return (f"test {r.get('metric', '')}: {_pct(r.get('quality'))} ({_ci(r.get('ci95'))}), n={r.get('n')}{of}"
                + (f" | {others}" if others else "") + warn)
    if kind == "compare":
        return f"side by side: {r.get('n')} examples, columns {', '.join(r.get('columns') or [])}"
    if kind == "forgetting":
        return (f"forgetting: {r.get('verdict')} — base {_pct(r.get('base_score'))} ({_ci(r.get('base_ci95'))}), "
                f"tuned {_pct(r.get('tuned_score'))} ({_ci(r.get('tuned_ci95'))}), {r.get('lost', 0)} lost, "
                f"{r.get('gained', 0)} gained of {r.get('probes')} probes"
                + (f" (a subset of {r['probes_total']})" if (r.get("probes_total") or 0) > (r.get("probes") or 0) else ""))
    if kind == "ab":
        roi = r.get("roi") or {}
        return (f"A/B ({r.get('a')} vs {r.get('b')}): diff {_pct(r.get('diff'))} ({_ci(r.get('diff_ci95'))}), "
                f"{roi.get('verdict', '')}: {roi.get('reason', '')}")
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in r.items() if not isinstance(v, (list, dict)))


def _rows(kind: str, r: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    if kind == "test":
        # free generation (decides), then the same rows in choice mode for label tasks (issue 14)
        rows = []
        for mode, block in (("generation", r), ("choice", r.get("choice") or {})):
            if block.get("quality") is None:
                continue
            rows.append({"variant": "tuned", "mode": mode, "quality": _pct(block.get("quality")),
                         "95% CI": _ci(block.get("ci95")), "n": block.get("n"), "tuned − it (paired)": ""})
            for k, v in (block.get("vs") or {}).items():
                if v:
                    diff = (f"{v['diff'] * 100:+.1f} pts ({_ci(v.get('diff_ci95'))})"
                            if v.get("diff") is not None else "")
                    rows.append({"variant": k, "mode": mode, "quality": _pct(v.get("quality")),
                                 "95% CI": _ci(v.get("ci95")), "n": v.get("n"), "tuned − it (paired)": diff})
        return ["variant", "mode", "quality", "95% CI", "n", "tuned − it (paired)"], rows
    if kind == "compare":
        cols = ["input", "expected", *(r.get("columns") or ["base", "tuned"]), "vote"]
        return cols, r.get("rows") or []
    if kind == "forgetting":
        return ["category", "question", "answer", "base", "tuned", "status"], r.get("items") or []
    return [], []


def _as_compare(r: Any) -> Any:
    """The typed side-by-side result, also from a plain dict with its keys (older callers, test fakes)."""
    from tools.evaluate import CompareResult

    if isinstance(r, CompareResult):
        return r
    d = dict(r.items())
    known = {k: d[k] for k in CompareResult.__dataclass_fields__ if k in d}
    known.setdefault("test_sha256", "")
    for k in ("run_id", "test", "metric", "limit", "vote_a"):
        known.setdefault(k, None)
    known.setdefault("vote_b", "tuned")
    for k in ("n", "sampled_from", "test_rows"):
        known.setdefault(k, len(d.get("rows") or []))
    known.setdefault("rows", [])
    known.setdefault("columns", [])
    return CompareResult(**known)


def _pct(v: Any) -> str:
    return "?" if v is None else f"{float(v):.1%}"


def _ci(ci: Any) -> str:
    return f"{float(ci[0]):.1%}–{float(ci[1]):.1%}" if ci else "no CI"


def _cell(v: Any) -> str:
    s = f"{v:.3f}" if isinstance(v, float) else str(v)
    s = s.replace("\n", " ").replace("[", "(").replace("]", ")")
    return s if len(s) < 60 else s[:57] + "…"
