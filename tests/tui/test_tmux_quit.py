"""The real app in tmux: ctrl+q (and ctrl+c) during the advisor's pipeline training ends the process within 2 s
and leaves a resumable checkpoint with an honest run-log status (scripts/tui_quit_check.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)")
# ctrl+q only: ctrl+c runs the same quit action (the Pilot tests check both keys), and each run of the real
# app through the demo's prompt baseline to training costs minutes of the suite.
@pytest.mark.parametrize("key", ["C-q"])
def test_quit_during_pipeline_training_is_quick_and_resumable(key: str, real_model_dir: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "quit.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "tui_quit_check.py"), "--key", key, "--out", str(out)],
                       cwd=REPO, env={**os.environ}, capture_output=True, text=True, timeout=1500)
    doc = json.loads(out.read_text())
    assert r.returncode == 0, json.dumps(doc, indent=2)[-4000:]
    assert doc["seconds_to_shell"] < 2.0
    assert doc["run"]["status"] == "interrupted" and doc["run"]["checkpoint"]
    assert any("resume" in line for line in doc["shell_screen"])
