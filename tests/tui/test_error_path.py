"""An error in a TUI worker is shown as a short message and its traceback lands in the bug log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tui.fakes import FakeServices
from tui.app import TunewiseApp
from tui.screens.advisor import AdvisorView


def _broken_advisor(**kwargs: Any) -> Any:
    raise RuntimeError("the advisor broke while loading")


async def test_a_worker_bug_reaches_the_bug_log(tunewise_home: Path) -> None:
    app = TunewiseApp(advisor_factory=_broken_advisor, services=FakeServices())
    async with app.run_test(size=(100, 30)) as pilot:
        log = tunewise_home / "tunewise.log"
        for _ in range(250):
            await pilot.pause(0.02)
            if log.exists():
                break
        text = log.read_text()
        assert "Traceback" in text and "RuntimeError: the advisor broke while loading" in text
        assert app.query_one(AdvisorView) is not None  # the app is still up: the user saw a message
