"""The Evaluation view's side-by-side votes: A / B / tie per row, stored in the run log, resumed on reopening."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input

from tests.tui.fakes import FakeAdvisor, FakeServices
from tui.app import TunewiseApp

SIZE = (110, 32)


class VotingServices(FakeServices):
    def compare_outputs(self, run_id: str, test: str, n: int = 30) -> dict[str, Any]:
        rows = [{"idx": i, "input": f"question {i}", "expected": "x", "why": ["random"], "base": f"base {i}",
                 "base_ok": False, "prompt_baseline": f"prompt {i}", "prompt_baseline_ok": False,
                 "tuned": f"tuned {i}", "tuned_ok": True} for i in range(3)]
        return {"run_id": run_id, "test": test, "test_sha256": "sha-votes", "metric": "chrf", "n": 3, "rows": rows,
                "sampled_from": 3, "test_rows": 3, "limit": None, "columns": ["base", "prompt_baseline", "tuned"],
                "vote_a": "prompt_baseline", "vote_b": "tuned", "rule_ids": ["eval.manual"]}


async def until(pilot: Any, cond: Any, n: int = 500) -> None:
    for _ in range(n):
        await pilot.pause(0.02)
        if cond():
            return
    raise AssertionError("condition never became true")


async def _open_compare(app: TunewiseApp, pilot: Any) -> None:
    await pilot.press("f6")
    await until(pilot, lambda: bool(app.query("#eval-run")))
    app.query_one("#eval-run", Input).value = "train-votes"
    app.query_one("#eval-test", Input).value = "test.jsonl"
    await pilot.click("#eval-compare")
    await until(pilot, lambda: app.query_one("#eval-table", DataTable).row_count == 3)


async def test_votes_are_stored_and_resumed() -> None:
    from tools.evaluate import human_win_rate

    app = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=VotingServices())
    async with app.run_test(size=SIZE) as pilot:
        await _open_compare(app, pilot)
        summary = app.query_one("#eval-summary")
        await pilot.click("#vote-b")  # row 0
        await until(pilot, lambda: "1 of 3 rows" in str(summary.render()))
        await pilot.click("#vote-tie")  # the cursor moved on: row 1
        await until(pilot, lambda: "2 of 3 rows" in str(summary.render()))
    wr = human_win_rate("train-votes", "sha-votes", a_variant="prompt_baseline")
    assert (wr.b_wins, wr.ties, wr.n) == (1, 1, 2) and wr.rate == 0.75

    app2 = TunewiseApp(advisor_factory=lambda **kw: FakeAdvisor(**kw), services=VotingServices())
    async with app2.run_test(size=SIZE) as pilot:
        await _open_compare(app2, pilot)
        summary = app2.query_one("#eval-summary")
        await until(pilot, lambda: "2 of 3 rows" in str(summary.render()))  # resumed from the run log
        table = app2.query_one("#eval-table", DataTable)
        assert table.get_row_at(0)[-1] == "B" and table.get_row_at(1)[-1] == "tie"


def test_a_test_result_without_a_prompt_baseline_renders() -> None:
    """evaluate_test sets vs.prompt_baseline to None when no baseline was measured: the view must not crash."""
    from tui.screens.evaluation import _headline, _rows

    r = {"metric": "label_accuracy", "quality": 0.4, "ci95": [0.3, 0.5], "n": 40,
         "vs": {"prompt_baseline": None, "base": {"quality": 0.1, "ci95": [0.05, 0.2], "n": 40}}}
    assert "base 10.0%" in _headline("test", r) and "prompt_baseline" not in _headline("test", r)
    _, rows = _rows("test", r)
    assert [row["variant"] for row in rows if row["variant"] != "tuned"] == ["base"]


def test_a_label_result_shows_both_modes_with_paired_differences() -> None:
    from tui.screens.evaluation import _rows

    r = {"metric": "label_accuracy", "quality": 0.4, "ci95": [0.3, 0.5], "n": 40,
         "vs": {"prompt_baseline": {"quality": 0.1, "ci95": [0.05, 0.2], "n": 40, "diff": 0.3,
                                    "diff_ci95": [0.15, 0.45]}, "base": None},
         "choice": {"mode": "choice", "quality": 0.8, "ci95": [0.65, 0.9], "n": 40,
                    "vs": {"prompt_baseline": {"quality": 0.2, "ci95": [0.1, 0.35], "n": 40, "diff": 0.6,
                                               "diff_ci95": [0.45, 0.75]}}}}
    cols, rows = _rows("test", r)
    assert "mode" in cols
    assert [(row["variant"], row["mode"], row["quality"]) for row in rows] == [
        ("tuned", "generation", "40.0%"), ("prompt_baseline", "generation", "10.0%"),
        ("tuned", "choice", "80.0%"), ("prompt_baseline", "choice", "20.0%")]
    assert rows[3]["tuned − it (paired)"] == "+60.0 pts (45.0%–75.0%)"
