"""Scoring: how good is an answer? Metrics, executed tests in a sandbox, model judges — one score() with CIs."""
