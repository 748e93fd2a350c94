"""tunewise tools: plain typed functions that do the work.

Each long tool has the shape ``f(typed inputs, *, on_progress=None) -> typed result``.
Nothing here imports langgraph, textual, ``agent`` or ``tui`` (checked by import-linter in the tests),
and torch/transformers are imported lazily inside the functions that need them.
"""
