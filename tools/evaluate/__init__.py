"""Model evaluation, one module per question a reader asks:

- ``test_set``: the held-out test set, read once with its per-row tests, its metric decided once from its
  task profile, a tuned run scored on it once beside the base model and the best prompt (``evaluate_test``);
- ``compare``: a side-by-side sample to read, and the user's A / B / tie votes on it (human win rate);
- ``ab``: offline A/B of two variants on the same rows, with the ROI rule's verdict;
- ``forgetting``: the base and the tuned model on general probes;
- ``roi``: the seed's ROI formula on the user's numbers;
- ``predictions`` (generate, log, reuse); what answers (a run, a base model, a prompt) is ``tools.prompt.variants``;
- ``judging``: a judge model on a run's answers, checked against the user's ground truth;
- ``online_ab``: the production A/B router; ``learning_curve``: would more data help?

Every number comes from ``tools.scoring.metrics`` (the same code prompt evaluation uses) and every prediction from
``tools.generation.generate``; each evaluation is written to the run log (``evaluations`` + ``predictions``).
Which rows are scored and how (``load_test``, ``decide_scoring``) is ``tools.scoring.rows``.
"""

from __future__ import annotations

from tools.evaluate.ab import ABResult, ab
from tools.evaluate.compare import (
    CompareResult,
    WinRate,
    compare,
    human_win_rate,
    pending_votes,
    record_vote,
    votes_for,
    win_rate,
)
from tools.evaluate.config import EvalConfig
from tools.evaluate.forgetting import (
    FORGETTING_FIXES,
    PROBE_CHECKS,
    PROBES_FILE,
    check_probe,
    forgetting,
    load_probes,
)
from tools.evaluate.predictions import Predictions, log_predictions, logged_predictions, predict
from tools.evaluate.roi import RoiResult, roi
from tools.evaluate.test_set import (
    EvalResult,
    evaluate_test,
    paired,
    test_evaluations,
)
from tools.prompt.variants import (
    Variant,
    base_variant,
    build_messages,
    pair_variants,
    parse_variant,
    prompt_baseline_run,
    prompt_variant,
    tuned_variant,
)

__all__ = [
    "FORGETTING_FIXES", "PROBES_FILE", "PROBE_CHECKS", "ABResult", "CompareResult", "ForgettingResult", "RoiResult", "EvalConfig", "EvalResult", "Predictions",
    "Variant", "WinRate", "ab", "base_variant", "build_messages", "check_probe", "compare",
    "evaluate_test", "forgetting", "human_win_rate", "load_probes", "load_test",
    "log_predictions", "logged_predictions", "pair_variants", "paired", "parse_variant", "pending_votes", "predict",
    "prompt_baseline_run", "prompt_variant", "record_vote", "roi", "spread",
    "test_evaluations", "tuned_variant", "votes_for", "win_rate",
]
