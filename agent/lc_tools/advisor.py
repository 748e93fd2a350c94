"""The whole advisor as one LangChain tool, for another agent or app that wants a recommendation.

It starts a full advisor session, so it is kept apart from the read-only tools in ``reference.py``: the
advisor's own "why?" explanations are handed those, never this one.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool


@tool
def advise(answers: dict[str, Any]) -> dict[str, Any]:
    """Run the whole advisor on a dict of answers (question id -> value); returns the recommendation."""
    from agent.advisor import run_scripted

    return run_scripted(answers)


TOOLS = [advise]
