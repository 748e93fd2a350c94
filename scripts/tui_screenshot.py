"""Save an SVG screenshot of the advisor mid-conversation (for the README): docs/tui.svg.

Drives the real app headless with the real advisor (falls back to the test fake when agent.advisor is missing),
answers the first N questions with the values below, and exports the screen with ``export_screenshot()``.

    python scripts/tui_screenshot.py [--out docs/tui.svg] [--answers 9] [--size 110x34]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ANSWERS: dict[str, Any] = {
    "task": "classification", "goals": ["quality", "consistency"], "quality_target": 0.9, "test_set": "",
    "model": "smollm2-135m-instruct", "prompt_quality": 0.72, "optimized_prompt_quality": 0.81,
    "n_examples": 4800, "latency_budget_ms": None, "consistency": "high", "prompt_dev_hours": None,
    "gpu_memory_gb": 24, "gpus": 1, "model_params_b": 7,
    # the fake advisor's ids
    "prompt_quality_fake": 0.72,
}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "docs" / "tui.svg"))
    ap.add_argument("--answers", type=int, default=9)
    ap.add_argument("--size", default="110x34")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))

    from tui.app import TunewiseApp
    from tui.screens.advisor import AdvisorView
    from tui.widgets.question import QuestionInput

    try:
        import agent.advisor  # noqa: F401

        app = TunewiseApp(chat=False)
    except ImportError:
        from tests.tui.fakes import FakeServices, fake_advisor_factory

        app = TunewiseApp(advisor_factory=fake_advisor_factory, services=FakeServices())
    async with app.run_test(size=(w, h)) as pilot:
        await pilot.pause(0.3)
        await pilot.click("#q-submit")
        view = app.query_one(AdvisorView)
        answered = 0
        for _ in range(1200):
            await pilot.pause(0.05)
            if view.load_error:
                raise SystemExit(view.load_error)
            found = app.query("#question")
            if not found or view.busy:
                continue
            q = found.first(QuestionInput)
            if q.question.id == "_start" or q.disabled:
                continue
            if answered >= args.answers:
                break
            value = ANSWERS.get(q.question.id, q.question.default)
            q.post_message(QuestionInput.Answered(q.question.id, value))
            answered += 1
            view.busy = True  # until the step comes back
        await pilot.pause(0.5)
        app.query_one("#conversation").scroll_end(animate=False, immediate=True)
        await pilot.pause(0.3)
        svg = app.export_screenshot(title="tunewise")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(svg)
    print(f"wrote {args.out} after {answered} answers")


if __name__ == "__main__":
    asyncio.run(main())
