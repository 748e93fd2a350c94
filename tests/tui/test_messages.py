"""Progress lines render a tool's message literally: brackets in it are not console markup."""

from __future__ import annotations

from rich.text import Text

from tui.messages import progress_line


def test_progress_line_escapes_and_shows_totals() -> None:
    ev = {"stage": "clean", "step": 2, "total": 5, "message": "[red]/tmp/x[1].jsonl"}
    assert Text.from_markup(progress_line(ev, source="data")).plain == "data: clean 2/5 [red]/tmp/x[1].jsonl"
    assert Text.from_markup(progress_line({"stage": "train", "step": 3})).plain == "train 3 "
