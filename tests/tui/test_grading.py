"""The grading pane: g / b / s on a seeded sample of a run's outputs, stored in the run log as given; quit,
reopen, and grading resumes at the first row not graded; the share and its Wilson CI are on screen."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, Static

from tests.tui.fakes import FakeAdvisor, FakeServices
from tui.app import TunewiseApp
from tui.screens.grading import GradingScreen

SIZE = (110, 32)


def _prompt_eval_run(rows: int = 40) -> str:
    """A prompt-eval run with the plain prompt's logged outputs (free text, chrF), as prompt-eval logs it."""
    from tools.runlog import RunLog

    log = RunLog()
    run_id = log.start_run("prompt_eval", config={"metric": "chrf"})
    eval_id = log.log_evaluation(run_id, "prompt_eval", metric="chrf", value=0.28, n=rows, test_sha256="sha",
                                 details={"variant": "baseline"})
    log.log_predictions(run_id, eval_id, [{"idx": i, "input": f"dialogue {i}", "expected": f"summary {i}",
                                           "prediction": f"output {i}"} for i in range(rows)])
    log.update_run(run_id, status="completed")
    return run_id


async def until(pilot: Any, cond: Any, n: int = 500) -> None:
    for _ in range(n):
        await pilot.pause(0.02)
        if cond():
            return
    raise AssertionError("condition never became true")


def text(app: TunewiseApp, wid: str) -> str:
    return str(app.screen.query_one(wid, Static).render())


async def _open(app: TunewiseApp, pilot: Any, run_id: str | None) -> None:
    if run_id:  # from the Evaluation view's run field
        await pilot.press("f6")
        await until(pilot, lambda: bool(app.query("#eval-run")))
        app.query_one("#eval-run", Input).value = run_id
    await pilot.press("ctrl+g")
    await until(pilot, lambda: isinstance(app.screen, GradingScreen) and app.screen.grading is not None)


async def grade(app: TunewiseApp, pilot: Any, keys: str) -> None:
    screen = app.screen
    assert isinstance(screen, GradingScreen)
    for k in keys:
        left = len(screen.grading.pending()) - 1
        await pilot.press(k)
        await until(pilot, lambda left=left: len(screen.grading.pending()) == left and not screen.busy)


async def test_ten_grades_quit_resume_share_and_ci() -> None:
    from tools.scoring.grades import logged_grades

    run_id = _prompt_eval_run()
    app = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await _open(app, pilot, run_id)
        screen = app.screen
        assert isinstance(screen, GradingScreen)
        first = screen.grading.items[0]
        assert f"row {first.idx}" in text(app, "#grading-input") and first.input in text(app, "#grading-input")
        assert first.expected in text(app, "#grading-reference") and first.output in text(app, "#grading-output")
        await grade(app, pilot, "ggggggbbgs")  # 10 grades: 7 good, 2 bad, 1 skip
        share = text(app, "#grading-share")
        assert "accepted 7 of 9 graded: 77.8% [45.3%–93.7%] (Wilson 95%), 1 skipped; 20 of 30 to grade" in share
        await pilot.press("q")
        await until(pilot, lambda: not isinstance(app.screen, GradingScreen))
    graded = logged_grades(run_id, "baseline")
    assert len(graded) == 10 and sorted(graded.values()).count("good") == 7

    # reopened in a new app: the ten graded rows are kept, grading goes on at the eleventh sampled row
    app2 = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=FakeServices())
    async with app2.run_test(size=SIZE) as pilot:
        await _open(app2, pilot, None)  # no run id: the newest prompt baseline, the one just graded
        screen = app2.screen
        assert isinstance(screen, GradingScreen) and screen.grading.run_id == run_id
        eleventh = screen.grading.items[10]
        assert f"row {eleventh.idx} (11 of 30)" in text(app2, "#grading-input")
        assert "77.8% [45.3%–93.7%]" in text(app2, "#grading-share")
        await grade(app2, pilot, "b")
        assert "accepted 7 of 10 graded: 70.0%" in text(app2, "#grading-share")


async def test_no_run_to_grade_is_a_message() -> None:
    app = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, GradingScreen) and "✗" in text(app, "#grading-title"))
        assert "no run to grade" in text(app, "#grading-title")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, GradingScreen))


async def test_v_switches_to_the_next_variant() -> None:
    from tools.runlog import RunLog
    from tools.scoring.grades import logged_grades

    run_id = _prompt_eval_run()
    log = RunLog()
    eval_id = log.log_evaluation(run_id, "prompt_eval", metric="chrf", value=0.31, n=40, test_sha256="sha",
                                 details={"variant": "shots_5"})
    log.log_predictions(run_id, eval_id, [{"idx": i, "input": f"dialogue {i}", "expected": f"summary {i}",
                                           "prediction": f"five-shot output {i}"} for i in range(40)])
    app = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await _open(app, pilot, run_id)
        screen = app.screen
        assert isinstance(screen, GradingScreen) and screen.grading.variant == "baseline"
        await pilot.press("v")
        await until(pilot, lambda: screen.grading.variant == "shots_5")
        assert "shots_5" in text(app, "#grading-title") and "five-shot output" in text(app, "#grading-output")
        await grade(app, pilot, "g")
        await pilot.press("v")
        await until(pilot, lambda: screen.grading.variant == "baseline")
    assert len(logged_grades(run_id, "shots_5")) == 1 and logged_grades(run_id, "baseline") == {}
