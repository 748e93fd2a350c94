"""The shared event type: round trip, and a broken listener never breaks the work."""

from __future__ import annotations

import logging

import pytest

from tools.types import ProgressEvent, emit


def test_progress_event_round_trips_through_dict() -> None:
    ev = ProgressEvent("train", 3, 10, metrics={"loss": 1.5}, message="step")
    assert ProgressEvent.from_dict(ev.to_dict()) == ev


def test_a_failing_listener_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: ProgressEvent) -> None:
        raise RuntimeError("renderer bug")

    with caplog.at_level(logging.WARNING, logger="tunewise"):
        emit(broken, ProgressEvent("clean", 1, 2))
    assert "progress listener failed on clean" in caplog.text and "renderer bug" in caplog.text
    emit(None, ProgressEvent("clean", 1, 2))  # nobody listening: nothing happens
