"""Cold start of the TUI: seconds from process start to the first question on screen.

Measured in fresh processes (headless Textual), against two baselines from the same run:
  - ``python_textual``: a bare interpreter that imports Textual's App and widgets (the floor for any Textual app);
  - ``heavy_imports``: importing torch + transformers + langgraph, what an eager start would add.
The TUI must not import torch/transformers/langgraph before the first question: the child checks sys.modules.

    python benchmarks/tui_cold_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "tui_cold_start.json"

TUI_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from tui.app import TunewiseApp

class Bench(TunewiseApp):
    def first_question_shown(self):
        super().first_question_shown()
        heavy = [m for m in ("torch", "transformers", "langgraph", "peft") if m in sys.modules]
        print(json.dumps({"in_process_s": time.perf_counter() - t0, "heavy": heavy,
                          "question": self.query_one("#question").question.prompt}), flush=True)
        self.exit()

Bench().run(headless=True, size=(100, 30))
"""
TEXTUAL_CHILD = "import textual.app, textual.widgets; print('{}')"
HEAVY_CHILD = "import torch, transformers, langgraph.graph; print('{}')"


def timed(code: str, home: str) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNEWISE_HOME": home, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"child failed: {r.stderr[-2000:]}")
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1]
    return wall, json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import tempfile

    home = tempfile.mkdtemp(prefix="tunewise-bench-")
    load_before = round(os.getloadavg()[0], 2)
    tui, textual_only, heavy = [], [], []
    detail: dict = {}
    for _ in range(args.runs):
        w, d = timed(TUI_CHILD, home)
        tui.append(w)
        detail = d
        textual_only.append(timed(TEXTUAL_CHILD, home)[0])
        heavy.append(timed(HEAVY_CHILD, home)[0])
    med = {k: statistics.median(v) for k, v in
           {"tui_first_question_s": tui, "python_textual_s": textual_only, "heavy_imports_s": heavy}.items()}
    out = {
        "benchmark": "tui_cold_start",
        "command": f"python benchmarks/tui_cold_start.py --runs {args.runs}",
        "load_average_1m_at_start": load_before,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "torch": _version("torch"), "textual": _version("textual"), "gpu": "none (CPU-only machine)"},
        "runs": args.runs,
        "median": med,
        "all": {"tui_first_question_s": tui, "python_textual_s": textual_only, "heavy_imports_s": heavy},
        "ratio_tui_to_python_textual": med["tui_first_question_s"] / med["python_textual_s"],
        "ratio_tui_to_heavy_imports": med["tui_first_question_s"] / med["heavy_imports_s"],
        "heavy_modules_loaded_before_first_question": detail.get("heavy"),
        "in_process_s_last_run": detail.get("in_process_s"),
        "first_question": detail.get("question"),
        "note": "wall time of a fresh process, from spawn to the first question painted (headless); "
                "the machine's 2 cores were shared with other jobs, so absolute numbers are noisy",
    }
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(out, RESULTS, echo=False)
    print(f"TUI to first question: {med['tui_first_question_s']:.2f} s (median of {args.runs}); "
          f"python+textual import: {med['python_textual_s']:.2f} s "
          f"(ratio {out['ratio_tui_to_python_textual']:.2f}x); "
          f"torch+transformers+langgraph import: {med['heavy_imports_s']:.2f} s "
          f"(TUI start is {out['ratio_tui_to_heavy_imports']:.2f}x of it); "
          f"heavy modules loaded before the first question: {detail.get('heavy')}")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
