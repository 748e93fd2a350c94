"""The tunewise terminal UI: the advisor as a conversation, the work as live views.

Start-up stays light: this module imports Textual and the advisor's plain types only. The advisor (langgraph),
the tools (torch, transformers) and the run log load later, in worker threads, through ``tui.services``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.lazy import Lazy
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Static, TabbedContent, TabPane

from tui import services as default_services
from tui.messages import Progress
from tui.screens.advisor import AdvisorView
from tui.screens.data import DataView
from tui.screens.evaluation import EvaluationView
from tui.screens.help import HelpScreen
from tui.screens.prompt import PromptView
from tui.screens.quit import KEEP, STOP, QuitScreen
from tui.screens.runs import RunsView
from tui.screens.training import TrainingView

MIN_WIDTH, MIN_HEIGHT = 80, 24
EXIT_WITHIN_S = 1.0  # after the user's choice the process is back at the shell within 2 s (1 s, plus tear-down)
HERE = Path(__file__).resolve().parent

# ProgressEvent stages (tools' names) -> the view that renders them
ROUTES: list[tuple[frozenset[str], type[Any]]] = [
    (frozenset({"train", "eval", "prepare", "retry", "done"}), TrainingView),
    (frozenset({"prompt_eval"}), PromptView),
    (frozenset({"read", "decide", "write", "split", "augment"}), DataView),
    (frozenset({"evaluate_test", "forgetting"}), EvaluationView),
]

TABS = [("advisor", "Advisor"), ("data", "Data"), ("prompt", "Prompt baseline"), ("training", "Training"),
        ("runs", "Runs"), ("evaluation", "Evaluation")]


class ViewTabs(TabbedContent):
    """The views' tabs. A pane's "a widget in me got the focus" event that was queued before the user switched
    views (an F-key is a priority binding: it acts at once) must not switch the view back."""

    stale_focus: Widget | None = None  # the focused widget at the user's last switch

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.app.focused
        moved_on = focused is None or event.tab_pane not in focused.ancestors  # the focus has left that pane since
        if moved_on or (self.stale_focus is not None and focused is self.stale_focus):
            event.prevent_default()  # TabbedContent's own handler would show that pane again
            event.stop()


class TunewiseApp(App[None]):
    """``TunewiseApp(advisor_factory=..., services=...)``: both injectable, so tests run without the tools."""

    TITLE = "tunewise"
    SUB_TITLE = "should I fine-tune?"
    CSS_PATH = [HERE / "app.tcss", HERE / "screens" / "views.tcss"]  # absolute: subclasses live elsewhere
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "request_quit", "Quit", priority=True),
        # ctrl+c in the terminal does what ctrl+q does (the terminal is in raw mode: it is a key, not a signal)
        Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
        Binding("ctrl+x", "cancel_job", "Cancel job", priority=True),  # over a field's cut: stopping work matters more
        # priority: `?` reaches the app before a focused field types it; a field (tui.widgets.field.Field)
        # keeps `?` for itself only while the user is writing text in it
        Binding("question_mark", "help", "Help", key_display="?", priority=True),
        Binding("ctrl+b", "revise", "Back"),
        Binding("ctrl+g", "grade", "Grade outputs", show=False),  # people's grades: the share the bar needs
        # priority: a focused field or table (the runs table, the path fields) never swallows a view key
        *[Binding(f"f{i}", f"show_tab('{tab}')", title, show=False, priority=True)
          for i, (tab, title) in enumerate(TABS, 1)],
    ]

    def __init__(self, *, advisor_factory: Callable[..., Any] | None = None,
                 services: ModuleType | Any = None, chat: bool | None = None,
                 answers: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.start_answers = dict(answers or {})  # from the command line (--data, --test): the user's files
        self.services = services or default_services
        self.advisor_factory = advisor_factory or self.services.make_advisor
        self.chat_enabled = self.services.chat_model_configured() if chat is None else chat
        self.started_at = time.perf_counter()
        self.first_question_s: float | None = None
        # run() sets this: once the user has chosen how to quit, a watchdog ends the process within
        # EXIT_WITHIN_S even if a tool in a worker thread is still between two progress events.
        self.hard_exit = False
        self.exit_note: str | None = None
        self.quit_choice: str | None = None
        self._stopped: list[Any] = []
        self._note_lock = threading.Lock()
        self._note_printed = False
        self.leave_deadline: float | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        # Only the advisor is mounted before the first paint; the other views follow (Lazy) right after.
        with Vertical(id="main"), ViewTabs(id="tabs", initial="advisor"):
            with TabPane("Advisor", id="advisor"):
                yield AdvisorView(id="advisor-view")
            with TabPane("Data", id="data"):
                yield Lazy(DataView(id="data-view"))
            with TabPane("Prompt baseline", id="prompt"):
                yield Lazy(PromptView(id="prompt-view"))
            with TabPane("Training", id="training"):
                yield Lazy(TrainingView(id="training-view"))
            with TabPane("Runs", id="runs"):
                yield Lazy(RunsView(id="runs-view"))
            with TabPane("Evaluation", id="evaluation"):
                yield Lazy(EvaluationView(id="evaluation-view"))
        yield Static("", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._check_size(self.size.width, self.size.height)

    def _handle_exception(self, error: Exception) -> None:
        """Textual's hook for an exception nothing caught (a handler, or a worker that let it escape): the
        traceback goes to the bug log, as the CLI's does, before Textual shows it and exits."""
        from tools.errors import log_bug

        log_bug(error, "unhandled error in the TUI")
        super()._handle_exception(error)

    def first_question_shown(self) -> None:
        """Called once the first question has been painted: records the cold-start time."""
        if self.first_question_s is None:
            self.first_question_s = time.perf_counter() - self.started_at

    # -- minimum size --------------------------------------------------------------------------------------
    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.screen.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"The window is {width}x{height}; tunewise needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\n"
                "Make the terminal larger (or the font smaller); ctrl+q quits.")

    # -- actions -------------------------------------------------------------------------------------------
    def on_input_changed(self) -> None:
        if not self.screen_stack:
            return  # a field filled while the app shuts down
        self.refresh_bindings()  # the footer hides `? Help` while the focused field holds text being written

    def action_help(self) -> None:
        """`?`: open the help (anywhere but while writing text in a field); in the help, close it."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())

    # -- quitting and cancelling: long work never traps the user ----------------------------------------
    def _advisor_busy(self) -> bool:
        views = self.query(AdvisorView)
        return bool(views) and bool(views.first().busy)

    def action_request_quit(self) -> None:
        """ctrl+q / ctrl+c: quit at once when nothing runs; otherwise ask: stop it, keep it running, or stay."""
        if isinstance(self.screen, QuitScreen):
            return
        work = self.services.running_work(self._advisor_busy())
        if not work:
            self.leave(None)
            return
        can_keep = bool(self.services.running_training())
        self.push_screen(QuitScreen(work, can_keep=can_keep), self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        self.quit_choice = choice
        if choice == STOP:
            procs = self.services.stop_all_work()
            self._stopped = list(procs)
            self.leave(None)
        elif choice == KEEP:
            procs = self.services.keep_training_in_background()
            lines = [f"Training run {p.run_id} keeps running in the background (pid {p.proc.pid}); follow it with "
                     f"`tunewise runs` or the Runs view." for p in procs]
            self.leave("\n".join(lines) or None)

    def leave(self, note: str | None) -> None:
        """Exit now; with ``hard_exit`` (the real app) the process ends within EXIT_WITHIN_S whatever runs."""
        self.exit_note = note
        self.leave_deadline = deadline = time.monotonic() + EXIT_WITHIN_S
        if self.hard_exit:
            threading.Thread(target=self._watchdog, args=(deadline,), daemon=True, name="exit-watchdog").start()
        self.exit()

    def stop_note(self, wait_s: float = 0.0) -> str | None:
        """What happened to the training runs the user stopped (waits up to ``wait_s`` for their checkpoint)."""
        if not self._stopped:
            return self.exit_note
        deadline = time.monotonic() + wait_s
        lines = []
        for p in self._stopped:
            with contextlib.suppress(Exception):  # still writing its checkpoint: said below
                p.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            if not p.step:
                lines.append(f"Training run {p.run_id or '(starting)'} was stopped before its first step: there is "
                             "no checkpoint to resume; start it again.")
            elif p.returncode is None:
                lines.append(f"Training run {p.run_id} is writing its checkpoint (pid {p.proc.pid}) and will be "
                             f"marked interrupted; resume it with `tunewise train --resume {p.run_id}`.")
            else:
                lines.append(f"Training run {p.run_id} stopped at step {p.step}; checkpoint kept: "
                             f"`tunewise train --resume {p.run_id}` (or the Training view's Resume).")
        return "\n".join(lines)

    def print_exit_note(self, wait_s: float = 0.0) -> None:
        note = self.stop_note(wait_s)
        with self._note_lock:
            if self._note_printed or not note:
                return
            self._note_printed = True
        sys.stderr.write(note + "\n")
        sys.stderr.flush()

    def _watchdog(self, deadline: float) -> None:
        time.sleep(max(0.0, deadline - 0.4 - time.monotonic()))
        self.print_exit_note(wait_s=max(0.0, deadline - time.monotonic()))
        time.sleep(max(0.0, deadline - time.monotonic()))
        sys.stdout.flush()
        os._exit(self.return_code or 0)

    def action_cancel_job(self) -> None:
        """ctrl+x: cancel the long job of the view on screen (training checkpoints first)."""
        tab = self.query_one("#tabs", TabbedContent).active
        if tab == "training" and self.query(TrainingView):
            self.query_one(TrainingView).cancel()
            return
        if tab == "advisor":
            self.query_one(AdvisorView).stop()
            return
        if tab == "prompt" and self.query(PromptView):
            self.query_one(PromptView).cancel()
            return
        if self.services.cancel(tab):
            self.notify("Stopping: the job ends at its next progress step.", title="Cancel")
        else:
            self.notify("Nothing is running in this view.", title="Cancel", severity="warning")

    def action_show_tab(self, tab: str) -> None:
        if self.screen is not self.screen_stack[0]:
            return  # a dialog (help, quit) is open: it keeps the keys until it closes
        tabs = self.query_one("#tabs", ViewTabs)
        if tabs.active == tab:
            self.focus_view(tab)  # already there: the focus still comes back to where typing goes
            return
        tabs.stale_focus = self.focused
        # A focused field left in the pane being hidden would hand its focus to its neighbour in that pane, and
        # that would show the pane again (the F-key seemed to do nothing): the focus leaves first, and the view
        # shown takes it (focus_view).
        self.set_focus(None)
        tabs.active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Whichever way a view is shown (F-key, click), typing goes to it: the current question on the
        Advisor, the first field of any other view."""
        self.call_after_refresh(self.focus_view, str(event.pane.id))

    def focus_view(self, tab: str) -> None:
        if self.query_one("#tabs", TabbedContent).active != tab:
            return  # another view was shown meanwhile (focusing into a hidden pane would show it again)
        panes = self.query(f"TabPane#{tab}")
        if not panes:
            return
        pane = panes.first()
        if self.focused is not None and pane in self.focused.ancestors:
            return  # typing already goes there (a second focus would only queue another pane switch)
        if tab == "advisor":
            views = self.query(AdvisorView)
            q = views.first().question if views else None
            if q is not None and not q.disabled:
                q.focus_control()
            return
        # the screen's focus chain skips hidden widgets; a text field (where typing goes) comes first
        chain = [w for w in self.screen.focus_chain if pane in w.ancestors]
        fields = [w for w in chain if isinstance(w, Input)]
        if fields or chain:
            (fields or chain)[0].focus()

    def action_grade(self) -> None:
        """Open the grading pane on the Evaluation view's run, else the newest prompt baseline."""
        from textual.widgets import Input

        from tui.screens.grading import GradingScreen

        fields = self.query("#eval-run")
        run_id = fields.first(Input).value.strip() if fields else ""
        self.push_screen(GradingScreen(run_id or None), self._graded)

    def _graded(self, share: dict[str, Any] | None) -> None:
        if share and share.get("share") is not None:
            lo, hi = share["ci95"]
            self.notify(f"graded share {share['share']:.1%} [{lo:.1%}–{hi:.1%}] of {share['n']} outputs; the "
                        "advisor reads these grades (answer the grades question with empty)")

    def action_revise(self) -> None:
        self.query_one(AdvisorView).back()

    # -- routing progress from the advisor's tool calls to the live views ---------------------------------
    def route_progress(self, message: Progress) -> None:
        """The advisor's tool calls report here; each stage goes to the view that draws it."""
        stage = str(message.event.get("stage", ""))
        view_type: type[Any] | None = next((v for stages, v in ROUTES if stage in stages), None)
        if view_type is not None:
            views = self.query(view_type)
            if views:
                views.first().feed(message.event)

    def show_pipeline(self, pipe: dict[str, Any]) -> None:
        """Put the advisor's pipeline results (clean, train, evaluate) into their views."""
        if pipe.get("clean") and self.query(DataView):
            self.query_one(DataView).show_report("clean", pipe["clean"])
        train = pipe.get("train") or {}
        if train.get("run_id") and self.query(TrainingView):
            view = self.query_one(TrainingView)
            view.run_id = str(train["run_id"])
            view.show_result(train)
        if self.query(EvaluationView):
            ev = self.query_one(EvaluationView)
            if train.get("run_id"):
                ev.query_one("#eval-run", Input).value = str(train["run_id"])
            test = ((pipe.get("split") or {}).get("files") or {}).get("test")
            if test:
                ev.query_one("#eval-test", Input).value = str(test)
            if pipe.get("evaluate"):
                ev.show("test", pipe["evaluate"])


def run(answers: dict[str, Any] | None = None) -> None:
    """``tunewise`` with no arguments (or only ``--data``/``--test``: ``answers``), and ``make run``."""

    # Library progress bars and warnings would write over the screen; the views show progress instead.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app = TunewiseApp(answers=answers)
    app.hard_exit = True
    app.run()
    # Worker threads may still be finishing a tool step; the watchdog started by leave() ends the process in
    # time. Say what happened to the runs the user stopped or kept.
    left = (app.leave_deadline or 0.0) - 0.3 - time.monotonic()
    app.print_exit_note(wait_s=max(0.0, left))
