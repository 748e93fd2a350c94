"""The TUI shows its first question without importing torch, transformers, peft or langgraph (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
from tui.app import TunewiseApp

class Probe(TunewiseApp):
    def first_question_shown(self):
        super().first_question_shown()
        heavy = [m for m in ("torch", "transformers", "peft", "langgraph", "duckdb") if m in sys.modules]
        print(json.dumps({"heavy": heavy, "question": self.query_one("#question").question.prompt}), flush=True)
        self.exit()

Probe().run(headless=True, size=(100, 30))
"""


def test_first_question_before_heavy_imports(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNEWISE_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
    assert doc["heavy"] == []
    assert doc["question"] == "How would you like to begin?"
