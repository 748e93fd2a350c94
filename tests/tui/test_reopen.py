"""Everything resumable after a reopen (issue 26): the Advisor view offers earlier sessions, the Training view
picks up the newest interrupted run with Resume enabled, the Evaluation view shows past evaluations, and the
quit dialog names the run id from the first second of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import Button, DataTable, RadioSet

from tests.tui.fakes import FakeAdvisor, FakeServices
from tests.tui.test_advisor_view import SIZE, wait_question
from tests.tui.test_keys_focus import settle
from tools import paths
from tools.runlog import RunLog
from tui.app import TunewiseApp
from tui.screens.training import TrainingView


def interrupted_run(run_id: str = "train-20261207-190000-abc123", step: int = 40) -> str:
    """A training run the app was quit during: status interrupted, a complete checkpoint on disk."""
    log = RunLog()
    log.start_run("train", config={"max_steps": 100}, method="lora", model="smollm2-135m-instruct", run_id=run_id)
    log.update_run(run_id, status="interrupted", steps=step)
    ck = paths.run_dir(run_id) / "checkpoints" / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (ck / name).write_bytes(b"x")
    return run_id


class ResumingServices(FakeServices):
    def start_training(self, data_dir: str, *, resume: str | None = None, max_steps: int | None = None,
                       **kw: Any) -> Any:
        self.calls.append(("resume", resume))
        proc = super().start_training(data_dir, resume=resume, max_steps=max_steps)
        proc.run_id = resume
        return proc


async def test_training_view_offers_the_interrupted_run_and_resume_continues_it() -> None:
    run_id = interrupted_run()
    services = ResumingServices()
    app = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=services)
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("f4")
        view = app.query_one(TrainingView)
        resume = view.query_one("#train-resume", Button)
        await settle(pilot, lambda: not resume.disabled)
        stats = str(view.query_one("#train-stats").render())
        assert run_id in stats and "step 40 of 100" in stats and "Resume" in stats
        await pilot.click("#train-resume")
        await settle(pilot, lambda: ("resume", run_id) in services.calls)
        await settle(pilot, lambda: "completed" in str(view.query_one("#train-stats").render()))


async def test_no_interrupted_run_leaves_resume_off() -> None:
    log = RunLog()
    log.start_run("train", config={}, method="lora", model="m", run_id="train-done")
    log.update_run("train-done", status="completed", steps=5)
    app = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("f4")
        await pilot.pause(0.5)
        assert app.query_one("#train-resume", Button).disabled
        assert "No run yet" in str(app.query_one("#train-stats").render())


async def test_evaluation_view_shows_past_evaluations_from_the_run_log() -> None:
    RunLog().log_evaluation("train-old", "test", metric="accuracy", value=0.87, ci=(0.8, 0.92), n=80)
    app = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.press("f6")
        table = app.query_one("#eval-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        assert [str(c) for c in table.get_row_at(0)][:5] == ["train-old", "test", "accuracy", "0.870", "[0.800, 0.920]"]
        assert "earlier evaluation" in str(app.query_one("#eval-summary").render())


async def test_advisor_offers_an_earlier_session_and_resumes_it(tmp_path: Path) -> None:
    RunLog().upsert_session("adv-earlier", status="asking", answers={"data": str(tmp_path / "tickets.csv"),
                                                                      "n_examples": 1500})
    made: list[FakeAdvisor] = []

    def factory(**kw: Any) -> FakeAdvisor:
        adv = FakeAdvisor(**kw)
        if kw.get("session_id") == "adv-earlier":  # the stored session: two answers already given
            adv.start({"n_examples": 1500, "prompt_quality": 0.7})
        made.append(adv)
        return adv

    app = TunewiseApp(advisor_factory=factory, services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        q = await wait_question(pilot, "_start")
        await settle(pilot, lambda: len(app.query_one("#question").question.choices) == 3)  # type: ignore[attr-defined]
        q = app.query_one("#question")
        label = q.question.choices[2]  # type: ignore[attr-defined]
        assert label.startswith("resume adv-earlier") and "2 answers, tickets.csv" in label
        q.query_one(RadioSet).focus()
        await pilot.press("down", "down", "enter")
        await wait_question(pilot, "task")  # where the earlier session stopped
        assert made[-1].session_id == "adv-earlier"


async def test_quit_dialog_names_the_run_from_its_first_second(monkeypatch: Any) -> None:
    from agent import jobs
    from tui import services as real

    started: list[list[str]] = []
    describe = jobs.TrainingProcess.describe

    class NoChild:
        def __init__(self, args: list[str], *, run_id: str | None = None, source: str = "training") -> None:
            started.append(args)
            self.run_id, self.step, self.total = run_id, 0, None

    monkeypatch.setattr(jobs, "TrainingProcess", NoChild)
    monkeypatch.setattr(real, "TrainingProcess", NoChild)
    proc = real.start_training("/tmp/split")
    assert proc.run_id and proc.run_id.startswith("train-")
    assert started[0][-2:] == ["--run-id", proc.run_id]  # the trainer records the run under that id
    resumed = real.start_training("", resume="train-x")
    assert resumed.run_id == "train-x" and "--run-id" not in started[1]
    assert describe(proc).startswith(f"training run {proc.run_id} at step 0")  # type: ignore[arg-type]
