"""Pilot tests of the live views: training progress reaches the chart, the runs view lists the run log,
the prompt baseline and the data report render what the tools return."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input

from tests.tui.fakes import FakeAdvisor, FakeServices
from tools.runlog import RunLog
from tui.app import TunewiseApp
from tui.screens.runs import RunsView
from tui.screens.training import TrainingView
from tui.widgets.charts import LossChart

SIZE = (100, 30)


def make_app(services: Any = None) -> TunewiseApp:
    return TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=services or FakeServices())


async def until(pilot: Any, cond: Any, n: int = 500) -> None:
    for _ in range(n):
        await pilot.pause(0.02)
        if cond():
            return
    raise AssertionError("condition never became true")


async def test_training_worker_progress_reaches_the_chart() -> None:
    services = FakeServices()
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: bool(app.query("#train-data")))
        view = app.query_one(TrainingView)
        view.query_one("#train-data", Input).value = "/tmp/split"
        await pilot.click("#train-start")
        chart = app.query_one("#loss-chart", LossChart)
        await until(pilot, lambda: chart.point_count("train") == 20 and chart.point_count("val") == 4
                    and "completed" in str(view.query_one("#train-stats").render()))
        stats = str(view.query_one("#train-stats").render())
        assert "train-fake" in stats and "best val loss 0.6" in stats
        assert "healthy" in str(view.query_one("#train-diagnosis").render())
        assert services.calls == [("preview", "/tmp/split"), ("train", "/tmp/split", 30)]  # preview first
        rendered = str(chart.render())
        assert "•" in rendered and "◆" in rendered
        assert view.run_id == "train-fake"


async def test_advisor_progress_is_routed_to_the_training_chart() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(TrainingView)))
        view = app.query_one(TrainingView)
        view.feed({"stage": "train", "step": 3, "total": 10, "metrics": {"loss": 1.5, "tokens_per_s": 900.0}})
        await pilot.pause(0.02)
        assert app.query_one("#loss-chart", LossChart).point_count("train") == 1
        assert "900 tok/s" in str(view.query_one("#train-stats").render())


def _seed_runlog() -> list[str]:
    log = RunLog()
    ids = []
    for i, (method, lr) in enumerate([("lora", 2e-4), ("qlora", 1e-4)]):
        run_id = log.start_run("train", config={"lr": lr, "epochs": 3, "method": method}, method=method,
                               model="smollm2-135m", run_id=f"train-test-{i}")
        for step in range(1, 6):
            log.log_metrics(run_id, step, "train", {"loss": 2.0 - 0.2 * step - 0.1 * i})
            log.log_metrics(run_id, step, "val", {"loss": 2.1 - 0.15 * step})
        log.update_run(run_id, status="completed", best_val_loss=1.35 - 0.1 * i, steps=5)
        ids.append(run_id)
    log.log_evaluation("train-test-0", "test", metric="accuracy", value=0.91, ci=(0.87, 0.94), n=200)
    return ids


async def test_runs_view_lists_open_and_compare() -> None:
    ids = _seed_runlog()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        view = app.query_one(RunsView)
        table = view.query_one("#runs-table", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        listed = {str(k.value) for k in table.rows}
        assert listed == set(ids)
        # filter
        view.query_one("#runs-filter", Input).value = "qlora"
        await until(pilot, lambda: table.row_count == 1)
        view.query_one("#runs-filter", Input).value = ""
        await until(pilot, lambda: table.row_count == 2)
        # open one
        table.focus()
        await pilot.press("enter")
        info = view.query_one("#run-info")
        await until(pilot, lambda: "config" in str(info.render()))
        assert view.query_one("#run-chart", LossChart).point_count() == 10
        # compare two
        await pilot.press("m", "down", "m", "c")
        await until(pilot, lambda: "config diff" in str(info.render()))
        text = str(info.render())
        assert "lr: A=" in text and "method" in text
        assert view.query_one("#run-chart", LossChart).point_count() == 20


async def test_prompt_view_shows_variants_and_the_bar() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: bool(app.query("#prompt-data")))
        app.query_one("#prompt-data", Input).value = "x.jsonl"
        await pilot.click("#prompt-run")
        summary = app.query_one("#prompt-summary")
        await until(pilot, lambda: "best" in str(summary.render()))
        assert "below the 90% bar" in str(summary.render())
        assert app.query_one("#prompt-table", DataTable).row_count == 2


async def test_data_view_shows_the_clean_report() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: bool(app.query("#data-path")))
        app.query_one("#data-path", Input).value = "/tmp/x.jsonl"
        await pilot.click("#data-clean")
        summary = app.query_one("#data-summary")
        await until(pilot, lambda: "470 kept" in str(summary.render()))
        assert app.query_one("#data-reasons", DataTable).row_count == 2
        assert "exact_duplicate" in str(app.query_one("#data-examples").render())


async def test_help_opens_and_closes() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.05)
        app.query_one("#tabs").focus()
        await pilot.press("question_mark")
        await pilot.pause(0.05)
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause(0.05)
        assert type(app.screen).__name__ != "HelpScreen"


def footer_has_help(app: TunewiseApp) -> bool:
    return any(b.binding.action == "help" for b in app.active_bindings.values())


async def test_question_mark_opens_help_from_a_field_unless_typing_text_there() -> None:
    """`?` in a focused field: help when the field is empty or a number field; typed when writing text."""
    from tests.tui.test_advisor_view import wait_question

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_question(pilot, "_start")
        await pilot.click("#q-submit")  # my own task
        q = await wait_question(pilot, "n_examples")
        field = q.query_one("#q-control", Input)
        assert app.focused is field and field.value == "1200"  # a number field, pre-filled with its default
        await pilot.press("question_mark")
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.press("question_mark")  # `?` closes it again
        await until(pilot, lambda: type(app.screen).__name__ != "HelpScreen")
        assert field.value == "1200"

        await pilot.press("f2")
        await until(pilot, lambda: bool(app.query("#data-path")))
        path = app.query_one("#data-path", Input)
        path.value = ""
        path.focus()
        await pilot.pause(0.05)
        assert footer_has_help(app)
        await pilot.press("question_mark")  # an empty text field: help
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ != "HelpScreen")
        await pilot.press("w", "h", "y", "question_mark")  # writing text: `?` is a character
        await pilot.pause(0.05)
        assert path.value == "why?" and type(app.screen).__name__ != "HelpScreen"
        assert not footer_has_help(app)  # the footer stops offering it while text is being written
        await pilot.press("tab")  # leave the field: `?` is help again
        await pilot.pause(0.05)
        assert footer_has_help(app)


async def test_spot_check_with_g_b_s_keys_and_accepting_the_rule() -> None:
    services = FakeServices()
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: bool(app.query("#data-path")))
        app.query_one("#data-path", Input).value = "/tmp/x.jsonl"
        await pilot.click("#data-spot")
        item = app.query_one("#spot-item")
        await until(pilot, lambda: "ticket 0" in str(item.render()))
        await pilot.press("g")
        await until(pilot, lambda: "ticket 1" in str(item.render()))
        await pilot.press("b")
        await pilot.pause(0.02)
        assert app.focused is app.query_one("#spot-reason")
        await pilot.press(*"wrong label", "enter")
        await until(pilot, lambda: "ticket 2" in str(item.render()))
        app.query_one("#data-view").focus()
        await pilot.press("s")
        await until(pilot, lambda: "finished" in str(item.render()))
        assert services.spot.verdicts == [(0, "good", None), (1, "bad", "wrong label"), (2, "skip", None)]
        assert "drop_if_contains" in str(app.query_one("#spot-rule").render())
        await pilot.click("#spot-accept")
        await pilot.pause(0.02)
        assert services.calls[-1][0] == "accept_rule"


async def test_evaluation_view_shows_ci_and_forgetting_table() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await until(pilot, lambda: bool(app.query("#eval-run")))
        app.query_one("#eval-run", Input).value = "train-fake"
        app.query_one("#eval-test", Input).value = "test.jsonl"
        await pilot.click("#eval-test-btn")
        summary = app.query_one("#eval-summary")
        await until(pilot, lambda: "93.0%" in str(summary.render()))
        assert "88.0%–96.0%" in str(summary.render())
        table = app.query_one("#eval-table", DataTable)
        assert table.row_count == 3  # the tuned model, then the two it is compared with
        assert [str(c) for c in table.get_row_at(0)[:3]] == ["tuned", "generation", "93.0%"]
        await pilot.click("#eval-forgetting")
        await until(pilot, lambda: "degraded" in str(summary.render()))
        assert app.query_one("#eval-table", DataTable).row_count == 1


async def test_data_view_shows_the_inspect_report() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: bool(app.query("#data-path")))
        app.query_one("#data-path", Input).value = "/tmp/x.jsonl"
        await pilot.click("#data-inspect")
        summary = app.query_one("#data-summary")
        await until(pilot, lambda: "487 valid" in str(summary.render()))
        assert "no assistant message" in str(app.query_one("#data-examples").render())
        assert "billing" in str(app.query_one("#data-hist").render())


async def test_quitting_cancels_a_running_trainer() -> None:
    from tests.tui.fakes import FakeTrainingProcess

    app = make_app()
    proc = FakeTrainingProcess([], {})
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(TrainingView)))
        app.query_one(TrainingView).process = proc
    assert proc.cancelled
