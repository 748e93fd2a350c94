"""Issue 13: the Data view shows the task profile, and when a file's columns cannot be told apart it asks which
column is which, then reads the file with the user's answer (no flags in the TUI)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from textual.widgets import Input

from tests.tui.fakes import FakeServices
from tests.tui.test_views import SIZE, make_app, until
from tui import services as real_services


class ColumnServices(FakeServices):
    """The fake services, with the real inspect (so the real column finding and profile run)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def inspect_data(self, path: str, **kw: Any) -> Any:  # type: ignore[override]
        self.seen.append(kw.get("columns"))
        return real_services.inspect_data(path, **kw)


async def test_data_view_asks_for_columns_and_shows_the_profile(tmp_path: Path) -> None:
    p = tmp_path / "odd.csv"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["alpha", "beta", "gamma"])
        for i in range(30):
            w.writerow([f"Where is my card number {i}?", "x", "card_arrival" if i % 2 else "lost_card"])
    svc = ColumnServices()
    app = make_app(svc)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: bool(app.query("#data-path")))
        app.query_one("#data-path", Input).value = str(p)
        await pilot.click("#data-inspect")
        bar = app.query_one("#data-columns")
        await until(pilot, lambda: not bar.has_class("-hidden"))
        assert "alpha, beta, gamma" in str(app.query_one("#data-columns-found").render())
        app.query_one("#data-input-col", Input).value = "alpha"
        app.query_one("#data-output-col", Input).value = "gamma"
        await pilot.click("#data-inspect")
        summary = app.query_one("#data-summary")
        await until(pilot, lambda: "task: label" in str(summary.render()))
        assert svc.seen == [None, ("alpha", "gamma")]
