"""The dependency direction is tui -> agent -> tools -> knowledge, and tools never import langgraph/textual."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    # PYTHONPATH makes grimp analyse this checkout, not whichever one the venv was installed from.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                       cwd=REPO, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 2 kept, 0 broken" in r.stdout


def test_cli_start_does_not_import_torch() -> None:
    code = ("import sys, cli; "
            "heavy = [m for m in ('torch', 'transformers', 'langgraph', 'textual', 'peft') if m in sys.modules]; "
            "print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout
