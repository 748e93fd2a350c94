"""Grading: a person marks a seeded sample of a run's outputs good, bad or skip, beside the input and the reference.

The acceptance share with its Wilson 95% CI is the quality the 90% rule needs on free text (chrF and ROUGE-L
are only similarities). Every grade goes to the run log as it is given, so quitting keeps the graded rows
and reopening the pane starts at the first row not graded yet. Reached with ctrl+g from any view (the run
in the Evaluation view's run field, else the newest prompt baseline: the one the advisor just measured).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from tui.messages import TaskDone


def share_line(share: dict[str, Any], sampled: int) -> str:
    """'accepted 7 of 9 graded: 77.8% [45.3%–93.7%] (Wilson 95%), 1 skipped; 20 of 30 to grade'."""
    left = max(0, sampled - share["good"] - share["bad"] - share["skipped"])
    if share.get("share") is None:
        head = "nothing graded good or bad yet"
    else:
        lo, hi = share["ci95"]
        head = (f"accepted {share['good']} of {share['n']} graded: {share['share']:.1%} [{lo:.1%}–{hi:.1%}] "
                "(Wilson 95%)")
    return f"{head}, {share['skipped']} skipped; {left} of {sampled} to grade"


class GradingScreen(ModalScreen[dict[str, Any] | None]):
    """Dismissed with the share so far (``GradedShare.to_dict()``), or None if nothing could be loaded.
    Keys: g good, b bad, s skip, q / escape close (graded rows are kept)."""

    DEFAULT_CSS = """
    GradingScreen { align: center middle; }
    #grading-box { width: 90%; height: 90%; border: round $accent; background: $surface; padding: 0 1; }
    #grading-row { height: 1fr; }
    #grading-share { height: auto; margin-top: 1; }
    .grading-help { color: $text-muted; }
    """
    BINDINGS = [Binding("g", "grade('good')", "Good"), Binding("b", "grade('bad')", "Bad"),
                Binding("s", "grade('skip')", "Skip"), Binding("v", "next_variant", "Other outputs"),
                Binding("q,escape", "close", "Close (resume later)")]

    def __init__(self, run_id: str | None, variant: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.variant = variant
        self.grading: Any = None  # a tools.scoring.grades.GradingSet, once loaded
        self.current: Any = None  # the GradingItem on screen
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="grading-box"):
            yield Static("[b]Grade outputs[/b]: loading…", id="grading-title")
            with VerticalScroll(id="grading-row"):
                yield Static("", id="grading-input")
                yield Static("", id="grading-reference")
                yield Static("", id="grading-output")
            yield Static("", id="grading-share")
            yield Static("g good · b bad · s skip · v other outputs (variants, tuned) · q close (graded rows are "
                         "kept)", classes="grading-help")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="grading")
    def load(self, step: int = 0) -> None:
        """Load the sample (``step`` 1: the run's next variant, e.g. Step 2's best prompt or the tuned model)."""
        svc: Any = self.app.services  # type: ignore[attr-defined]
        try:
            variant = self.variant
            if step and self.grading is not None:
                names = svc.grading_variants(self.grading.run_id)
                here = names.index(self.grading.variant) if self.grading.variant in names else -1
                variant = names[(here + step) % len(names)] if names else None
            gs = svc.grading_set(self.run_id or (self.grading.run_id if self.grading else None), variant=variant)
        except Exception as e:  # noqa: BLE001 - shown to the user, like every worker's error
            self.app.call_from_thread(self._failed, svc.describe_error(e))
            return
        self.app.call_from_thread(self._loaded, gs)

    def action_next_variant(self) -> None:
        if self.grading is not None and not self.busy:
            self.load(1)

    def _failed(self, error: str) -> None:
        self.query_one("#grading-title", Static).update(f"[red]✗ {escape(error)}[/red]")

    def _loaded(self, gs: Any) -> None:
        self.grading = gs
        self.variant = gs.variant
        self.query_one("#grading-title", Static).update(
            f"[b]Grade outputs[/b] of {escape(gs.variant)} in run {escape(gs.run_id)}: a sample of {len(gs.items)} of "
            f"{gs.total_rows} test rows (seed {gs.seed}); {gs.metric or 'a similarity'} cannot say which are "
            "acceptable, you can")
        self.show_next()

    def show_next(self) -> None:
        gs = self.grading
        pending = gs.pending()
        self.current = pending[0] if pending else None
        self.query_one("#grading-share", Static).update(escape(share_line(gs.share().to_dict(), len(gs.items))))
        if self.current is None:
            self.query_one("#grading-input", Static).update("[b]Every sampled output is graded.[/b] q closes.")
            self.query_one("#grading-reference", Static).update("")
            self.query_one("#grading-output", Static).update("")
            return
        it = self.current
        done = len(gs.items) - len(pending) + 1
        self.query_one("#grading-input", Static).update(f"[b]row {it.idx}[/b] ({done} of {len(gs.items)})  "
                                                        f"[b]input[/b]\n{escape(it.input)}")
        self.query_one("#grading-reference", Static).update(f"\n[b]reference[/b]\n{escape(it.expected)}")
        self.query_one("#grading-output", Static).update(f"\n[b]output[/b]\n{escape(it.output)}")

    def action_grade(self, grade: str) -> None:
        if self.current is None or self.busy:
            return
        self.busy = True
        self.record(self.current.idx, grade)

    @work(thread=True, exclusive=True, group="grading-record")
    def record(self, idx: int, grade: str) -> None:
        svc: Any = self.app.services  # type: ignore[attr-defined]
        try:
            share = svc.record_grade(self.grading, idx, grade)
        except Exception as e:  # noqa: BLE001
            self.post_message(TaskDone("grade", error=svc.describe_error(e)))
            return
        self.post_message(TaskDone("grade", result=share.to_dict()))

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        self.busy = False
        if message.error:
            self.query_one("#grading-share", Static).update(f"[red]✗ {escape(message.error)}[/red]")
            return
        self.show_next()

    def action_close(self) -> None:
        self.dismiss(self.grading.share().to_dict() if self.grading is not None else None)
