"""Training: a live loss chart (train and validation), progress, tokens/s, ETA, memory, cancel and resume.

Training runs as a child process (``tunewise train ... --events jsonl``); a worker thread reads its JSON lines
and posts them as messages, so the UI never waits on torch. When the advisor trains, its progress lands here too.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, ProgressBar, Static

from tui.messages import Progress, TaskDone
from tui.widgets.charts import LossChart
from tui.widgets.field import Field
from tui.widgets.question import PathSuggester

TRAIN_KEYS = ("loss", "train_loss")
VAL_KEYS = ("val_loss", "eval_loss")


class TrainingView(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.process: Any = None
        self.run_id: str | None = None
        self.last: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Field(compact=True, placeholder="split folder (train.jsonl, val.jsonl)", id="train-data",
                        suggester=PathSuggester())
            yield Field(compact=True, placeholder="max steps", id="train-steps", value="30", type="integer",
                        classes="steps")
            yield Button("Start", compact=True, id="train-start", variant="primary")
            yield Button("Cancel", compact=True, id="train-cancel", variant="error", disabled=True)
            yield Button("Resume", compact=True, id="train-resume", disabled=True)
        yield ProgressBar(id="train-progress", show_eta=False, classes="-hidden")
        yield Static("No run yet.", id="train-stats")
        yield LossChart(id="loss-chart")
        yield Static("", id="train-diagnosis")

    # -- feeding events (from the child process, or from the advisor) ---------------------------------------
    def feed(self, event: dict[str, Any]) -> None:
        """Render one ProgressEvent dict: chart points, progress, tokens/s, ETA, memory."""
        m = event.get("metrics") or {}
        step = event.get("step", 0)
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
        mem = s.get("memory_mb") or s.get("peak_memory_mb")
        if mem:
            parts.append(f"mem {mem:,.0f} MB")
        line = " · ".join(parts)
        return line + (f"\n[dim]{escape(message)}[/dim]" if message else "")

    # -- buttons ------------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id
        if bid == "train-start":
            self.start(self.query_one("#train-data", Input).value.strip(), max_steps=self._steps())
        elif bid == "train-cancel":
            self.cancel()
        elif bid == "train-resume" and self.run_id:
            self.start(self.query_one("#train-data", Input).value.strip(), resume=self.run_id)

    def _steps(self) -> int | None:
        text = self.query_one("#train-steps", Input).value.strip()
        return int(text) if text.isdigit() and int(text) > 0 else None

    def start(self, data_dir: str, *, resume: str | None = None, max_steps: int | None = None) -> None:
        if not data_dir and not resume:
            self.query_one("#train-stats", Static).update("[red]Give the split folder first (Data → Split).[/red]")
            return
        self.query_one("#loss-chart", LossChart).clear()
        self.query_one("#train-diagnosis", Static).update("")
        self.last = {}
        self._buttons(running=True)
        self.query_one("#train-stats", Static).update("starting the trainer…")
        self.train(data_dir, resume, max_steps)

    def cancel(self) -> None:
        if self.process is not None:
            self.process.cancel()
            self.query_one("#train-stats", Static).update("cancelling: the trainer writes a checkpoint first…")

    def on_unmount(self) -> None:
        # Quitting the app must not orphan the trainer: SIGINT makes it checkpoint and stop (resumable later).
        if self.process is not None:
            self.process.cancel()

    def _buttons(self, *, running: bool) -> None:
        self.query_one("#train-start", Button).disabled = running
        self.query_one("#train-cancel", Button).disabled = not running
        self.query_one("#train-resume", Button).disabled = running or not self.run_id

    @work(thread=True, exclusive=True, group="training")
    def train(self, data_dir: str, resume: str | None, max_steps: int | None = None) -> None:
        services: Any = self.app.services  # type: ignore[attr-defined]
        try:
            self.process = services.start_training(data_dir, resume=resume, max_steps=max_steps)
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

    def on_progress(self, message: Progress) -> None:
        message.stop()
        self.feed(message.event)

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        if message.error:
            self.query_one("#train-stats", Static).update(f"[red]✗ {escape(message.error)}[/red]")
        else:
            self.show_result((message.result or {}).get("run") or {})
            self.show_diagnosis((message.result or {}).get("diagnosis"))
        self._buttons(running=False)

    def show_result(self, run: dict[str, Any]) -> None:
        """The run's JSON document (from the child process or the advisor's pipeline)."""
        self.run_id = run.get("run_id") or self.run_id
        resume = " · Resume continues from the checkpoint" if run.get("status") == "interrupted" else ""
        self.query_one("#train-stats", Static).update(
            f"run {run.get('run_id', '?')}: {run.get('status', 'ended')}{resume} · best val loss "
            f"{_num(run.get('best_val_loss'))} · {run.get('steps', '?')} steps · "
            f"{_num(run.get('train_seconds'))} s · peak {_num(run.get('peak_memory_mb'))} MB")
        if run.get("diagnosis"):
            self.show_diagnosis(run["diagnosis"])
        self.query_one("#train-resume", Button).disabled = not self.run_id

    def show_diagnosis(self, d: dict[str, Any] | None) -> None:
        if not d:
            return
        lines = [f"[b]Diagnosis:[/b] {escape(str(d.get('verdict', '?')))}"]
        for issue in d.get("issues") or []:
            text = issue.get("text") or issue.get("message") or str(issue) if isinstance(issue, dict) else str(issue)
            rule = issue.get("rule") if isinstance(issue, dict) else None
            lines.append(f"  • {escape(text)}" + (f" [cyan]({rule})[/cyan]" if rule else ""))
        if d.get("next_config"):
            lines.append(f"  next config: {escape(str(d['next_config']))}")
        self.query_one("#train-diagnosis", Static).update("\n".join(lines))


def _num(v: Any) -> str:
    if v is None:
        return "?"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
