"""The advisor's typed state: answers, measurements, decisions per node, and the recommendation.

Everything here is plain JSON-like data so the SQLite checkpointer can store it and a session can resume
in another process.
"""

from __future__ import annotations

from typing import Any, TypedDict


class PipelineResults(TypedDict, total=False):
    """What the "go on" phase measured: each tool's JSON document (``to_dict()``), keyed by step."""

    clean: dict[str, Any]  # tools.data.clean's CleanReport (without the removed examples) + ``out``
    split: dict[str, Any]  # tools.data.split's SplitReport
    train: dict[str, Any]  # the training run's document
    evaluate: dict[str, Any]  # tools.evaluate.evaluate_test's EvalResult
    paired: dict[str, Any] | None  # tuned minus the best prompt on the same rows (``pipeline.paired_vs_prompt``)
    compare: dict[str, Any]  # CompareResult, or {"error": ...}
    ab: dict[str, Any]  # ABResult, or {"error": ...}
    forgetting: dict[str, Any]  # ForgettingResult
    learning_curve: dict[str, Any]  # the learning curve's document (optional step)
    diagnosis: dict[str, Any]  # tools.train.diagnose's result
    errors: dict[str, str]  # optional step -> why it could not run
    error: dict[str, str]  # {step, message}: the step that stopped the pipeline
    timings: dict[str, float]  # step -> seconds


class AdvisorState(TypedDict, total=False):
    session_id: str
    answers: dict[str, Any]  # question id -> validated value (scripted answers are pre-filled here)
    asked: list[str]  # ids answered interactively, in order (what `back` walks)
    pending: str | None  # the question a node needs before it can decide
    return_to: str | None  # the node that asked, resumed once the answer is in
    go_back: bool  # set by `back`: the graph restarts from `intake` with one answer removed
    ask_errors: dict[str, str]  # question id -> why the last value (e.g. an unreadable test set) failed
    defaulted: list[str]  # ids answered by taking the default (Enter alone): not a value the user set
    bar: float  # the quality bar (dt.quality_bar or the user's)
    measured_cache: dict[str, dict[str, Any]]  # "<test>|<model>" -> summarised prompt-eval result
    measured: dict[str, Any] | None  # the plain prompt's measurement in this session
    measured_optimized: dict[str, Any] | None  # the best prompt variant's measurement
    best_prompt_quality: float | None
    decisions: dict[str, list[dict[str, Any]]]  # node -> reasons it applied (overwritten when it re-runs)
    path: str | None  # prompts | optimized_prompts | fine_tune | rag | collect_more_data
    method: str | None
    plan: dict[str, Any]  # hyperparameters, memory estimate, roi, split, complexity
    device: dict[str, Any] | None  # the local accelerator, detected once
    recommendation: dict[str, Any] | None
    pipeline: PipelineResults  # clean / split / train / evaluate / forgetting / ab / diagnosis results
    status: str  # asking | recommended | done
    data_facts: dict[str, Any] | None  # what read_data found in the data file (rows, profile, split files)
    derived: dict[str, dict[str, Any]]  # question id -> {value, from}: answers read from the data, not asked
    learning_curve: dict[str, Any] | None  # tools.evaluate.learning_curve result (pipeline step), read by the size criterion
