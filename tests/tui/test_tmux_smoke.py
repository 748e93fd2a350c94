"""Drive the real app in tmux (send-keys, capture-pane) through scripts/tui_smoke.sh, with the fake advisor."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)")
def test_tmux_smoke_run(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "SMOKE_OUT": str(tmp_path / "screens")}
    r = subprocess.run(["bash", str(REPO / "scripts" / "tui_smoke.sh"), "--fake"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "ok: bad-number-rejected" in r.stdout and "ok: quit" in r.stdout
    first = (tmp_path / "screens" / "first-question.txt").read_text()
    assert "tunewise" in first and "How would you like to begin?" in first
