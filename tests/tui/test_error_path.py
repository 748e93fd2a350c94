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


class _CrashOnMount(TunewiseApp):
    def on_mount(self) -> None:
        raise RuntimeError("a handler bug nobody caught")


async def test_an_uncaught_error_reaches_the_bug_log_before_textual_exits(tunewise_home: Path) -> None:
    import pytest

    app = _CrashOnMount(advisor_factory=_broken_advisor, services=FakeServices())
    with pytest.raises(RuntimeError, match="nobody caught"):
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.1)
    text = (tunewise_home / "tunewise.log").read_text()
    assert "unhandled error in the TUI" in text and "RuntimeError: a handler bug nobody caught" in text
