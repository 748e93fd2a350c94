"""The advisor view: the conversation with the LangGraph advisor, the decision path and the checklist.

The advisor is created in a worker thread (langgraph loads there, after the first screen is up). Each answer
goes to ``Advisor.answer`` in a worker; the returned Step becomes the next question on screen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from agent.api import Question, Recommendation, Step
from tui.messages import (
    AdvisorFailed,
    AdvisorReady,
    Progress,
    SessionsFound,
    StepReady,
    Stopped,
    WorkClock,
    progress_line,
)
from tui.widgets.charts import LearningCurveChart
from tui.widgets.panels import Checklist, DecisionPath
from tui.widgets.question import QuestionInput

START = Question(
    id="_start", type="choice", prompt="How would you like to begin?",
    choices=["my own task", "the built-in demo task"], default="my own task",
    help="The demo is a synthetic, labelled support-ticket intent task that runs on the embedded model "
         "in a few minutes: prompt baseline → decision → clean → split → short LoRA run → evaluation.",
)

WELCOME = ("[b]tunewise[/b] — should you fine-tune? I measure a prompt baseline first, and only if prompts "
           "fall short do I clean the data, train an adapter and evaluate it. Answer in the box below; "
           "[b]Back[/b] (ctrl+b) revises the previous answer; [b]?[/b] shows every key.")


class AdvisorView(Horizontal):
    """Conversation on the left, the decision path and the checklist on the right."""

    BINDINGS = [Binding("w", "why", "Every rule", show=False)]  # a text field keeps `w` for typing; elsewhere it toggles

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.advisor: Any = None
        self.step: Step | None = None
        self.pending_start: dict[str, Any] | None = None
        self.busy = False
        self.load_error: str | None = None
        self.derived_shown: dict[str, Any] = {}
        self.full_reasons = False
        self.earlier: dict[str, str] = {}  # a start choice -> the earlier session it resumes
        self.clock = WorkClock()

    def compose(self) -> ComposeResult:
        # The welcome and the first question are composed, not mounted later: they are in the first paint.
        with Vertical(id="conversation-col"):
            with VerticalScroll(id="conversation"):
                yield Static(WELCOME, classes="welcome")
            with Horizontal(id="advisor-status-row", classes="-idle"):
                yield Static("", id="advisor-status", classes="-empty")
                yield Button("Stop (ctrl+x)", id="advisor-stop", variant="error", compact=True)
            with Vertical(id="question-slot"):
                yield QuestionInput(START, free_text=False, can_go_back=False, id="question")
        with VerticalScroll(id="side"):
            yield DecisionPath(id="decision-path")
            yield Checklist(id="checklist")

    def on_mount(self) -> None:
        given: dict[str, Any] = getattr(self.app, "start_answers", {}) or {}
        if given:
            self.say("Your files, from the command line (read first when you start your own task): " + "; ".join(
                f"{escape(k)} = {escape(str(v))}" for k, v in given.items()), classes="note")
        self.call_after_refresh(self._first_question_painted)

    def _first_question_painted(self) -> None:
        # Only now load the advisor (langgraph) and the knowledge tables: the import work would otherwise
        # compete with the first paint for the interpreter.
        self.app.first_question_shown()  # type: ignore[attr-defined]
        self.load_advisor()

    # -- transcript -------------------------------------------------------------------------------------
    def say(self, text: str, *, classes: str = "advisor-line") -> None:
        conv = self.query_one("#conversation", VerticalScroll)
        conv.mount(Static(text, classes=classes))
        conv.call_after_refresh(conv.scroll_end, animate=False, immediate=True)

    def action_why(self) -> None:
        self.toggle_reasons()

    def toggle_reasons(self) -> None:
        """`w`: the full list of cited rules under the card, or back to the card alone."""
        rec = self.step.recommendation if self.step else None
        if not rec:
            return
        self.full_reasons = not self.full_reasons
        recs = self.query(".recommendation")
        if recs:
            recs.last(Static).update(render_recommendation(rec, full=self.full_reasons))

    def set_status(self, text: str) -> None:
        status = self.query_one("#advisor-status", Static)
        status.update(text)
        status.set_class(not text, "-empty")

    def _show_stop(self, busy: bool) -> None:
        self.query_one("#advisor-status-row", Horizontal).set_class(not busy, "-idle")

    # -- stopping the advisor's work (ctrl+x, the Stop button) --------------------------------------------
    def stop(self) -> None:
        """Stop the advisor's current step: training checkpoints first; a tool in a thread ends at its next
        progress event and is recorded as interrupted."""
        if not self.busy:
            self.app.notify("The advisor is not working on anything.", title="Stop", severity="warning")
            return
        self.app.services.cancel("advisor")  # type: ignore[attr-defined]
        self.set_status("[yellow]stopping: training writes its checkpoint first…[/yellow]")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "advisor-stop":
            event.stop()
            self.stop()

    async def on_stopped(self, message: Stopped) -> None:
        message.stop()
        self.busy = False
        self._show_stop(False)
        self.set_status("")
        self.say("[yellow]■ stopped.[/yellow] What it finished is kept; answer again to rerun it.", classes="note")
        step = message.step
        if step is not None and step.kind == "question" and step.question is not None:
            self.step = step
            await self.ask(step.question)
        else:
            q = self.question
            if q is not None:
                q.disabled = False

    async def ask(self, q: Question, *, can_go_back: bool = True) -> None:
        slot = self.query_one("#question-slot", Vertical)
        await slot.remove_children()
        await slot.mount(QuestionInput(q, free_text=self.app.chat_enabled and q.id != "_start",  # type: ignore[attr-defined]
                                 can_go_back=can_go_back, id="question"))

    @property
    def question(self) -> QuestionInput | None:
        found = self.query("#question")
        return found.first(QuestionInput) if found else None

    # -- workers -------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="advisor-load")
    def load_advisor(self) -> None:
        app: Any = self.app
        try:
            items = app.services.checklist_items()
            app.call_from_thread(self.query_one("#checklist", Checklist).set_items, items)
        except Exception:  # noqa: BLE001 - the checklist is decoration; the advisor still works without it
            pass
        try:
            sessions = app.services.advisor_sessions()
        except Exception:  # noqa: BLE001 - no earlier sessions to offer; a new one still starts
            sessions = []
        if sessions:
            self.post_message(SessionsFound(sessions))
        try:
            adv = app.advisor_factory(on_progress=self._forward_progress)
        except Exception as e:  # noqa: BLE001 - shown to the user, never a traceback
            self.post_message(AdvisorReady(error=app.services.describe_error(e)))
            return
        self.advisor = adv
        self.post_message(AdvisorReady())

    async def on_sessions_found(self, message: SessionsFound) -> None:
        """Offer the earlier sessions beside a new one, while the first question is still unanswered."""
        message.stop()
        q = self.question
        if q is None or q.question.id != "_start" or q.disabled:
            return
        self.earlier = {}
        for s in message.sessions:
            what = (f"{s.get('answers')} answers" + (f", {Path(str(s['data'])).name}" if s.get("data") else "")
                    + f", {str(s.get('updated_at') or '')[:16]}")
            verb = "show the result of" if s.get("status") == "done" else "resume"
            self.earlier[f"{verb} {s['session_id']} ({what})"] = str(s["session_id"])
        start = Question(**{**START.to_dict(), "choices": [*START.choices, *self.earlier]})
        start.help = (START.help or "") + " Earlier sessions are kept: pick one to resume it where it stopped."
        await self.ask(start, can_go_back=False)

    @work(thread=True, exclusive=True, group="advisor-resume")
    def resume_session(self, session_id: str) -> None:
        """Open an earlier session: its pending question comes back (or its recommendation)."""
        app: Any = self.app
        try:
            adv = app.advisor_factory(session_id=session_id, on_progress=self._forward_progress)
            self.advisor = adv
            step = adv.start(None)
        except Exception as e:  # noqa: BLE001 - shown to the user, never a traceback
            self.post_message(AdvisorFailed(app.services.describe_error(e)))
            return
        self.post_message(StepReady(step))

    def _forward_progress(self, event: Any) -> None:
        d = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        self.post_message(Progress("advisor", d))

    @work(thread=True, exclusive=True, group="advisor")
    def call_advisor(self, action: str, value: Any = None) -> None:
        app: Any = self.app
        try:
            step = self._advise(action, value)
        except BaseException as e:  # noqa: BLE001 - a stop is a KeyboardInterrupt (agent.jobs.JobCancelled)
            if not app.services.is_cancelled(e) and not isinstance(e, Exception):
                raise
            error = app.services.describe_error(e)
            if app.services.is_cancelled(e):
                try:  # the question the stopped step was answering comes back, to answer again
                    self.post_message(Stopped(self.advisor.current()))
                except Exception:  # noqa: BLE001
                    self.post_message(Stopped(None))
                return
            self.post_message(AdvisorFailed(error))
            return
        self.post_message(StepReady(step))

    def _advise(self, action: str, value: Any) -> Step:
        if action == "start":
            return self.advisor.start(value)
        if action == "answer":
            return self.advisor.answer(value)
        if action == "back":
            return self.advisor.back()
        if action == "change":  # "set n_examples 500": replace a value read from the data
            return self.advisor.change(*value)
        return self.advisor.current()

    def _call(self, action: str, value: Any = None) -> None:
        self._call_started()
        self.call_advisor(action, value)

    def _call_started(self) -> None:
        self.busy = True
        self.app.services.advisor_step_started()  # type: ignore[attr-defined]
        self._show_stop(True)
        self.set_status("[dim]thinking…[/dim]")
        q = self.question
        if q is not None:
            q.disabled = True

    # -- messages ------------------------------------------------------------------------------------------
    def on_advisor_ready(self, message: AdvisorReady) -> None:
        if message.error:
            self.load_error = message.error
            self.set_status(f"[red]The advisor could not start:[/red] {message.error}")
            return
        if self.pending_start is not None:
            answers, self.pending_start = self.pending_start, None
            self._call("start", answers)

    @on(QuestionInput.Answered)
    def answered(self, message: QuestionInput.Answered) -> None:
        message.stop()
        current = self.question
        if current is not None:
            self.say(f"[b]?[/b] {escape(current.question.prompt)}", classes="asked")
        self.say(f"› {escape(_show(message.value))}", classes="answer")
        if message.question_id == "_start" and message.value in self.earlier:
            sid = self.earlier[message.value]
            self.say(f"Resuming session {escape(sid)}.", classes="note")
            self._call_started()
            self.resume_session(sid)
            return
        if message.question_id == "_start":
            demo = message.value == "the built-in demo task"
            app: Any = self.app
            answers = app.services.demo_answers() if demo else (dict(app.start_answers) or None)
            if demo:
                self.say("Demo task: synthetic support-ticket intents (labelled synthetic).", classes="note")
            if self.advisor is not None:
                self._call("start", answers)
            elif self.load_error:
                self.set_status(f"[red]The advisor could not start:[/red] {self.load_error}")
            else:
                self.pending_start = answers or {}
                self.query_one("#question-slot", Vertical).remove_children()
                self.set_status("[dim]starting the advisor…[/dim]")
            return
        change = parse_set(message.value)
        if change is not None:
            self._call("change", change)
            return
        # "" takes the question's default: the advisor then knows the user did not set that value
        self._call("answer", "" if message.took_default else message.value)

    @on(QuestionInput.CommandTyped)
    def command(self, message: QuestionInput.CommandTyped) -> None:
        """``set NAME VALUE``, ``back`` or ``why`` typed at any question: done, or said why not."""
        message.stop()
        self.say(f"› {escape(' '.join([message.word, *message.args]))}", classes="answer")
        if message.word == "back":
            self.back()
            return
        if message.word == "why":
            if self.advisor is None:
                self.say("[yellow]The advisor is still starting; ask again in a moment.[/yellow]", classes="note")
                return
            self.explain(" ".join(message.args) or None)
            return
        change = parse_set(" ".join(["set", *message.args]))
        if change is None:
            self.say(f"[red]✗ {escape(set_problem(message.args))}[/red]", classes="rejected")
            return
        if self.advisor is None or self.busy:
            self.say("[yellow]The advisor is busy; type it again when the question is back.[/yellow]", classes="note")
            return
        self._call("change", change)

    @work(thread=True, exclusive=True, group="advisor-why")
    def explain(self, text: str | None) -> None:
        app: Any = self.app
        try:
            answer = self.advisor.why(text)
        except Exception as e:  # noqa: BLE001 - shown to the user, never a traceback
            answer = app.services.describe_error(e)
        app.call_from_thread(self.say, escape(str(answer)), classes="note")

    @on(QuestionInput.BackRequested)
    def back(self, message: QuestionInput.BackRequested | None = None) -> None:
        if message is not None:
            message.stop()
        if self.advisor is None or self.busy:
            return
        self.say("‹ back", classes="note")
        self._call("back")

    async def on_step_ready(self, message: StepReady) -> None:
        message.stop()
        step = message.step
        self.busy = False
        self._show_stop(False)
        self.set_status("")
        self.step = step
        self.query_one("#decision-path", DecisionPath).set_path(step.path)
        self.query_one("#checklist", Checklist).set_state(step.checklist)
        if step.kind == "question" and step.question is not None:
            new = {k: v for k, v in (step.derived or {}).items() if k not in self.derived_shown}
            if new:
                self.derived_shown.update(new)
                self.say("Read from your data (type [b]set NAME VALUE[/b] to change one): " + "; ".join(
                    f"{escape(k)} = {_fmt(v.get('value'))} ({_fmt(v.get('from'))})" for k, v in new.items()),
                    classes="note")
            if step.question.id == "go_on" and step.recommendation and not step.question.error:
                # the answer comes before the question whether to spend CPU time on it
                self.say(render_recommendation(step.recommendation), classes="recommendation")
            if step.question.error:
                self.say(f"[red]✗ {escape(step.question.error)}[/red]", classes="rejected")
            await self.ask(step.question)
        else:
            self.query_one("#question-slot", Vertical).remove_children()
            rec = step.recommendation
            self.say(render_recommendation(rec or {}), classes="recommendation")
            if rec and rec.learning_curve:
                chart = LearningCurveChart(classes="learning-curve")
                chart.set_curve(rec.learning_curve, bar=rec.quality_bar)
                conv = self.query_one("#conversation", VerticalScroll)
                conv.mount(chart)
            if rec and rec.pipeline:
                self.app.show_pipeline(rec.pipeline)  # type: ignore[attr-defined]

    def on_advisor_failed(self, message: AdvisorFailed) -> None:
        message.stop()
        self.busy = False
        self._show_stop(False)
        self.set_status(f"[red]✗ {escape(message.error)}[/red]")
        self.say(f"[red]✗ {escape(message.error)}[/red]", classes="rejected")  # in the transcript too: never lost
        q = self.question
        if q is not None:
            q.disabled = False

    def on_progress(self, message: Progress) -> None:
        ev = message.event
        pace = self.clock.line(ev)  # re-estimated as the work runs, from this machine's pace so far
        self.set_status(f"[dim]{progress_line(ev)}{' · ' + pace if pace else ''}[/dim]")
        self.app.route_progress(message)  # type: ignore[attr-defined]


def parse_set(value: Any) -> tuple[str, str] | None:
    """``set n_examples 500`` -> ("n_examples", "500"): any answer (one read from the data, or given earlier)
    replaced from any text field. Other spellings scripts use (``data_path``) name the same question."""
    parts = str(value).strip().split(None, 2) if isinstance(value, str) else []
    if len(parts) == 3 and parts[0].lower() == "set":
        from agent.questions import ALIASES, QUESTIONS

        name = ALIASES.get(parts[1], parts[1])
        if name in QUESTIONS:
            return name, parts[2]
    return None


def set_problem(args: list[str]) -> str:
    """Why ``set`` with these words is not a change the advisor can make (said to the user)."""
    from agent.questions import ALIASES, QUESTIONS

    if not args:
        return "set needs a name and a value, e.g. set test_set test.csv"
    if ALIASES.get(args[0], args[0]) not in QUESTIONS:
        return f"there is no answer named '{args[0]}'; the names are: {', '.join(QUESTIONS)}"
    return f"set {args[0]} needs a value, e.g. set {args[0]} VALUE"


def _show(v: Any) -> str:
    if v is None or v == "" or v == []:
        return "(skipped)"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return str(v)


def _number(n: dict[str, Any]) -> str:
    if n.get("text"):  # the card words it (a graded share, or a similarity never set against the bar)
        return escape(str(n["text"]))
    v, bar = n.get("value"), n.get("bar")
    if isinstance(v, float) and v <= 1 and isinstance(bar, float):
        return f"{escape(str(n.get('name')))} {v:.0%} vs {bar:.0%} bar ({n.get('source')})"
    return f"{escape(str(n.get('name')))} {_fmt(v)} (fine-tuning from {_fmt(bar)}) ({n.get('source')})"


def render_recommendation(rec: Recommendation | dict[str, Any], *, full: bool = False) -> str:
    """The card first: decision, summary, method, the numbers against the bar, the 2-4 deciding rules and what
    would change the decision. ``full`` adds every cited rule (the `w` key toggles it)."""
    if not isinstance(rec, dict):
        rec = rec.to_dict()
    decision = next((rec[k] for k in ("decision", "path", "recommendation", "verdict")
                     if isinstance(rec.get(k), str)), "done")
    lines = [f"[b reverse] Recommendation: {escape(decision.replace('_', ' '))} [/]"]
    if rec.get("summary"):
        lines.append(f"[b]{_fmt(rec['summary'])}[/b]")
    nxt = rec.get("next_step")
    if nxt and str(nxt).rstrip(".") not in str(rec.get("summary") or ""):  # each sentence once
        lines.append(f"[b]next[/b]: {_fmt(nxt)}")
    card = rec.get("card") or {}
    if card.get("numbers"):
        lines.append("[b]numbers[/b]: " + "; ".join(_number(n) for n in card["numbers"]))
    if (card.get("deciding_number") or {}).get("text"):
        lines.append(f"[b]deciding number[/b]: {_fmt(card['deciding_number']['text'])}")
    baseline = render_baseline(rec)
    if baseline:
        lines.append(baseline)
    if rec.get("method"):
        mem = rec.get("memory_estimate_gb")
        lines.append(f"[b]method[/b]: {_fmt(rec['method'])}" + (f" (about {_fmt(mem)} GB on the machine you train on)"
                                                                 if mem is not None else ""))
    for d in card.get("deciding") or []:
        lines.append(f"  [cyan]{escape(str(d.get('rule')))}[/cyan] {_fmt(d.get('text'))}")
    changes = card.get("what_would_change") or []
    if changes:
        lines.append("[b]what would change it[/b]: " + "; ".join(_fmt(c) for c in changes))
    derived = rec.get("derived") or {}
    if derived:
        lines.append("[b]read from your data[/b] (set NAME VALUE to change): " + "; ".join(
            f"{escape(k)} = {_fmt(v.get('value'))}" for k, v in derived.items()))
    for key in ("why", "next_steps", "config"):  # other front ends' fields, shown as they are
        if rec.get(key) not in (None, "", [], {}):
            lines.append(f"[b]{key.replace('_', ' ')}[/b]: {_fmt(rec[key])}")
    if isinstance(rec.get("pipeline"), dict):
        lines.append(render_pipeline(rec["pipeline"]))
    reasons = rec.get("reasons") or []
    if full:
        lines.append("[b]every rule cited[/b]:")
        lines += [f"  [cyan]{escape(str(r.get('rule')))}[/cyan] {_fmt(r.get('text'))}" for r in reasons]
    elif reasons:
        lines.append(f"[dim]{len(reasons)} rules cited: press w for the full list (also in the decision path).[/dim]")
    return "\n".join(lines)


def render_baseline(rec: dict[str, Any]) -> str:
    """The measured prompt baseline as the side panel has it: score with its CI and metric on n rows, the
    latency against the user's budget, and the bar as the user set it (or the default)."""
    base = rec.get("prompt_baseline") or {}
    bar = rec.get("quality_bar")
    parts = []
    if isinstance(base.get("quality"), (int, float)):
        ci = base.get("ci95") or []
        ci_text = f" [{ci[0]:.0%}, {ci[1]:.0%}]" if len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci) else ""
        parts.append(f"{escape(str(base.get('metric') or 'quality'))} {base['quality']:.0%}{escape(ci_text)}"
                     + (f" on {base['n']} test rows" if base.get("n") else ""))
    if isinstance(bar, (int, float)):
        parts.append(f"{'your' if rec.get('quality_bar_user_set') else 'the default'} bar {bar:.0%}")
    latency = base.get("latency_ms")
    p50 = latency.get("p50") if isinstance(latency, dict) else latency
    budget = rec.get("latency_budget_ms")
    if isinstance(p50, (int, float)):
        parts.append(f"latency {p50:.0f} ms" + (
            f" ({'within' if p50 <= budget else 'over'} your {budget:g} ms budget)"
            if isinstance(budget, (int, float)) else " (no budget given)"))
    return "[b]prompt baseline[/b]: " + " · ".join(parts) if base and parts else ""


def render_pipeline(pipe: dict[str, Any]) -> str:
    """What the advisor ran after the recommendation: one line per tool, the error in red."""
    lines = ["[b]pipeline[/b]:"]
    clean, split, train, ev = (pipe.get(k) or {} for k in ("clean", "split", "train", "evaluate"))
    if clean:
        lines.append(f"  ✔ clean: kept {clean.get('kept_rows')} of {clean.get('input_rows')} rows")
    if split:
        lines.append(f"  ✔ split: train {split.get('train')}, val {split.get('val')}, test {split.get('test')}")
    if train:
        lines.append(f"  ✔ train: run {escape(str(train.get('run_id')))} {train.get('status')}, best val loss "
                     f"{_fmt(train.get('best_val_loss'))} (Training and Runs views)")
    if ev:
        ci = ev.get("ci95") or [None, None]
        lines.append(f"  ✔ evaluate: {ev.get('metric')} {_fmt(ev.get('quality'))} "
                     f"[{_fmt(ci[0])}, {_fmt(ci[1])}] on {ev.get('n')} test examples (Evaluation view)")
    timings = pipe.get("timings") or {}
    if timings:
        lines.append("  measured time: " + ", ".join(f"{escape(k.replace('_', ' '))} {v:g} s"
                                                     for k, v in timings.items()))
    err = pipe.get("error")
    if err:
        what = err.get("message") or err.get("what") or str(err) if isinstance(err, dict) else str(err)
        step = f" at {err.get('step')}" if isinstance(err, dict) and err.get("step") else ""
        lines.append(f"  [red]✗ stopped{step}: {escape(str(what))}[/red]")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "; ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:.3g}"
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s.replace("[", r"\[")
