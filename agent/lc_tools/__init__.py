"""Every tool as a LangChain ``@tool`` with a typed schema, for the graph, an LLM agent or another app.

Each area keeps its wrappers in its own module here (``agent/lc_tools/<area>.py``) exposing ``TOOLS``;
``all_tools()`` collects them.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def all_tools() -> list[Any]:
    tools: list[Any] = []
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        tools.extend(getattr(importlib.import_module(f"{__name__}.{mod.name}"), "TOOLS", []))
    unique = {t.name: t for t in tools}  # a tool re-listed by another area (reference) is the same object
    return list(unique.values())
