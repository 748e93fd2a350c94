"""Evaluation tools as LangChain ``@tool`` wrappers: test set, side by side, forgetting, A/B, ROI, judge, people's
grades, report.

Each returns the tool's JSON document; a user-fixable problem comes back as ``{"error": ...}`` so an agent can
read it and try again, instead of an exception ending its turn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.tools import tool


def _guard(fn: Callable[[], Any]) -> Any:
    from tools.errors import TunewiseError

    try:
        return fn()
    except TunewiseError as e:
        return {"error": e.to_dict()}


ALLOW_METRICS_ENV = "TUNEWISE_AGENT_METRICS"


def refuse_agent_metric(metric: str | None) -> dict[str, Any] | None:
    """A ``module:function`` metric chosen by an agent runs code; it is refused unless the user allowed that
    exact spec (or ``*``) in ``$TUNEWISE_AGENT_METRICS`` (comma-separated). Built-in metric names are fine."""
    import os

    from tools.scoring import metrics

    if metric is None or metric in metrics.METRICS:
        return None
    allowed = {m.strip() for m in os.environ.get(ALLOW_METRICS_ENV, "").split(",") if m.strip()}
    if "*" in allowed or metric in allowed:
        return None
    from tools.errors import InputError

    return {"error": InputError(
        f"the metric {metric!r} runs code and was chosen by an agent, not by the user", where="metric",
        fix=f"use a built-in metric ({', '.join(metrics.METRICS)}), or the user allows it with "
            f"{ALLOW_METRICS_ENV}={metric}").to_dict()}


@tool
def evaluate_test_set(run_id: str, test_file: str, metric: str | None = None) -> dict[str, Any]:
    """Score a tuned run on the held-out test set (once!) beside the base model and the best prompt baseline:
    quality, 95% CI, n, metric (decided from the task profile unless given), and the paired differences on the
    same rows. Warns when the test set was scored before. A module:function metric needs the user's consent."""
    from tools.evaluate import evaluate_test

    refused = refuse_agent_metric(metric)
    if refused:
        return refused
    return _guard(lambda: {k: v for k, v in evaluate_test(run_id, test_file, metric=metric).to_dict().items()
                           if k != "details"})


@tool
def compare_side_by_side(run_id: str, test_file: str, n: int = 30) -> dict[str, Any]:
    """A side-by-side sample (input, expected, base, prompt baseline, tuned, match marks) with edge cases."""
    from tools.evaluate import compare

    return _guard(lambda: compare(run_id, test_file, n=n).to_dict())


@tool
def forgetting_check(run_id: str, probes_file: str | None = None) -> dict[str, Any]:
    """Catastrophic forgetting check: base vs tuned model on general probes; scores, drop, verdict and fixes."""
    from tools.evaluate import forgetting

    def run() -> dict[str, Any]:
        res = forgetting(run_id, probes=probes_file).to_dict()
        res["items"] = [i for i in res["items"] if i["status"] == "lost"][:20]  # keep the agent's context small
        return res

    return _guard(run)


@tool
def ab_compare(a: str, b: str, test_file: str, bar: float | None = None) -> dict[str, Any]:
    """Offline A/B of two variants (run:ID, base, base:MODEL, prompt:RUN_ID|FILE) on the same test examples:
    difference with bootstrap CI, McNemar p-value, latency/tokens, and whether the gain clears the bar
    (absolute points; default: rule roi.worth_it)."""
    from tools.evaluate import ab

    return _guard(lambda: ab(a, b, test_file, bar=bar).to_dict())


@tool
def fine_tune_roi(prompt_dev_hours: float, hourly_rate: float, data_prep_hours: float,
                  training_cost: float | None = None, run_id: str | None = None,
                  gpu_hour_cost: float | None = None, quality_gain: float | None = None) -> dict[str, Any]:
    """The seed's ROI formula: prompt cost vs fine-tuning cost, their ratio, the quality gain needed, and (with a
    run or a measured gain) whether the gain justifies it. The one ROI tool."""
    from tools.evaluate import roi

    return _guard(lambda: roi(prompt_dev_hours, hourly_rate, data_prep_hours, training_cost, run_id=run_id,
                              gpu_hour_cost=gpu_hour_cost, quality_gain=quality_gain).to_dict())


@tool
def judge_answers(run_id: str, test_file: str, judge: str, mode: str = "rubric") -> dict[str, Any]:
    """A model judges the tuned run's answers (rubric: pass rate; pairwise: win rate vs the prompt baseline,
    positions swapped), with its agreement (% and Cohen's kappa, n) with the user's verdicts; ``trusted`` says
    whether the knowledge floor (eval.judge.agreement_floor) allows using its scores."""
    from tools.errors import one_of
    from tools.evaluate.judging import judge_run
    from tools.scoring.judge import MODES

    return _guard(lambda: judge_run(run_id, test_file, judge, mode=one_of(mode, MODES, what="mode")).to_dict())


@tool
def graded_share(run_id: str, variant: str | None = None, grades_file: str | None = None) -> dict[str, Any]:
    """People's grades of a run's outputs as the share of acceptable answers (good / (good + bad)) with a Wilson
    95% CI: the quality the 90% bar needs on free text, where chrF is only a similarity. ``variant``: a prompt
    variant (default baseline) or tuned/base/prompt_baseline for a training run. ``grades_file`` (JSONL/CSV of
    row or input, and good/bad/skip) is stored in the run log first; without it, the grades already given."""
    from tools.scoring import grades as G

    def run() -> dict[str, Any]:
        gs = G.grading_set(run_id, variant=variant)
        share = G.import_grades(gs, grades_file) if grades_file else (G.logged_share(gs.run_id, gs.variant)
                                                                       or gs.share())
        return {**share.to_dict(), "run_id": gs.run_id, "variant": gs.variant, "sample": [it.idx for it in gs.items],
                "paired": G.paired_with_others(gs)}

    return _guard(run)


@tool
def build_run_report(run_id: str, out: str = "report.html") -> dict[str, Any]:
    """Write the one-page report of a run (HTML, or Markdown when out ends in .md); returns its path."""
    from tools.report import build_report

    return _guard(lambda: {"report": str(build_report(run_id, out))})


TOOLS = [evaluate_test_set, compare_side_by_side, forgetting_check, ab_compare, fine_tune_roi, judge_answers,
         graded_share, build_run_report]
