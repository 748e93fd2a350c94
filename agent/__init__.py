"""The advisor: a LangGraph state machine over the decision tree in ``knowledge/``."""
