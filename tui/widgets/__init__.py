"""Reusable widgets: the typed question input, the decision path and checklist panels, charts."""
