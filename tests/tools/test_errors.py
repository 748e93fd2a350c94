"""One error path: user errors carry what/where/fix; bugs go to the bug log with their traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import errors
from tools.errors import InputError, OutOfMemoryError


def test_a_bug_goes_to_the_bug_log_with_its_traceback(tunewise_home: Path) -> None:
    try:
        {}["missing"]  # noqa: B018 - a real traceback
    except KeyError as e:
        msg = errors.describe_bug(e)
    log = tunewise_home / "tunewise.log"
    text = log.read_text()
    assert "Traceback" in text and "KeyError: 'missing'" in text and "test_errors.py" in text
    assert str(log) in msg and msg.startswith("internal error: KeyError") and "Traceback" not in msg


@pytest.mark.parametrize("exc", [TypeError("tools.train got an unexpected keyword"),
                                 ImportError("cannot import name 'x' from 'tools.data'")])
def test_type_and_import_errors_are_bugs_not_missing_features(exc: Exception) -> None:
    msg = errors.describe_bug(exc)
    assert "not available" not in msg and "bug in tunewise" in msg


def test_failure_context_lives_in_fields() -> None:
    e = OutOfMemoryError("out of memory", where="run train-1", fix="use qlora", run_id="train-1",
                         retries=[{"run_id": "train-0", "fix": "diag.oom.batch"}])
    assert e.run_id == "train-1" and e.retries[0]["fix"] == "diag.oom.batch"
    assert OutOfMemoryError("oom").run_id is None and OutOfMemoryError("oom").retries == []
    assert InputError("bad", where="x.jsonl:3:messages").to_dict()["where"] == "x.jsonl:3:messages"
