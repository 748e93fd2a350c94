"""The tunewise terminal UI: the advisor as a conversation, the work as live views.

Start-up stays light: this module imports Textual and the advisor's plain types only. The advisor (langgraph),
the tools (torch, transformers) and the run log load later, in worker threads, through ``tui.services``.
"""

from __future__ import annotations

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
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from tui import services as default_services
from tui.messages import Progress
from tui.screens.advisor import AdvisorView
from tui.screens.data import DataView
from tui.screens.evaluation import EvaluationView
from tui.screens.help import HelpScreen
from tui.screens.prompt import PromptView
from tui.screens.runs import RunsView
from tui.screens.training import TrainingView

MIN_WIDTH, MIN_HEIGHT = 80, 24
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


class TunewiseApp(App[None]):
    """``TunewiseApp(advisor_factory=..., services=...)``: both injectable, so tests run without the tools."""

    TITLE = "tunewise"
    SUB_TITLE = "should I fine-tune?"
    CSS_PATH = [HERE / "app.tcss", HERE / "screens" / "views.tcss"]  # absolute: subclasses live elsewhere
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # priority: `?` reaches the app before a focused field types it; a field (tui.widgets.field.Field)
        # keeps `?` for itself only while the user is writing text in it
        Binding("question_mark", "help", "Help", key_display="?", priority=True),
        Binding("ctrl+b", "revise", "Back"),
        *[Binding(f"f{i}", f"show_tab('{tab}')", title, show=False) for i, (tab, title) in enumerate(TABS, 1)],
    ]

    def __init__(self, *, advisor_factory: Callable[..., Any] | None = None,
                 services: ModuleType | Any = None, chat: bool | None = None) -> None:
        super().__init__()
        self.services = services or default_services
        self.advisor_factory = advisor_factory or self.services.make_advisor
        self.chat_enabled = self.services.chat_model_configured() if chat is None else chat
        self.started_at = time.perf_counter()
        self.first_question_s: float | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        # Only the advisor is mounted before the first paint; the other views follow (Lazy) right after.
        with Vertical(id="main"), TabbedContent(id="tabs", initial="advisor"):
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
        self.refresh_bindings()  # the footer hides `? Help` while the focused field holds text being written

    def action_help(self) -> None:
        """`?`: open the help (anywhere but while writing text in a field); in the help, close it."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

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
        from textual.widgets import Input

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


def run() -> None:
    """``tunewise`` with no arguments, and ``make run``."""
    import os

    # Library progress bars and warnings would write over the screen; the views show progress instead.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    TunewiseApp().run()
