"""Progress lines render a tool's message literally: brackets in it are not console markup."""

from __future__ import annotations

from rich.text import Text

from tui.messages import progress_line


def test_progress_line_escapes_and_shows_totals() -> None:
    ev = {"stage": "clean", "step": 2, "total": 5, "message": "[red]/tmp/x[1].jsonl"}
    assert Text.from_markup(progress_line(ev, source="data")).plain == "data: clean 2/5 [red]/tmp/x[1].jsonl"
    assert Text.from_markup(progress_line({"stage": "train", "step": 3})).plain == "train 3 "


def test_work_clock_re_estimates_from_the_pace_so_far() -> None:
    from tui.messages import WorkClock

    t = [0.0]
    clock = WorkClock(now=lambda: t[0])
    assert clock.line({"stage": "prompt_eval", "step": 0, "total": 30}) == ""  # the clock starts
    t[0] = 12 * 60.0
    assert clock.line({"stage": "prompt_eval", "step": 12, "total": 30}) == "12 of 30 min, about 18 left"
    t[0] = 14 * 60.0  # slower now: the estimate follows the measured pace
    assert clock.line({"stage": "prompt_eval", "step": 12, "total": 30}) == "14 of 35 min, about 21 left"
    assert clock.line({"stage": "prompt_eval", "step": 14, "total": 30}) == "14 of 30 min, about 16 left"
    assert clock.line({"stage": "train", "step": 1, "total": 20}) == ""  # each stage has its own clock
    t[0] += 10
    assert clock.line({"stage": "train", "step": 3, "total": 20}) == "10 of 95 s, about 85 left"
    assert clock.line({"stage": "prompt_eval", "step": 1, "total": 30}) == ""  # a new run of the stage restarts
