"""Quitting with work running: stop it (checkpoint kept), keep it running in the background, or stay."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

STOP, KEEP, STAY = "stop", "keep", "stay"


class QuitScreen(ModalScreen[str]):
    """Dismissed with ``stop``, ``keep`` or ``stay``. Keys: s, k, escape (stay); Stay has the focus, so a stray
    Enter changes nothing."""

    BINDINGS = [Binding("escape", "choose('stay')", "Stay"), Binding("s", "choose('stop')", "Stop it"),
                Binding("k", "choose('keep')", "Keep it running")]

    def __init__(self, work: list[str], *, can_keep: bool) -> None:
        super().__init__()
        self.work = work
        self.can_keep = can_keep

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box"):
            yield Static("[b]Work is still running[/b]", classes="quit-title")
            yield Static("\n".join(f"• {escape(w)}" for w in self.work), id="quit-work")
            keep_note = ("Keep: training runs go on without the app (the Runs view and `tunewise runs` show "
                         "them); a prompt baseline or evaluation stops with the app."
                         if self.can_keep else "Nothing here can run without the app.")
            yield Static("Stop: training writes a checkpoint first (resume it later); other work is marked "
                         f"interrupted.\n{keep_note}", classes="quit-help")
            with Horizontal(id="quit-buttons"):
                yield Button("Stop it and quit (s)", id="quit-stop", variant="error", compact=True)
                if self.can_keep:
                    yield Button("Keep it running and quit (k)", id="quit-keep", variant="warning", compact=True)
                yield Button("Stay (esc)", id="quit-stay", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#quit-stay", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(str(event.button.id).removeprefix("quit-"))

    def action_choose(self, choice: str) -> None:
        if choice == KEEP and not self.can_keep:
            return
        self.dismiss(choice)
