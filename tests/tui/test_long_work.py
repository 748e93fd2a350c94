"""Long work never traps the user, and keys behave as people expect (issue 15 items 1, 5, 7 and step-2 rows).

Pilot tests with the fake advisor and tools; ``agent.jobs`` with real child processes (small Python scripts that
behave like the trainer: SIGINT -> checkpoint -> status interrupted)."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input, Markdown, RadioSet

from agent import jobs
from tests.tui.fakes import FakeAdvisor, FakeServices
from tests.tui.test_advisor_view import wait_question
from tui.app import TunewiseApp
from tui.screens.advisor import AdvisorView
from tui.screens.help import HelpScreen
from tui.screens.prompt import PromptView
from tui.screens.quit import QuitScreen
from tui.screens.training import TrainingView

SIZE = (100, 30)


async def until(pilot: Any, cond: Any, n: int = 300) -> None:
    for _ in range(n):
        await pilot.pause(0.02)
        if cond():
            return
    raise AssertionError("condition never became true")


async def views_mounted(pilot: Any) -> None:
    """Wait for the lazily mounted views: a test that ends before they mount races the app's shutdown."""
    from tui.screens.evaluation import EvaluationView

    await until(pilot, lambda: bool(pilot.app.query(EvaluationView)), n=1000)


class QuitServices(FakeServices):
    """Fake services with one training run in progress (or none): records what quitting asked for."""

    def __init__(self, busy: bool = True) -> None:
        super().__init__()
        self.busy = busy

    def running_work(self, advisor_busy: bool = False) -> list[str]:
        return ["training run train-x at step 3/10 (the advisor's pipeline)"] if self.busy else []

    def running_training(self, source: str | None = None) -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(run_id="train-x", source="advisor")] if self.busy else []

    def stop_all_work(self) -> list[Any]:
        self.calls.append(("stop_all_work",))
        return []

    def keep_training_in_background(self) -> list[Any]:
        self.calls.append(("keep",))
        return []

    def cancel(self, view: str) -> bool:
        self.calls.append(("cancel", view))
        return True


def make_app(services: Any = None, **advisor_kw: Any) -> tuple[TunewiseApp, list[FakeAdvisor]]:
    made: list[FakeAdvisor] = []

    def factory(**kw: Any) -> FakeAdvisor:
        adv = FakeAdvisor(**{**kw, **advisor_kw})
        made.append(adv)
        return adv

    return TunewiseApp(advisor_factory=factory, services=services or FakeServices()), made


# -- keys ---------------------------------------------------------------------------------------------------
async def test_enter_on_the_highlighted_choice_answers_it() -> None:
    app, made = make_app()
    async with app.run_test(size=SIZE) as pilot:
        q = await wait_question(pilot, "_start")
        assert app.focused is q.query_one(RadioSet)  # focused as soon as it is shown: no Tab needed
        await until(pilot, lambda: bool(made))
        await pilot.press("enter")  # Enter alone: the highlighted option (the default) is the answer
        await wait_question(pilot, "n_examples")
        assert made[0].calls[0] == ("start", None)  # "my own task"
        await views_mounted(pilot)


async def test_a_number_field_has_focus_when_its_question_appears() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")
        q = await wait_question(pilot, "n_examples")
        await until(pilot, lambda: app.focused is q.query_one("#q-control", Input))
        await pilot.press("ctrl+u", *"2500", "enter")  # typed straight away, no click or Tab
        await wait_question(pilot, "prompt_quality")
        await views_mounted(pilot)


async def test_help_says_enter_answers_a_choice_and_how_to_stop_work() -> None:
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await views_mounted(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.query_one(Markdown).source
        assert "highlighted option of a choice" in text
        assert "ctrl+x" in text and "keep it running in the background" in text


# -- quitting with work running ------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["ctrl+q", "ctrl+c"])
async def test_quit_with_training_running_asks_and_stop_stops_it(key: str) -> None:
    services = QuitServices()
    app, _ = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, QuitScreen))
        assert "train-x" in str(app.screen.query_one("#quit-work").render())
        assert app.screen.query("#quit-keep")  # training can go on in the background
        await pilot.press("s")
        await until(pilot, lambda: app.quit_choice == "stop")
    assert ("stop_all_work",) in services.calls and ("keep",) not in services.calls
    assert app.leave_deadline is not None


async def test_quit_keep_leaves_training_running_and_stay_changes_nothing() -> None:
    services = QuitServices()
    app, _ = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("escape")  # stay
        await until(pilot, lambda: not isinstance(app.screen, QuitScreen))
        assert services.calls == [] and app.leave_deadline is None
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.click("#quit-keep")
        await until(pilot, lambda: app.quit_choice == "keep")
    assert services.calls == [("keep",)]


async def test_quit_with_nothing_running_quits_at_once() -> None:
    app, _ = make_app(QuitServices(busy=False))
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await views_mounted(pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: app.leave_deadline is not None)
        assert not isinstance(app.screen, QuitScreen)


# -- cancelling from the view that shows the work ------------------------------------------------------------
async def test_training_view_cancels_the_advisors_training_run() -> None:
    services = QuitServices()
    app, _ = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(TrainingView)))
        view = app.query_one(TrainingView)
        assert app.query_one("#train-cancel", Button).disabled
        # the advisor's pipeline trains: its events reach the view through the app's router
        from tui.messages import Progress

        app.route_progress(Progress("advisor", {"stage": "train", "step": 2, "total": 10,
                                                "metrics": {"loss": 2.0, "memory_mb": 812.0}}))
        await pilot.pause(0.05)
        assert not app.query_one("#train-cancel", Button).disabled
        assert "mem 812 MB" in str(view.query_one("#train-stats").render())
        await pilot.press("f4")
        await pilot.click("#train-cancel")
        assert ("cancel", "training") in services.calls
        stats = str(view.query_one("#train-stats").render())
        assert "checkpoint" in stats and "train-x" in stats and view.run_id == "train-x"  # Resume knows the run


async def test_advisor_stop_ends_its_step_and_asks_again() -> None:
    class SlowAdvisor(FakeAdvisor):
        def answer(self, value: Any) -> Any:  # a tool that reports progress until it is stopped
            self.calls.append(("answer", value))
            for _ in range(500):
                jobs.advisor_token.check()
                time.sleep(0.01)
            return super().answer(value)

    made: list[FakeAdvisor] = []
    app = TunewiseApp(advisor_factory=lambda **kw: made.append(SlowAdvisor(**kw)) or made[-1],
                      services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("enter")
        q = await wait_question(pilot, "n_examples")
        await pilot.press("ctrl+u", *"2500", "enter")
        view = app.query_one(AdvisorView)
        await until(pilot, lambda: view.busy)
        assert not app.query_one("#advisor-status-row").has_class("-idle")  # Stop is shown while it works
        await pilot.press("ctrl+x")
        await until(pilot, lambda: not view.busy)
        q = await wait_question(pilot, "n_examples")  # the stopped question is asked again
        assert any("stopped" in str(s.render()) for s in app.query(".note"))
        assert not q.disabled


async def test_prompt_variants_fill_the_table_row_by_row() -> None:
    """The events prompt evaluation sends: an estimate line (never a table row), then one event per look of a
    variant with its score so far; a 0% variant shows its interval, latency and n like any other."""
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(PromptView)))
        view = app.query_one(PromptView)
        table = view.query_one("#prompt-table", DataTable)
        view.feed({"stage": "prompt_eval", "step": 0, "total": None,
                   "message": "about 7 min on this machine (estimate: 0.9 s a row x variant)"})
        await pilot.pause(0.02)
        assert table.row_count == 0 and "about 7 min" in str(view.query_one("#prompt-summary").render())
        view.feed({"stage": "prompt_eval", "step": 0, "total": 3, "message": "plain: 10/300 rows",
                   "metrics": {"n": 10, "of": 300, "quality": 0.0, "ci_low": 0.0, "ci_high": 0.2775,
                               "latency_ms": 41.0, "prompt_tokens": 812.0}})
        view.feed({"stage": "prompt_eval", "step": 0, "total": 3, "message": "plain: 20/300 rows",
                   "metrics": {"n": 20, "of": 300, "quality": 0.0, "ci_low": 0.0, "ci_high": 0.1611,
                               "latency_ms": 40.0, "prompt_tokens": 812.0}})
        view.feed({"stage": "prompt_eval", "step": 1, "total": 3, "message": "few_shot: 20/300 rows",
                   "metrics": {"n": 20, "of": 300, "quality": 0.153, "ci_low": 0.05, "ci_high": 0.36,
                               "latency_ms": 55.0, "prompt_tokens": 990.0}})
        await pilot.pause(0.02)
        assert table.row_count == 2
        plain = [str(c) for c in table.get_row_at(0)]
        assert plain == ["plain", "0.0%", "0.0%–16.1%", "40", "812", "20"]
        assert "15.3%" in table.get_row_at(1)  # few-shot's score, before the race ends
        view.feed({"stage": "prompt_eval", "step": 3, "total": 3, "message": "stopped early: decisive at n=20"})
        await pilot.pause(0.02)
        assert table.row_count == 2  # the closing line is said above the table, not added to it
        assert "decisive at n=20" in str(view.query_one("#prompt-summary").render())


async def test_prompt_view_cancel_button_stops_its_run(tmp_path: Path) -> None:
    services = FakeServices()
    gate = threading.Event()

    def prompt_eval(path: str, *, on_progress: Any = None, limit: int | None = None) -> dict[str, Any]:
        from tui import services as real

        with real.job("prompt", "prompt baseline", on_progress) as relay:
            from tools.types import ProgressEvent

            for i in range(1000):
                relay(ProgressEvent("prompt_eval", i, 1000, message="plain"))
                gate.wait(0.01)
        return {}

    services.prompt_eval = prompt_eval  # type: ignore[method-assign]
    app, _ = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: bool(app.query("#prompt-data")))
        app.query_one("#prompt-data", Input).value = str(tmp_path / "x.jsonl")
        await pilot.click("#prompt-run")
        await until(pilot, lambda: not app.query_one("#prompt-cancel", Button).disabled)
        await pilot.click("#prompt-cancel")
        await until(pilot, lambda: "stopped" in str(app.query_one("#prompt-summary").render()))
        assert not app.query_one("#prompt-run", Button).disabled


async def test_training_view_refuses_a_run_that_trains_nothing() -> None:
    services = FakeServices()
    app, _ = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: bool(app.query("#train-data")))
        view = app.query_one(TrainingView)
        view.query_one("#train-data", Input).value = "/tmp/refuse-split"
        await pilot.click("#train-start")
        await until(pilot, lambda: "refused" in str(view.query_one("#train-stats").render()))
        assert not any(c[0] == "train" for c in services.calls)  # never started
        shown = str(view.query_one("#train-preview-text").render())
        assert "card_arrival" in shown and "⏎<|im_end|>" in shown
        view.query_one("#train-data", Input).value = "/tmp/split"
        await pilot.click("#train-preview-btn")
        await until(pilot, lambda: "ready to train" in str(view.query_one("#train-stats").render()))
        assert "4 trained" in str(view.query_one("#train-stats").render())


# -- bugs in workers ------------------------------------------------------------------------------------------
def test_a_bug_in_a_worker_is_logged_with_its_traceback_and_shown_as_one_line(tmp_path: Path) -> None:
    from tools import paths
    from tui import services

    try:
        {}["missing"]  # noqa: B018 - the bug
    except KeyError as e:
        line = services.describe_error(e)
    assert "\n" not in line and "internal error" in line and str(paths.log_file()) in line
    log = paths.log_file().read_text()
    assert "Traceback" in log and "KeyError" in log and "{}[\"missing\"]" in log


# -- agent.jobs: the child process and cancel tokens ----------------------------------------------------------
TRAINER = textwrap.dedent("""
    import json, signal, sys, time, pathlib
    stop = {"set": False}
    signal.signal(signal.SIGINT, lambda *a: stop.update(set=True))
    ckpt = pathlib.Path(sys.argv[1])
    for step in range(1, 400):
        print(json.dumps({"stage": "train", "step": step, "total": 400, "metrics": {"loss": 1.0 / step}}), flush=True)
        time.sleep(0.02)
        if stop["set"]:
            ckpt.write_text(str(step))  # the trainer's checkpoint at the end of the step
            print(json.dumps({"stage": "result", "result": {"run_id": "train-x", "status": "interrupted",
                                                             "steps": step}}), flush=True)
            sys.exit(130)
    print(json.dumps({"stage": "result", "result": {"run_id": "train-x", "status": "completed"}}), flush=True)
""")


def test_training_process_cancel_checkpoints_and_reports_interrupted(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint"
    proc = jobs.TrainingProcess([], cmd=[sys.executable, "-c", TRAINER, str(ckpt)], run_id="train-x")
    assert proc in jobs.running()
    events = []
    for ev in proc:
        events.append(ev)
        if len(events) == 3:
            jobs.cancel_training()
    assert proc.result is not None and proc.result["status"] == "interrupted"
    assert ckpt.read_text() == str(proc.step) and proc.returncode == 130
    assert proc not in jobs.running()


def test_a_kept_training_process_outlives_its_reader(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint"
    proc = jobs.TrainingProcess([], cmd=[sys.executable, "-c", TRAINER, str(ckpt)], run_id="train-y")
    it = iter(proc)
    next(it)
    proc.detach()
    del it  # the app is gone: nobody reads its events, the child still writes them to its file
    time.sleep(0.3)
    assert proc.alive
    proc.cancel()
    proc.proc.wait(timeout=10)
    assert ckpt.exists()
    assert '"interrupted"' in proc.events_path.read_text()


def test_cancel_token_stops_thread_work_as_an_interrupt() -> None:
    from tools.types import ProgressEvent, emit
    from tui import services

    seen: list[int] = []
    with pytest.raises(KeyboardInterrupt), services.job("evaluation", "evaluating", None) as relay:
        for i in range(10):
            if i == 3:
                assert services.cancel("evaluation")
            emit(relay, ProgressEvent("generate", i, 10))  # emit() does not swallow the stop
            seen.append(i)
    assert seen == [0, 1, 2]
    assert not services.cancel("evaluation")  # nothing runs there any more


def test_the_exit_note_says_what_happened_to_each_stopped_run() -> None:
    from types import SimpleNamespace

    def proc(step: int, rc: int | None, run_id: str) -> Any:
        return SimpleNamespace(step=step, returncode=rc, run_id=run_id,
                               proc=SimpleNamespace(pid=42, wait=lambda timeout=None: None))

    app = TunewiseApp(services=FakeServices())
    app._stopped = [proc(12, 130, "train-a"), proc(3, None, "train-b"), proc(0, 130, "train-c")]
    note = app.stop_note()
    assert "train-a stopped at step 12; checkpoint kept" in note
    assert "train-b is writing its checkpoint (pid 42)" in note and "--resume train-b" in note
    assert "train-c was stopped before its first step: there is no checkpoint" in note


async def test_the_prompt_view_runs_on_the_row_limit_the_user_sets(tmp_path: Path) -> None:
    """A long measurement on a stated subset: the row limit typed in the view reaches the tool, the estimate for
    that many rows is said before it starts, and a limit that is not a row count is refused in place."""
    services = FakeServices()
    app, _ = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: bool(app.query("#prompt-data")))
        app.query_one("#prompt-data", Input).value = str(tmp_path / "x.jsonl")
        app.query_one("#prompt-rows", Input).value = "0"
        await pilot.click("#prompt-run")
        await pilot.pause(0.05)
        assert "not a row count" in str(app.query_one("#prompt-summary").render())
        assert not [c for c in services.calls if c[0] == "prompt_eval"]
        app.query_one("#prompt-rows", Input).value = "40"
        await pilot.click("#prompt-run")
        await until(pilot, lambda: any(c[0] == "prompt_eval" for c in services.calls))
        assert ("prompt_eval", str(tmp_path / "x.jsonl"), 40) in services.calls
        assert ("prompt_estimate", str(tmp_path / "x.jsonl"), 40) in services.calls
        await until(pilot, lambda: "best" in str(app.query_one("#prompt-summary").render()))
