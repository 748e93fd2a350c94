"""Drive the real app headless through the built-in demo task, to an evaluated adapter.

Picks "the built-in demo task", accepts each remaining question's default (and answers yes to go on), waits for
the advisor's pipeline (prompt baseline -> decision -> clean -> split -> short LoRA run -> evaluation), then
prints the recommendation, the pipeline's results and a text picture of each view. Exit 0 when the pipeline
evaluated a trained run. Slow on CPU (minutes): this is a manual check, not a test.

    python scripts/tui_demo_run.py [--max-steps 30] [--timeout 1800] [--svg-dir DIR] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def screen_text(app: Any) -> str:
    from rich.console import Console

    w, h = app.size
    c = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, record=True, color_system=None)
    c.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return c.export_text()


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-steps", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--svg-dir", default=None)
    ap.add_argument("--skip-baseline", action="store_true",
                    help="report prompt scores instead of measuring them (a quicker check of the rest of the flow)")
    args = ap.parse_args()

    from textual.widgets import RadioSet

    from tui import services
    from tui.app import TunewiseApp
    from tui.screens.advisor import AdvisorView
    from tui.widgets.question import QuestionInput

    class DemoServices:
        def __getattr__(self, name: str) -> Any:
            return getattr(services, name)

        def demo_answers(self) -> dict[str, Any]:
            answers = {**services.demo_answers(), "max_steps": args.max_steps, "go_on": True}
            if args.skip_baseline:
                answers.update(test_set="", prompt_quality=0.6, optimized_prompt_quality=0.7)
            return answers

    app = TunewiseApp(services=DemoServices(), chat=False)
    t0 = time.monotonic()
    async with app.run_test(size=(110, 34)) as pilot:
        q = app.query_one("#question", QuestionInput)
        q.query_one(RadioSet).focus()
        await pilot.press("down", "enter")
        await pilot.click("#q-submit")
        view = app.query_one(AdvisorView)
        asked: list[str] = []
        while time.monotonic() - t0 < args.timeout:
            await pilot.pause(0.5)
            if view.step is not None and view.step.kind == "done":
                break
            found = app.query("#question")
            if not found or view.busy:
                continue
            qi = found.first(QuestionInput)
            if qi.question.id == "_start" or qi.disabled:
                continue
            asked.append(qi.question.id)
            if qi.question.error:
                print(f"the advisor re-asked {qi.question.id}: {qi.question.error}", flush=True)
                if asked.count(qi.question.id) > 2:
                    return 1
            value = True if qi.question.type == "yes_no" else qi.question.default
            if qi.question.id == "data":
                value = str(services.demo_dataset())
            print(f"[{time.monotonic() - t0:6.1f}s] {qi.question.id} -> {value!r}", flush=True)
            qi.post_message(QuestionInput.Answered(qi.question.id, value))
            view.busy = True
        rec = (view.step.recommendation or {}) if view.step else {}
        pipe = rec.get("pipeline") or {}
        print(json.dumps({"seconds": round(time.monotonic() - t0, 1), "asked": asked, "path": rec.get("path"),
                          "pipeline_keys": sorted(pipe), "error": pipe.get("error"),
                          "train": {k: (pipe.get("train") or {}).get(k) for k in ("run_id", "status", "best_val_loss")},
                          "evaluate": {k: (pipe.get("evaluate") or {}).get(k) for k in ("quality", "ci95", "n")}},
                         default=str, indent=2))
        for key in ("f1", "f2", "f4", "f6"):
            await pilot.press(key)
            await pilot.pause(0.5)
            print(screen_text(app))
            if args.svg_dir:
                Path(args.svg_dir).mkdir(parents=True, exist_ok=True)
                (Path(args.svg_dir) / f"demo-{key}.svg").write_text(app.export_screenshot(title="tunewise demo"))
    ok = bool((pipe.get("train") or {}).get("run_id")) and bool(pipe.get("evaluate"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
