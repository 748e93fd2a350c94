"""One widget per question type: options for a choice, checkboxes for several, a validated number or fraction
field, a path field with completion, free text. Bad input is explained inline and the question stays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Button, Input, RadioButton, RadioSet, SelectionList, Static

from agent.api import Question
from tui.widgets.field import Field


class PathSuggester(Suggester):
    """Completes file-system paths as you type (accept with the right arrow)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        p = Path(value).expanduser()
        folder, prefix = (p, "") if value.endswith("/") else (p.parent, p.name)
        try:
            names = sorted(c for c in folder.iterdir() if c.name.startswith(prefix) and not c.name.startswith("."))
        except OSError:
            return None
        if not names:
            return None
        child = names[0]
        return value + child.name[len(prefix):] + ("/" if child.is_dir() else "")


def parse_answer(q: Question, raw: str) -> tuple[Any, str | None]:
    """Parse and check a typed answer; returns ``(value, None)`` or ``(None, why it is wrong)``."""
    text = raw.strip()
    if not text:
        if q.default is not None:
            return q.default, None
        return None, "an answer is needed here" if q.required else None
    if q.type in ("number", "fraction"):
        percent = q.type == "fraction" and text.endswith("%")
        body = text[:-1].strip() if percent else text.replace("_", "").replace(",", "")
        try:
            value: float | int = int(body) if body.lstrip("-").isdigit() and not percent else float(body)
        except ValueError:
            # the advisor's own reading: every word a question's help offers ("none" for no GPU, "16 GB", "2k")
            from agent.questions import coerce

            ok, coerced, _ = coerce(q, text)
            if ok and isinstance(coerced, (int, float)):
                return coerced, None
            kind = "a fraction such as 0.9 or 90%" if q.type == "fraction" else "a number"
            return None, f"'{text}' is not {kind}"
        if percent:
            value = float(value) / 100
        lo = q.minimum if q.minimum is not None else (0.0 if q.type == "fraction" else None)
        hi = q.maximum if q.maximum is not None else (1.0 if q.type == "fraction" else None)
        if lo is not None and value < lo:
            return None, f"{text} is below the minimum of {_fmt(lo)}"
        if hi is not None and value > hi:
            return None, f"{text} is above the maximum of {_fmt(hi)}"
        return value, None
    if q.type == "path":
        p = Path(text).expanduser()
        if not p.exists():
            return None, f"no file or folder at {text}"
        return str(p), None
    if q.type == "choice" and q.choices and text not in q.choices:
        return None, f"choose one of: {', '.join(q.choices)}"
    return text, None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


class ChoiceSet(RadioSet):
    """Options for a choice: arrows highlight, space selects, Enter answers with the highlighted option."""

    BINDINGS = [Binding("enter", "answer", "Answer", show=False), Binding("space", "toggle_button", show=False)]

    @dataclass
    class Chosen(Message):
        label: str

    def on_mount(self) -> None:
        # RadioSet's own mount handler runs after this one and puts the cursor on the first option; the
        # default's place is known only then, so the cursor moves there after that (Enter alone accepts it)
        self.call_after_refresh(self._start_on_default)

    def _start_on_default(self) -> None:
        try:
            index = self.pressed_index
        except ValueError:  # answered (and its options removed) before this ran
            return
        if index >= 0:
            self._selected = index

    def action_answer(self) -> None:
        index = self._selected
        if index is None:  # nothing highlighted: the pressed option (or the default) answers
            index = self.pressed_index if self.pressed_index >= 0 else None
        if index is None:
            self.post_message(self.Chosen(""))
            return
        button = self._nodes[index]
        assert isinstance(button, RadioButton)
        if not button.value:
            button.value = True
        self.post_message(self.Chosen(str(button.label)))


class AnswerList(SelectionList[str]):
    """Boxes for a multi-choice: space toggles the highlighted box, Enter answers with the ticked ones."""

    BINDINGS = [Binding("enter", "answer", "Answer", show=False), Binding("space", "select", "Toggle", show=False)]

    class Done(Message):
        """Enter: answer with what is ticked."""

    def action_answer(self) -> None:
        self.post_message(self.Done())


COMMAND_WORDS = ("set", "back", "why")


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """A command typed where an answer goes: ``set NAME VALUE``, ``back`` or ``why [question]`` ->
    ``(word, rest)``; anything else is an answer (None)."""
    parts = text.strip().split(None, 2)
    if not parts or parts[0].lower() not in COMMAND_WORDS:
        return None
    word = parts[0].lower()
    if word == "back" and len(parts) > 1:
        return None  # "back pain": text, not the command
    return word, parts[1:]


class QuestionInput(Vertical):
    """The pending question, its typed control, an inline error line, the default, and Answer / Back."""

    @dataclass
    class Answered(Message):
        question_id: str
        value: Any
        free_text: bool = False
        took_default: bool = False  # Enter on the default, untouched: the advisor records it as not set by the user

    @dataclass
    class BackRequested(Message):
        question_id: str

    @dataclass
    class CommandTyped(Message):
        """``set NAME VALUE`` / ``back`` / ``why``, typed in any field of the question."""

        question_id: str
        word: str
        args: list[str]

    def __init__(self, question: Question, *, free_text: bool = False, can_go_back: bool = True,
                 id: str | None = None) -> None:
        super().__init__(id=id, classes=f"question q-{question.type}")
        self.question = question
        self.free_text = free_text
        self.can_go_back = can_go_back

    def compose(self) -> ComposeResult:
        q = self.question
        yield Static(q.prompt, classes="q-prompt", markup=False)
        if q.help:
            yield Static(q.help, classes="q-help", markup=False)
        yield from self._control()
        yield Static(q.error or "", id="q-error", classes="q-error" + ("" if q.error else " -empty"), markup=False)
        if self.free_text:
            yield Field(placeholder="…or answer in your own words (the chat model reads it)", id="q-free")
        elif q.type in ("choice", "yes_no", "multi_choice") and not q.id.startswith("_"):
            # options have no text field of their own: the commands the app suggests are typed here
            yield Field(placeholder="…or type a command: set NAME VALUE, back, why", id="q-free", compact=True)
        with Horizontal(classes="q-buttons"):
            yield Button("Answer", id="q-submit", variant="primary", compact=True)
            if self.can_go_back:
                yield Button("Back", id="q-back", compact=True)
            if q.default not in (None, "", []):
                yield Static(f"default: {self._default_text()}", classes="q-default", markup=False)

    def _default_text(self) -> str:
        d = self.question.default
        return ", ".join(map(str, d)) if isinstance(d, list) else str(d)

    def _control(self) -> ComposeResult:
        q = self.question
        if q.type in ("choice", "yes_no"):
            choices = q.choices or (["yes", "no"] if q.type == "yes_no" else [])
            default = q.default
            if isinstance(default, bool):
                default = "yes" if default else "no"
            yield ChoiceSet(*[RadioButton(c, value=(c == default)) for c in choices], id="q-control", compact=True)
        elif q.type == "multi_choice":
            defaults = set(q.default or [])
            yield AnswerList(*[(c, c, c in defaults) for c in q.choices], id="q-control", compact=True)
        else:
            value = "" if q.default is None else str(q.default)
            placeholder = {"number": "a number", "fraction": "e.g. 0.9 or 90%", "path": "a file path (→ completes)",
                           "text": "your answer"}.get(q.type, "")
            yield Field(value=value, placeholder=placeholder, id="q-control", compact=True,
                        type="text", suggester=PathSuggester() if q.type == "path" else None,
                        classes="-numeric" if q.type in ("number", "fraction") else "")

    def on_mount(self) -> None:
        self.focus_control()

    def focus_control(self) -> None:
        """Give the question's control the focus (also when the Advisor view is shown again)."""
        self.query_one("#q-control").focus()

    # -- reading and checking the answer --------------------------------------------------------------
    def read_value(self) -> tuple[Any, str | None]:
        q = self.question
        if q.type in ("choice", "yes_no"):
            rs = self.query_one("#q-control", RadioSet)
            if rs.pressed_button is None:
                if q.default is not None:
                    return (q.default if q.type == "choice" else _as_bool(q.default)), None
                return None, "pick one of the options (arrow keys, then Enter answers)"
            label = str(rs.pressed_button.label)
            return (_as_bool(label) if q.type == "yes_no" else label), None
        if q.type == "multi_choice":
            selected = list(self.query_one("#q-control", SelectionList).selected)
            if not selected and q.required:
                return None, "tick at least one (space toggles)"
            return selected, None
        return parse_answer(q, self.query_one("#q-control", Input).value)

    def show_error(self, message: str | None) -> None:
        err = self.query_one("#q-error", Static)
        err.update(message or "")
        err.set_class(not message, "-empty")

    def submit(self) -> None:
        if self._command(self.query("#q-control").first()):
            return
        value, error = self.read_value()
        self.show_error(error)
        if error is None:
            self.post_message(self.Answered(self.question.id, value, took_default=self._untouched_default()))

    def _untouched_default(self) -> bool:
        q = self.question
        if q.default in (None, "", []):
            return False
        control = self.query("#q-control").first()
        if isinstance(control, Input):
            return control.value.strip() == str(q.default)
        if isinstance(control, RadioSet):
            pressed = control.pressed_button
            default = ("yes" if q.default else "no") if isinstance(q.default, bool) else str(q.default)
            return pressed is not None and str(pressed.label) == default
        return False

    # -- events ---------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "q-submit":
            self.submit()
        elif event.button.id == "q-back":
            self.post_message(self.BackRequested(self.question.id))

    def on_choice_set_chosen(self, event: ChoiceSet.Chosen) -> None:
        """Enter on a highlighted option answers the question with it."""
        event.stop()
        q = self.question
        if not event.label:
            self.submit()
            return
        self.show_error(None)
        self.post_message(self.Answered(q.id, _as_bool(event.label) if q.type == "yes_no" else event.label))

    def _command(self, field: Any) -> bool:
        """A command in a text field goes to the view as a command, never as an answer (or dropped)."""
        if not isinstance(field, Input):
            return False
        cmd = parse_command(field.value)
        if cmd is None:
            return False
        self.show_error(None)
        self.post_message(self.CommandTyped(self.question.id, cmd[0], cmd[1]))
        field.value = "" if field.id == "q-free" or self.question.default is None else str(self.question.default)
        return True

    def on_answer_list_done(self, event: AnswerList.Done) -> None:
        event.stop()
        self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._command(event.input):
            return
        if event.input.id == "q-free" and event.value.strip() and not self.free_text:
            # no chat model reads free text: say so, never drop it
            self.show_error(f"'{event.value.strip()}' is not understood here: pick an option above (Enter answers), "
                            "or type set NAME VALUE, back or why")
        elif event.input.id == "q-free" and event.value.strip():
            self.post_message(self.Answered(self.question.id, event.value.strip(), free_text=True))
        else:
            self.submit()

    def on_input_changed(self, event: Input.Changed) -> None:
        initial = "" if self.question.default is None else str(self.question.default)
        if event.input.id == "q-control" and self.question.type in ("number", "fraction") and event.value != initial:
            # explain a bad number as it is typed, not only on submit
            _, error = parse_answer(self.question, event.value) if event.value.strip() else (None, None)
            self.show_error(error)


def _as_bool(v: Any) -> bool:
    return str(v).strip().lower() in ("yes", "y", "true", "1")
