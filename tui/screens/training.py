"""Training: a live loss chart (train and validation), progress, tokens/s, ETA, memory, cancel and resume.

Training runs as a child process (``tunewise train ... --events jsonl``); a worker thread reads its JSON lines
and posts them as messages, so the UI never waits on torch. When the advisor trains (the same child process,
started by its pipeline), its progress lands here too, and Cancel stops it the same way: SIGINT, a checkpoint,
status ``interrupted``, then Resume. **Preview** shows the first examples as the model will see them (trained
tokens highlighted, the end-of-turn token marked, trained/masked counts); Start refuses when nothing or
everything would be trained.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, ProgressBar, Static

from tui.messages import PreviewReady, Progress, TaskDone
from tui.widgets.charts import LossChart
from tui.widgets.field import Field
from tui.widgets.question import PathSuggester

TRAIN_KEYS = ("loss", "train_loss")
VAL_KEYS = ("val_loss", "eval_loss")
RUNNING_STAGES = ("prepare", "train", "eval", "retry")


class TrainingView(Vertical):
    BINDINGS = [Binding("ctrl+r", "resume", "Resume", show=False)]  # a field keeps no ctrl+r: it works from one

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.process: Any = None
        self.run_id: str | None = None
        self.last: dict[str, Any] = {}
        self.advisor_run = False  # the advisor's pipeline is training (its child process, not ours)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Field(compact=True, placeholder="split folder (train.jsonl, val.jsonl)", id="train-data",
                        suggester=PathSuggester())
            yield Field(compact=True, placeholder="max steps", id="train-steps", value="30", type="integer",
                        classes="steps")
            yield Button("Preview", compact=True, id="train-preview-btn")
            yield Button("Start", compact=True, id="train-start", variant="primary")
            yield Button("Cancel", compact=True, id="train-cancel", variant="error", disabled=True)
            yield Button("Resume", compact=True, id="train-resume", disabled=True)
        yield ProgressBar(id="train-progress", show_eta=False, classes="-hidden")
        yield Static("No run yet. Preview shows what training will see; Start trains.", id="train-stats")
        with VerticalScroll(id="train-preview", classes="-hidden"):
            yield Static("", id="train-preview-text")
        yield LossChart(id="loss-chart")
        yield Static("", id="train-diagnosis")

    def on_show(self) -> None:
        # read the run log when the view is first shown, not at start-up (duckdb loads after the first paint)
        if not getattr(self, "_read_log", False):
            self._read_log = True
            self.find_resumable()

    @work(thread=True, exclusive=True, group="training-resumable")
    def find_resumable(self) -> None:
        """After a reopen: the newest run that stopped with a checkpoint, for Resume (read from the run log)."""
        services: Any = self.app.services  # type: ignore[attr-defined]
        try:
            found = services.resumable_training()
        except Exception:  # noqa: BLE001 - an unreadable run log: the view starts empty, as with no run
            return
        if found:
            self.post_message(TaskDone("resumable", result=found))

    def show_resumable(self, run: dict[str, Any]) -> None:
        if self.process is not None or self.advisor_run or self.run_id:
            return  # something newer is on screen
        self.run_id = str(run["run_id"])
        at = f" at step {run['step']}" + (f" of {run['total']}" if run.get("total") else "") if run.get("step") else ""
        self.query_one("#train-stats", Static).update(
            f"Run {escape(self.run_id)} was {run.get('status')}{at}; its checkpoint is kept: [b]Resume[/b] (ctrl+r) "
            "continues it.")
        self._buttons(running=False)

    # -- feeding events (from the child process, or from the advisor) ---------------------------------------
    def feed(self, event: dict[str, Any]) -> None:
        """Render one ProgressEvent dict: chart points, progress, tokens/s, ETA, memory."""
        m = event.get("metrics") or {}
        step = event.get("step", 0)
        if self.process is None and event.get("stage") in RUNNING_STAGES and not self.advisor_run:
            self.advisor_run = True  # the advisor's run: Cancel stops it too
            self.query_one("#train-preview", VerticalScroll).add_class("-hidden")
            self._buttons(running=True)
        elif event.get("stage") == "done" and self.advisor_run:
            self.advisor_run = False
            self._buttons(running=False)
        chart = self.query_one("#loss-chart", LossChart)
        for k in TRAIN_KEYS:
            if m.get(k) is not None:
                chart.add_point("train", step, m[k])
                break
        for k in VAL_KEYS:
            if m.get(k) is not None:
                chart.add_point("val", step, m[k])
                break
        if event.get("total"):
            bar = self.query_one("#train-progress", ProgressBar)
            bar.remove_class("-hidden")
            bar.update(total=event["total"], progress=step)
        if m.get("run_id") or event.get("run_id"):
            self.run_id = str(m.get("run_id") or event.get("run_id"))
        self.last.update({k: v for k, v in m.items() if v is not None})
        self.last["step"], self.last["total"] = step, event.get("total")
        self.query_one("#train-stats", Static).update(self._stats(str(event.get("message", ""))))

    def _stats(self, message: str) -> str:
        s = self.last
        parts = [f"step {s.get('step', 0)}" + (f"/{s['total']}" if s.get("total") else "")]
        if s.get("loss") is not None:
            parts.append(f"loss {s['loss']:.4f}")
        if s.get("val_loss") is not None:
            parts.append(f"val {s['val_loss']:.4f}")
        tps = s.get("tokens_per_s") or s.get("tokens_per_second")
        if tps:
            parts.append(f"{tps:,.0f} tok/s")
        eta = s.get("eta_s")
        if eta is not None:
            parts.append(f"ETA {int(eta) // 60}m{int(eta) % 60:02d}s")
        mem = next((s[k] for k in ("memory_mb", "rss_mb", "peak_memory_mb", "cuda_memory_mb") if s.get(k)), None)
        if mem is None and s.get("memory_gb"):
            mem = float(s["memory_gb"]) * 1024
        if mem:
            parts.append(f"mem {float(mem):,.0f} MB")
        line = " · ".join(parts)
        return line + (f"\n[dim]{escape(message)}[/dim]" if message else "")

    # -- buttons ------------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id
        if bid == "train-start":
            self.start(self.query_one("#train-data", Input).value.strip(), max_steps=self._steps())
        elif bid == "train-preview-btn":
            data = self.query_one("#train-data", Input).value.strip()
            if not data:
                self.query_one("#train-stats", Static).update("[red]Give the split folder or a training file.[/red]")
                return
            self.query_one("#train-stats", Static).update("reading the first examples as the model will see them…")
            self.preview(data)
        elif bid == "train-cancel":
            self.cancel()
        elif bid == "train-resume" and self.run_id:
            self.start(self.query_one("#train-data", Input).value.strip(), resume=self.run_id)

    def action_resume(self) -> None:
        """ctrl+r: Resume, when the button is on (a run with a checkpoint, nothing running)."""
        button = self.query_one("#train-resume", Button)
        if not button.disabled:
            button.press()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "train-data":  # Enter in the data field previews it (Start stays a button)
            event.stop()
            self.query_one("#train-preview-btn", Button).press()

    def _steps(self) -> int | None:
        text = self.query_one("#train-steps", Input).value.strip()
        return int(text) if text.isdigit() and int(text) > 0 else None

    def start(self, data_dir: str, *, resume: str | None = None, max_steps: int | None = None) -> None:
        if not data_dir and not resume:
            self.query_one("#train-stats", Static).update("[red]Give the split folder first (Data → Split).[/red]")
            return
        self.query_one("#loss-chart", LossChart).clear()
        self.query_one("#train-preview", VerticalScroll).add_class("-hidden")
        self.query_one("#train-diagnosis", Static).update("")
        self.last = {}
        self._buttons(running=True)
        self.query_one("#train-stats", Static).update("starting the trainer…")
        self.train(data_dir, resume, max_steps)

    def cancel(self) -> None:
        """Cancel: SIGINT to the trainer (ours or the advisor's), which checkpoints and stops."""
        services: Any = self.app.services  # type: ignore[attr-defined]
        if self.process is not None:
            self.process.cancel()
        elif self.advisor_run:
            procs = services.running_training("advisor")
            if procs:
                self.run_id = procs[0].run_id or self.run_id
            services.cancel("training")
        else:
            self.app.notify("No training is running.", title="Cancel", severity="warning")
            return
        self.query_one("#train-stats", Static).update(
            f"cancelling{' run ' + escape(self.run_id) if self.run_id else ''}: the trainer writes a checkpoint "
            "first, then Resume continues it…")

    def on_unmount(self) -> None:
        # Quitting the app must not orphan the trainer: SIGINT makes it checkpoint and stop (resumable later).
        if self.process is not None:
            self.process.cancel()

    def _buttons(self, *, running: bool) -> None:
        self.query_one("#train-start", Button).disabled = running
        self.query_one("#train-preview-btn", Button).disabled = running
        self.query_one("#train-cancel", Button).disabled = not running
        self.query_one("#train-resume", Button).disabled = running or not self.run_id

    @work(thread=True, exclusive=True, group="training")
    def train(self, data_dir: str, resume: str | None, max_steps: int | None = None) -> None:
        services: Any = self.app.services  # type: ignore[attr-defined]
        try:
            if not resume:  # see what will be trained before paying for it; refuse a run that learns nothing
                preview = services.train_preview(data_dir)
                if preview.refusal:
                    self.post_message(PreviewReady(preview))
                    self.post_message(TaskDone("train", error=f"refused to start: {preview.refusal}"))
                    return
            self.process = services.start_training(data_dir, resume=resume, max_steps=max_steps)
            self.run_id = getattr(self.process, "run_id", None) or self.run_id  # named from the start
            for event in self.process:
                self.post_message(Progress("train", event))
            result = getattr(self.process, "result", None) or {}
            rc = getattr(self.process, "returncode", 0)
            if rc not in (0, None) and not result:
                tail = self.process.stderr_tail() if hasattr(self.process, "stderr_tail") else ""
                self.post_message(TaskDone("train", error=f"the trainer exited with code {rc}\n{tail}"))
                return
            run_id = result.get("run_id") or self.run_id
            diagnosis = result.get("diagnosis")
            if diagnosis is None and run_id and result.get("status") in ("completed", None):
                try:
                    diagnosis = services.diagnose(run_id)
                except Exception:  # noqa: BLE001 - diagnosis is extra; the run itself succeeded
                    diagnosis = None
            self.post_message(TaskDone("train", result={"run": result, "diagnosis": diagnosis}))
        except Exception as e:  # noqa: BLE001
            self.post_message(TaskDone("train", error=services.describe_error(e)))
        finally:
            self.process = None

    @work(thread=True, exclusive=True, group="training-preview")
    def preview(self, data: str) -> None:
        services: Any = self.app.services  # type: ignore[attr-defined]
        try:
            self.post_message(PreviewReady(services.train_preview(data)))
        except Exception as e:  # noqa: BLE001
            self.post_message(TaskDone("preview", error=services.describe_error(e)))

    def on_preview_ready(self, message: PreviewReady) -> None:
        message.stop()
        p = message.preview
        self.query_one("#train-preview-text", Static).update(render_preview(p))
        self.query_one("#train-preview", VerticalScroll).remove_class("-hidden")
        verdict = (f"[red]✗ refused: {escape(p.refusal)}[/red]" if p.refusal
                   else "[green]✓ ready to train[/green]")
        self.query_one("#train-stats", Static).update(
            f"{verdict} · {p.examples_checked} examples: {p.trained_tokens:,} trained, {p.masked_tokens:,} masked "
            f"tokens ({p.trained_share:.1%} trained)")

    def on_progress(self, message: Progress) -> None:
        message.stop()
        self.feed(message.event)

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        if message.source == "resumable":
            self.show_resumable(message.result or {})
            return
        if message.error:
            self.query_one("#train-stats", Static).update(f"[red]✗ {escape(message.error)}[/red]")
            if message.source == "preview":
                return
        else:
            self.show_result((message.result or {}).get("run") or {})
            self.show_diagnosis((message.result or {}).get("diagnosis"))
        self._buttons(running=False)

    def show_result(self, run: dict[str, Any]) -> None:
        """The run's JSON document (from the child process or the advisor's pipeline)."""
        self.advisor_run = False
        self._buttons(running=False)
        self.run_id = run.get("run_id") or self.run_id
        resume = " · Resume continues from the checkpoint" if run.get("status") == "interrupted" else ""
        self.query_one("#train-stats", Static).update(
            f"run {run.get('run_id', '?')}: {run.get('status', 'ended')}{resume} · best val loss "
            f"{_num(run.get('best_val_loss'))} · {run.get('steps', '?')} steps · "
            f"{_num(run.get('train_seconds'))} s · peak {_num(run.get('peak_memory_mb'))} MB")
        if run.get("diagnosis"):
            self.show_diagnosis(run["diagnosis"])
        self.query_one("#train-resume", Button).disabled = not self.run_id

    def show_diagnosis(self, d: Any) -> None:
        """A diagnosis (``tools.train.diagnose.Diagnosis`` or its dict): verdict, each issue with its rule id, next config."""
        if not d:
            return
        if hasattr(d, "to_dict"):
            d = d.to_dict()
        lines = [f"[b]Diagnosis:[/b] {escape(str(d.get('verdict', '?')))}"]
        for issue in d.get("issues") or []:
            if hasattr(issue, "to_dict"):
                issue = issue.to_dict()
            text = issue.get("text") or issue.get("message") or str(issue) if isinstance(issue, dict) else str(issue)
            rule = (issue.get("rule") or issue.get("id")) if isinstance(issue, dict) else None
            lines.append(f"  • {escape(text)}" + (f" [cyan]({escape(str(rule))})[/cyan]" if rule else ""))
        if d.get("next_config"):
            lines.append(f"  next config: {escape(str(d['next_config']))}")
        self.query_one("#train-diagnosis", Static).update("\n".join(lines))


def render_preview(p: Any) -> str:
    """A TrainPreview as console markup: trained tokens on green, masked ones dim, end-of-turn in yellow."""
    lines = [f"[b]What training sees[/b] ({escape(str(p.model))}): [black on green] trained [/] [dim]masked[/dim] "
             f"[b yellow]⏎{escape(str(p.eos_token))}[/] end of turn"]
    for i, ex in enumerate(p.examples, 1):
        where = f", line {ex.line}" if ex.line else ""
        lines.append(f"\n[b]example {i}{where}[/b]: {ex.trained_tokens} trained, {ex.masked_tokens} masked tokens")
        parts = []
        for seg in ex.segments:
            text = escape(seg.text)
            if seg.eos:
                parts.append(f"[b yellow]⏎{text}[/]" + ("" if seg.trained else "[dim](masked)[/dim]"))
            elif seg.trained:
                parts.append(f"[black on green]{text}[/]")
            else:
                parts.append(f"[dim]{text}[/dim]")
        lines.append("".join(parts))
    lines += [f"[yellow]warning:[/yellow] {escape(w)}" for w in p.warnings]
    return "\n".join(lines)


def _num(v: Any) -> str:
    if v is None:
        return "?"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
