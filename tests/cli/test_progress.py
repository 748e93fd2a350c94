"""Scripted runs show progress on stderr (issue 15 item 6): plain lines when stderr is not a terminal, a bar
when it is; with --json, stdout still carries exactly one JSON document."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from tools.types import ProgressEvent

REPO = Path(__file__).resolve().parents[2]


def test_plain_lines_when_stderr_is_not_a_terminal(capsys) -> None:  # type: ignore[no-untyped-def]
    from cli.common import progress_bar

    with progress_bar(True, "advise") as on_progress:
        on_progress(ProgressEvent("prompt_eval", 0, 5, message="plain"))
        for step in range(1, 101):
            on_progress(ProgressEvent("generate", step, 100))
        on_progress(ProgressEvent("prompt_eval", 1, 5, {"quality": 0.153}, message="plain"))
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert any("advise: prompt_eval 1/5 quality=0.153 plain" in line for line in lines)
    generate = [line for line in lines if ": generate " in line]
    assert 10 <= len(generate) <= 11  # a line per tenth, not per event
    assert "\x1b[" not in err  # no terminal control codes in a log


def test_a_bar_when_stderr_is_a_terminal(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import cli.common as common

    buf = io.StringIO()
    monkeypatch.setattr(common, "err", Console(file=buf, force_terminal=True, width=100))
    with common.progress_bar(True, "train") as on_progress:
        for step in range(1, 11):
            on_progress(ProgressEvent("train", step, 10, {"loss": 1.0 / step}))
    assert "━" in buf.getvalue() and "10/10" in buf.getvalue()


def test_json_stdout_stays_one_document_while_progress_goes_to_stderr(tmp_path: Path) -> None:
    data = tmp_path / "tickets.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"ticket {i} about my card"},
                          {"role": "assistant", "content": "card" if i % 2 else "refund"}]} for i in range(300)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNEWISE_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-m", "cli", "data", "clean", str(data), "--out", str(tmp_path / "c.jsonl"),
                        "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)  # exactly one JSON document
    assert doc["input_rows"] == 300
    assert "cleaning: " in r.stderr and "/" in r.stderr  # plain progress lines on stderr
