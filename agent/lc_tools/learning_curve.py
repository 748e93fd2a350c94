"""LangChain tool for the learning curve: how quality grows with data on the user's own task."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool


@tool
def learning_curve(train: str, test: str, model: str = "smollm2-135m-instruct", bar: float | None = None,
                   fractions: list[float] | None = None, max_steps: int = 20, epochs: float | None = None,
                   test_rows: int | None = 40, val: str | None = None) -> dict[str, Any]:
    """Train the short-run recipe on nested subsets (default 25/50/100%) of a training file, score each on the
    same test rows, and fit a power law with a bootstrap band. Returns the points, predictions at 2x/5x/10x the
    data, the examples needed to reach the bar (or why the curve cannot extrapolate: too few points, too flat,
    too noisy), and the cost in seconds. Slow on a CPU: about 1.75 short runs."""
    from tools.evaluate.learning_curve import CurveConfig
    from tools.evaluate.learning_curve import learning_curve as run

    cfg = CurveConfig(train=train, test=test, val=val, model=model, bar=bar,
                      fractions=tuple(fractions) if fractions else None, max_steps=max_steps, epochs=epochs,
                      test_rows=test_rows)
    return run(cfg).to_dict()


TOOLS = [learning_curve]
