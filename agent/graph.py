"""The advisor as a LangGraph ``StateGraph`` that walks the seed's decision tree.

Decision nodes are thin: they read answers from the state, call a pure function in ``agent.routing`` and
route on its decision. A node that lacks an answer raises ``Need(qid)``; it then routes to ``ask``, the
only node that calls ``interrupt()``. ``ask`` validates the answer (a bad one is re-asked with the reason,
in a loop inside the node), stores it and routes back to the node that needed it. ``back`` removes the
last answer and restarts at ``intake``, which is cheap because every decision node is pure and
measurements are cached in the state.

Tool-calling nodes (prompt measurement, clean, split, train, evaluate, diagnose) run no interrupt, so a
resumed session never repeats a finished tool call: each node's result is checkpointed when it returns.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

from agent import pipeline, questions, routing
from agent.api import Recommendation
from agent.state import AdvisorState, PipelineResults
from tools.errors import ModelNotFoundError

BACK = {"__action__": "back"}  # resume value that means "revise the previous answer"

# Decision nodes in tree order; the recommendation lists their reasons in this order.
DECISION_NODES = ("intake", "read_data", "prompt_baseline", "optimize_prompts", "consider_fine_tuning",
                  "choose_method", "plan_training")
PIPELINE_NODES = ("clean_data", "split_data", "train_model", "evaluate_model", "check_forgetting",
                  "learning_curve", "diagnose_run")
ASKING_NODES = (*DECISION_NODES, "offer_pipeline", "finish")


class Need(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a node that needs an answer; ``updates`` are kept (e.g. a device detected on the way)."""

    def __init__(self, qid: str, updates: dict[str, Any] | None = None) -> None:
        super().__init__(qid)
        self.qid = qid
        self.updates = updates or {}


def _get(state: AdvisorState, qid: str, updates: dict[str, Any] | None = None) -> Any:
    answers = state.get("answers") or {}
    if qid in answers:
        return answers[qid]
    raise Need(qid, updates)


def asking_node(name: str) -> Callable[[Callable[[AdvisorState], dict[str, Any]]], Callable[[AdvisorState], dict[str, Any]]]:
    """Wrap a decision node: a missing answer becomes ``pending`` + ``return_to`` instead of an exception."""

    def wrap(fn: Callable[[AdvisorState], dict[str, Any]]) -> Callable[[AdvisorState], dict[str, Any]]:
        @functools.wraps(fn)
        def node(state: AdvisorState) -> dict[str, Any]:
            try:
                out = fn(state)
            except Need as need:
                return {**need.updates, "pending": need.qid, "return_to": name}
            except routing.MissingFact as missing:  # the tree needs an answer nobody has given yet
                return {"pending": missing.question, "return_to": name}
            return {"pending": None, "return_to": None, **out}

        return node

    return wrap


def _with(state: AdvisorState, **changes: Any) -> AdvisorState:
    """The state with a node's updates applied (what the next node will see)."""
    return cast(AdvisorState, {**state, **changes})


def _decide(state: AdvisorState, node: str, reasons: list[Any], **updates: Any) -> dict[str, Any]:
    decisions = dict(state.get("decisions") or {})
    decisions[node] = routing.reasons_dicts(reasons)
    return {"decisions": decisions, **updates}


# ------------------------------------------------------------------ decision nodes

@asking_node("intake")
def intake(state: AdvisorState) -> dict[str, Any]:
    """The user's files first (the data file and a test set, read at once, so what they answer is not asked),
    then what the task is, what the user wants, and the quality bar."""
    _get(state, "data")
    _get(state, "test_set")
    read = read_data.__wrapped__(state)  # type: ignore[attr-defined]
    if read.get("pending"):
        return read  # the data file could not be read: it is asked again, with why
    facts = {k: read[k] for k in ("data_facts", "answers", "derived") if k in read}
    state = {**state, **facts}  # type: ignore[typeddict-item]
    _get(state, "task", facts)
    _get(state, "goals")
    bar, reasons = routing.quality_bar(_get(state, "quality_target"), user_set=_user_set(state, "quality_target"))
    return _decide(state, "intake", reasons, **facts, bar=bar, go_back=False)


def _user_set(state: AdvisorState, qid: str) -> bool:
    """True when the user gave ``qid`` a value (typed, or in the answers file), not the default by Enter alone."""
    return (state.get("answers") or {}).get(qid) is not None and qid not in (state.get("defaulted") or [])


DERIVABLE = ("n_examples", "test_set", "model_params_b")


@asking_node("read_data")
def read_data(state: AdvisorState) -> dict[str, Any]:
    """Read before asking: the data file's row count, task profile and (without a test set) a held-out test
    split by the split rule. Derived values fill the answers the user has not given, and are listed in
    ``derived`` so the front ends show them and ``Advisor.change`` can replace them."""
    data = _get(state, "data")
    answers = dict(state.get("answers") or {})
    derived = dict(state.get("derived") or {})
    updates: dict[str, Any] = {}
    facts = state.get("data_facts") or {}
    if data and facts.get("path") != data:
        try:
            facts = pipeline.read_data(data, session_id=state.get("session_id"))
        except pipeline.ToolFailed as e:
            kept = {k: v for k, v in answers.items() if k != "data"}
            return {"answers": kept, "ask_errors": {**(state.get("ask_errors") or {}), "data": e.message},
                    "pending": "data", "return_to": "read_data"}
        updates["data_facts"] = facts
    reasons: list[Any] = []
    if data and facts:
        values = {"n_examples": (facts.get("rows"), f"{facts.get('rows')} usable rows in {Path(data).name} "
                                 f"after cleaning ({facts.get('input_rows')} read)"),
                  "test_set": (facts.get("test_file"), f"a held-out test split of {facts.get('test_rows')} rows "
                               f"({facts.get('split_rule')}, seed {facts.get('seed')})")}
        for qid, (value, how) in values.items():
            if value is None or (answers.get(qid) not in (None, "") and qid not in derived):
                continue  # the user's own answer stands (an empty test set means "split mine")
            answers[qid] = value
            derived[qid] = {"value": value, "from": how}
        reasons.append(routing.why("data.derived", {"data": data, "derived": {k: v["value"] for k, v in
                                                                              derived.items()},
                                                    "profile": facts.get("profile")}))
    updates.update(answers=answers, derived=derived)
    decisions = {**(state.get("decisions") or {}), "read_data": routing.reasons_dicts(reasons)}
    return {**updates, "decisions": decisions}


def _measure_key(test_set: str, model: str) -> str:
    return f"{test_set}|{model}"


@asking_node("prompt_baseline")
def prompt_baseline(state: AdvisorState) -> dict[str, Any]:
    """Step 1: measure the plain prompt on the test set (or take the user's number) against the bar."""
    test_set = _get(state, "test_set")
    measured = None
    if test_set:
        cached = (state.get("measured_cache") or {}).get(_measure_key(test_set, _get(state, "model")))
        if cached is None:
            return {"measured": None}  # the edge goes to measure_prompts (``needs_measurement``)
        graded = _graded(state, cached["baseline"], "prompt_baseline")
        if isinstance(graded, dict) and graded.get("__ask__"):
            return dict(graded["__ask__"])
        measured = graded
    facts = routing.facts_of(_with(state, measured=measured))
    decision, reasons = routing.at_prompt_baseline(facts)
    best = facts.prompt_quality if facts.prompt_quality is not None else (measured or {}).get("quality")
    return _decide(state, "prompt_baseline", reasons, measured=measured, best_prompt_quality=best,
                   path="prompts" if decision == "prompts" else None)


def _graded(state: AdvisorState, measured: dict[str, Any], node: str) -> dict[str, Any]:
    """``measured`` with the graded share of its outputs when its metric is a similarity (``agent.grading``).

    Without grades in the run log the ``grades`` question is asked (empty: go on without); a bad grades file is
    asked again with its file:line:field. Returns ``{"__ask__": update}`` when the node must ask."""
    from agent import grading
    from tools.errors import TunewiseError

    answers = state.get("answers") or {}
    if not grading.needs_grades(measured):
        return measured
    from_file = None
    if answers.get("grades"):
        try:
            from_file = grading.file_grades(answers["grades"], answers["test_set"])
        except TunewiseError as e:
            kept = {k: v for k, v in answers.items() if k != "grades"}
            return {"__ask__": {"answers": kept, "pending": "grades", "return_to": node,
                                "ask_errors": {**(state.get("ask_errors") or {}), "grades": e.render()}}}
    out = grading.with_grades(measured, from_file=from_file)
    if grading.needs_grades(out) and "grades" not in answers:
        _get(state, "grades")  # nothing graded yet: a grades file, or empty to go on without
    return out or measured


def measure_prompts(state: AdvisorState) -> dict[str, Any]:
    """Run the prompt-baseline tool on the test set: the plain prompt and the step-2 variants."""
    import time

    answers = state["answers"]
    key = _measure_key(answers["test_set"], answers["model"])
    device = state.get("device") or detect_device()
    from tools.estimate_time import prompt_pace, record

    shape = (pipeline.task_kind_of(answers.get("task"))
             or ((state.get("data_facts") or {}).get("profile") or {}).get("output_kind"))
    est = pipeline.estimate_prompt_eval(answers["test_set"], device, shape)
    estimate = est.seconds if est is not None else None
    pace = est.pace if est is not None else prompt_pace(shape=shape)  # recorded with the time it took
    if est is not None:  # a job longer than a minute says so before it starts, and where the number comes from
        pipeline.announce("prompt_eval", f"at most about {pipeline.duration(est.seconds)} on this machine, less "
                                         f"when the answer is clear early (estimate: {pace.note()})")
    started = time.monotonic()
    try:
        summary = pipeline.measure_prompts(answers["test_set"], answers["model"], bar=state["bar"],
                                           session_id=state.get("session_id"),
                                           alt_systems=_proposed_system_prompts(answers),
                                           task=answers.get("task"))
    except pipeline.ToolFailed as e:
        # An unusable test set (or model) is the user's to fix: drop that answer and ask again, showing why.
        qid = "model" if isinstance(e.error, ModelNotFoundError) else "test_set"
        kept = {k: v for k, v in answers.items() if k != qid}
        return {"answers": kept, "ask_errors": {**(state.get("ask_errors") or {}), qid: e.message}, "device": device}
    took = round(time.monotonic() - started, 1)
    summary["baseline"] = {**summary["baseline"], "seconds": took, **({"estimate_seconds": estimate} if estimate else {})}
    units = int(summary["baseline"].get("row_variants") or 0) or None
    record("prompt_eval", estimate_s=estimate, actual_s=took, units=units, pace=pace,
           shape=summary["baseline"].get("output_kind") or shape, session_id=state.get("session_id"),
           run_id=summary["baseline"].get("run_id"))
    return {"measured_cache": {**(state.get("measured_cache") or {}), key: summary}, "device": device}


def _proposed_system_prompts(answers: dict[str, Any]) -> list[str]:
    """With a chat model in the run's config: system messages it proposes for the step-2 search (else none)."""
    try:
        from langgraph.config import get_config

        chat = get_config().get("configurable", {}).get("chat_model")
    except Exception:  # noqa: BLE001 - outside a graph run
        return []
    if chat is None:
        return []
    from agent import llm

    try:
        sample = Path(answers["test_set"]).read_text(encoding="utf-8", errors="replace")[:1500]
        return llm.propose_prompt_variants(chat, f"A {answers.get('task', 'other')} task. Test examples:\n{sample}")
    except Exception:  # noqa: BLE001 - proposals are optional; the built-in variants still run
        return []


@asking_node("optimize_prompts")
def optimize_prompts(state: AdvisorState) -> dict[str, Any]:
    """Step 2: the best prompt variant (measured), or the user's number, against the bar."""
    measured = None
    answers = state.get("answers") or {}
    if answers.get("test_set"):
        cached = (state.get("measured_cache") or {}).get(_measure_key(answers["test_set"], answers["model"]))
        measured = (cached or {}).get("optimized")
        if measured is not None:
            base = (cached or {}).get("baseline") or {}
            measured = _graded(state, {"share": base.get("share"), "run_id": base.get("run_id"),
                                       "metric": base.get("metric"), **measured},
                               "optimize_prompts")
            if measured.get("__ask__"):
                return dict(measured["__ask__"])
    facts = routing.facts_of(_with(state, measured_optimized=measured))
    decision, reasons = routing.at_optimize_prompts(facts)
    q2 = facts.optimized_quality if facts.optimized_quality is not None else (measured or {}).get("quality")
    if q2 is None:
        q2 = facts.need("optimized_quality")
    best = max(q2, state.get("best_prompt_quality") or 0.0)
    return _decide(state, "optimize_prompts", reasons, measured_optimized=measured, best_prompt_quality=best,
                   path="optimized_prompts" if decision == "optimized_prompts" else None)


@asking_node("consider_fine_tuning")
def consider_fine_tuning(state: AdvisorState) -> dict[str, Any]:
    """Step 3: goals (ftw/dft), task complexity, dataset size, performance needs, cost-benefit."""
    _get(state, "goals")
    outcome, reasons = routing.at_consider_fine_tuning(routing.facts_of(state))
    if outcome in ("rag", "optimized_prompts"):  # a goal redirected before the task and size were read
        return _decide(state, "consider_fine_tuning", reasons, path=outcome)
    complexity = routing.task_decision(_get(state, "task"))[0]
    if outcome != "fine_tune":
        return _decide(state, "consider_fine_tuning", reasons, path=outcome, plan={"complexity": complexity})
    _, r = routing.performance(state["bar"], _get(state, "latency_budget_ms"), _get(state, "consistency"))
    reasons += r
    roi_answers = {"prompt_dev_hours": _get(state, "prompt_dev_hours")}
    if roi_answers["prompt_dev_hours"] is not None:
        for k in routing.ROI_INPUTS[1:]:
            roi_answers[k] = _get(state, k)
    roi, r = routing.cost_benefit(roi_answers, prompt_quality=state.get("best_prompt_quality"))
    reasons += r
    return _decide(state, "consider_fine_tuning", reasons, path="fine_tune",
                   plan={"complexity": complexity, "roi": roi})


def detect_device() -> dict[str, Any]:
    """The local accelerator (imports torch; called only when a GPU question needs a default)."""
    try:
        from tools import device

        return device.detect().to_dict()
    except Exception:  # noqa: BLE001 - no torch / no driver: simply no default
        return {"kind": "cpu", "gpus": 0, "gpu_memory_gb": None}


@asking_node("choose_method")
def choose_method(state: AdvisorState) -> dict[str, Any]:
    """Method by GPU memory, GPU count and data size, with the training memory estimate."""
    answers = dict(state.get("answers") or {})
    updates: dict[str, Any] = {}
    if state.get("device") is None:
        updates["device"] = detect_device()  # a fact about this machine, the default for the target machine
    gpu = _get(state, "gpu_memory_gb", updates)
    gpus = _get(state, "gpus", updates) if gpu else 1
    method_name, reasons = routing.at_choose_method(routing.facts_of(state))
    if "model_params_b" not in answers and answers.get("model"):
        size = pipeline.model_size(answers["model"])  # known model: read its size, do not ask
        if size:
            derived = dict(state.get("derived") or {})
            derived["model_params_b"] = {"value": size, "from": f"the config of {answers['model']}"}
            answers["model_params_b"] = size
            updates.update(answers=answers, derived=derived)
    if "model_params_b" not in answers:
        _get(state, "model_params_b", updates)
    device = updates.get("device") or state.get("device") or {}
    reasons.append(routing.why("device.local", {"this_machine": {k: device.get(k) for k in
                                                                 ("kind", "name", "gpus", "gpu_memory_gb")},
                                                "target_gpu_memory_gb": gpu, "target_gpus": gpus}))
    return _decide(state, "choose_method", reasons, **updates, method=method_name)


@asking_node("plan_training")
def plan_training(state: AdvisorState) -> dict[str, Any]:
    """Hyperparameters from the tables and the split rule."""
    answers = state["answers"]
    plan = dict(state.get("plan") or {})
    hp, reasons = routing.hyperparameters(model_params_b=answers["model_params_b"], method_name=state["method"] or "lora",
                                          n_examples=answers["n_examples"], gpu_memory_gb=answers["gpu_memory_gb"],
                                          complexity=plan.get("complexity", "unknown"))
    split, r = routing.split_plan(answers["n_examples"])
    reasons += r
    method_name = state["method"] or "lora"
    # training memory at the planned per-device batch and rank, checked against the training machine
    estimate, r = pipeline.estimate_memory(answers["model_params_b"], method_name, batch=hp["per_device_batch_size"],
                                           lora_r=(hp.get("lora") or {}).get("r") or routing.start_rank())
    if answers["gpu_memory_gb"]:  # on a CPU target, memory is not the limit
        reasons += r + routing.fits(estimate, answers["gpu_memory_gb"], answers.get("gpus") or 1, method_name)
    else:
        reasons += r
    plan.update(hyperparameters=hp, split=split, memory_estimate_gb=estimate)
    return _decide(state, "plan_training", reasons, plan=plan)


def facts_from_state(state: AdvisorState) -> tuple[dict[str, Any], dict[str, bool]]:
    """The flat facts ``routing.decide`` reads, and which of them tunewise measured (vs the user reported).

    The measurements ride along, so ``decide`` (and every counterfactual) sees what the graph's nodes saw; ``how``
    and ``ungraded`` say what kind of number each quality is (a share, a graded share, or a bare similarity)."""
    facts = routing.facts_of(state)
    m1, m2 = facts.measured or {}, facts.measured_optimized or {}
    how = {fact: {"how": routing.bar_quality(m, None)[1] if m else "reported", "metric": m.get("metric"),
                  "ci95": m.get("ci95"), "n": m.get("n"),
                  "similarity": m.get("quality") if routing.bar_quality(m, None)[1] in ("graded", "similarity")
                  else None, "graded": m.get("graded"), "variant": m.get("variant")}
           for fact, m in (("prompt_quality", m1), ("optimized_quality", m2))}
    ungraded = next(({"metric": m.get("metric"), "similarity": m.get("quality"), "variant": m.get("variant"),
                      "n": m.get("n")}
                     for m in (m2, m1) if m and routing.bar_quality(m, None)[1] == "similarity"), None)
    flat = {**facts.flat(), "measured": facts.measured, "measured_optimized": facts.measured_optimized,
            "how": how, "ungraded": ungraded}
    return flat, {"prompt_quality": facts.measured is not None,
                  "optimized_quality": facts.measured_optimized is not None,
                  "n_examples": "n_examples" in (state.get("derived") or {})}


def build_recommendation(state: AdvisorState) -> Recommendation:
    """The recommendation (``to_dict()`` is the ``recommendation`` of ``tunewise advise --json``), from the state.

    It leads with ``summary`` and ``card`` (decision, method, numbers against the bar, deciding rules) and
    ``what_would_change`` (counterfactuals computed by re-running the routing functions); ``reasons`` keeps
    every rule cited, each once."""
    plan = state.get("plan") or {}
    decisions = state.get("decisions") or {}
    reasons = routing.unique_reasons([r for node in (*DECISION_NODES, *PIPELINE_NODES)
                                      for r in decisions.get(node, [])])
    fine_tune = state.get("path") == "fine_tune"
    facts, measured = facts_from_state(state)
    curve = state.get("learning_curve")
    decision = routing.decide(facts, curve)
    if decision["path"] != state.get("path"):  # the graph is the authority; keep the card honest about it
        decision = {**decision, "path": state.get("path"), "method": state.get("method") if fine_tune else None}
    user_bar = _user_set(state, "quality_target")
    summary = routing.summary_line(facts, decision, measured=measured, user_bar=user_bar, curve=curve)
    cfs = routing.counterfactuals(facts, curve)
    rec = Recommendation(
        path=state.get("path"),
        summary=summary,
        method=state.get("method") if fine_tune else None,
        hyperparameters=plan.get("hyperparameters") if fine_tune else None,
        memory_estimate_gb=plan.get("memory_estimate_gb") if fine_tune else None,
        roi=plan.get("roi"),
        split=plan.get("split") if fine_tune else None,
        short_run=plan.get("short_run") if fine_tune else None,
        quality_bar=state.get("bar"),
        prompt_quality={"plain": (state.get("measured") or {}).get("quality"),
                        "optimized": (state.get("measured_optimized") or {}).get("quality"),
                        "best": state.get("best_prompt_quality"),
                        "measured": bool(state.get("measured"))},
        card=routing.card(facts, decision, reasons, measured=measured, summary=summary, cfs=cfs),
        what_would_change=cfs,
        derived=state.get("derived") or {},
        device=state.get("device"),
        reasons=reasons,
        learning_curve=curve or None,
        quality_bar_user_set=user_bar,
        # the measured baseline as the conversation states it (score, CI, metric, rows, latency vs the budget)
        prompt_baseline={k: (state.get("measured") or {}).get(k) for k in ("quality", "ci95", "metric", "n",
                                                                          "latency_ms")}
        if state.get("measured") else None,
        latency_budget_ms=(state.get("answers") or {}).get("latency_budget_ms"),
    )
    if state.get("pipeline"):
        rec.pipeline = dict(state["pipeline"])
        outcome = pipeline.outcome_summary(state)
        if outcome:
            rec.pre_pipeline_summary = summary
            rec.summary = rec.card.summary = outcome["summary"]
            rec.next_step = outcome["next_step"]
            rec.outcome = outcome
            rec.card.what_would_change = [c["text"] for c in outcome.get("what_would_change") or []][:3]
    return rec


def recommend(state: AdvisorState) -> dict[str, Any]:
    return {"recommendation": build_recommendation(state).to_dict(), "status": "recommended"}


@asking_node("offer_pipeline")
def offer_pipeline(state: AdvisorState) -> dict[str, Any]:
    """After a fine-tune recommendation: go on to clean, split, train and evaluate?"""
    if not _get(state, "go_on"):
        return {"status": "done"}
    if not _get(state, "data"):  # answered "none yet" earlier: the pipeline cannot run without it
        kept = {k: v for k, v in state["answers"].items() if k != "data"}
        return {"answers": kept, "pending": "data", "return_to": "offer_pipeline",
                "ask_errors": {**(state.get("ask_errors") or {}),
                               "data": "the pipeline trains on your data: give the data file"}}
    answers = state["answers"]
    _get(state, "model")
    _get(state, "max_steps")
    _get(state, "learning_curve")
    # the short run trains here: size it for this machine (a CPU gets hp.batch.cpu), keep the plan as it is
    device = state.get("device") or detect_device()
    plan = dict(state.get("plan") or {})
    run, reasons = routing.short_run(plan.get("hyperparameters") or {}, device=device,
                                     model_params_b=answers.get("model_params_b") or questions.EMBEDDED_PARAMS_B,
                                     max_steps=answers.get("max_steps"), method_name=state.get("method"))
    plan["short_run"] = run
    # cited with the training step it shapes (the recommendation lists pipeline reasons after the plan's)
    return _decide(state, "train_model", reasons, pipeline={}, plan=plan, device=device)


# ------------------------------------------------------------------ the "go on" phase

# Evaluation steps that may fail without stopping the rest: the run can still be diagnosed.
NON_FATAL = ("evaluate_model", "check_forgetting", "learning_curve")


def _pipeline_node(name: str, step: Callable[[AdvisorState], PipelineResults]
                   ) -> Callable[[AdvisorState], dict[str, Any]]:
    """A tool-calling node: stores its results in ``pipeline``; a failure stops the pipeline unless the step
    is an evaluation (then it is noted under ``pipeline.errors`` and the next step runs)."""

    def node(state: AdvisorState) -> dict[str, Any]:
        import time

        pipe = PipelineResults(**(state.get("pipeline") or {}))
        if pipe.get("error"):
            return {}
        started = time.monotonic()
        try:
            result = step(state)
        except pipeline.ToolFailed as e:
            if name == "clean_data" and e.user_input:  # the data file is unusable: ask for another
                kept = {k: v for k, v in state["answers"].items() if k != "data"}
                return {"answers": kept, "ask_errors": {**(state.get("ask_errors") or {}), "data": e.message}}
            if name in NON_FATAL:
                pipe["errors"] = {**(pipe.get("errors") or {}), name: e.message}
                return {"pipeline": pipe}
            pipe["error"] = {"step": name, "message": e.message}
            return {"pipeline": pipe}
        pipe.update(result)
        pipe["timings"] = {**(pipe.get("timings") or {}), name: round(time.monotonic() - started, 1)}
        extra = {"learning_curve": result["learning_curve"]} if "learning_curve" in result else {}
        return {"pipeline": pipe, **extra}

    node.__name__ = name
    return node


@asking_node("finish")
def finish(state: AdvisorState) -> dict[str, Any]:
    """Diagnose the outcome against the prompt baseline and the ROI, then close the session.

    When the check run lost general answers, ask what the model is for: a dedicated classifier and an
    assistant weigh forgetting differently."""
    decisions = dict(state.get("decisions") or {})
    if pipeline.forgetting_degraded(state.get("pipeline") or {}):
        _get(state, "use")
    decisions["diagnose_run"] = routing.reasons_dicts(pipeline.outcome_reasons(state))
    curve = state.get("learning_curve")
    n = (state.get("answers") or {}).get("n_examples")
    if curve and n is not None:  # the measured curve, cited beside the seed's size band
        _, r = routing.dataset_size(int(n), curve=curve, bar=state["bar"])
        decisions["learning_curve"] = routing.reasons_dicts(r)
    rec = build_recommendation(_with(state, decisions=decisions))
    return {"decisions": decisions, "recommendation": rec.to_dict(), "status": "done"}


# ------------------------------------------------------------------ ask, back, and routing

def _default_for(qid: str, state: AdvisorState) -> Any:
    answers = state.get("answers") or {}
    dev = state.get("device") or {}
    if qid == "gpu_memory_gb":  # the target machine defaults to this one; no GPU here is 0
        return dev.get("gpu_memory_gb") if dev.get("kind") == "cuda" else (0.0 if dev else None)
    if qid == "gpus":
        return dev.get("gpus") or 1
    if qid == "model_params_b" and answers.get("model", questions.EMBEDDED_MODEL) == questions.EMBEDDED_MODEL:
        return questions.EMBEDDED_PARAMS_B
    if qid == "task":  # the kind the data's outputs show, for Enter to accept
        return questions.task_from_profile((state.get("data_facts") or {}).get("profile")) or ...
    return ...


def pending_question(state: AdvisorState) -> Any:
    """The ``Question`` the state is waiting on (with its default for this session and any error)."""
    qid = state.get("pending") or "task"
    q = questions.question(qid, default=_default_for(qid, state), error=(state.get("ask_errors") or {}).get(qid))
    dev = state.get("device") or {}
    if qid == "gpu_memory_gb" and dev:
        here = (f"{dev.get('gpus')} x {dev.get('name')} with {dev.get('gpu_memory_gb')} GB"
                if dev.get("kind") == "cuda" else f"no GPU ({dev.get('name') or 'CPU'})")
        q.help = (f"This machine: {here}. The check run trains here (LoRA on a CPU); this answer is for the "
                  "machine you will train the real model on. 0 or 'none' means no GPU. " + q.help)
    profile = (state.get("data_facts") or {}).get("profile") or {}
    if qid == "task" and profile.get("output_kind"):
        labels = profile.get("labels") or []
        q.help = (f"Read from your data: {profile.get('output_kind')} outputs"
                  + (f", {len(labels)} labels" if labels else "") + ". " + q.help)
    if qid == "go_on":
        est = pipeline.estimate_check_run_seconds(state)
        if est:
            q.prompt = q.prompt.rstrip("?") + f"? (about {pipeline.duration(est)} on this machine)"
    return q


def back_update(state: AdvisorState) -> dict[str, Any] | None:
    """Remove the last interactive answer and reset the decisions; ``None`` when nothing was answered."""
    asked = list(state.get("asked") or [])
    if not asked:
        return None
    last = asked.pop()
    answers = {k: v for k, v in (state.get("answers") or {}).items() if k != last}
    return {"answers": answers, "asked": asked, "pending": None, "return_to": None, "go_back": True,
            "decisions": {}, "path": None, "method": None, "plan": {}, "recommendation": None, "pipeline": {},
            "learning_curve": None,
            "measured": None, "measured_optimized": None, "best_prompt_quality": None, "status": "asking"}


def ask(state: AdvisorState) -> dict[str, Any]:
    """Ask the pending question with ``interrupt()``; re-ask with the reason until the answer is valid.

    Nothing before the ``interrupt()`` has side effects, so the node can re-run from its first line.
    """
    from langgraph.types import interrupt

    q = pending_question(state)
    while True:
        raw = interrupt({"question": q.to_dict()})
        if raw == BACK:
            update = back_update(state)
            if update is not None:
                return update
            q.error = "there is no earlier answer to revise"
            continue
        ok, value, reason = questions.coerce(q, raw)
        if ok:
            break
        q.error = reason
    errors = {k: v for k, v in (state.get("ask_errors") or {}).items() if k != q.id}
    took_default = raw is None or (isinstance(raw, str) and not raw.strip())
    defaulted = [k for k in (state.get("defaulted") or []) if k != q.id] + ([q.id] if took_default else [])
    return {"answers": {**(state.get("answers") or {}), q.id: value},
            "asked": [*(state.get("asked") or []), q.id], "pending": None, "ask_errors": errors,
            "defaulted": defaulted}


# Each edge below is a pure function of the state with a ``Literal`` return. The decision tree's edges come from
# ``routing.TREE`` (the table ``routing.decide`` walks for the counterfactuals); the rest are the session's
# plumbing: asking, measuring, and the pipeline's steps in order.

def needs_measurement(state: AdvisorState) -> bool:
    """A test set is given but its prompt baseline is not measured yet (``measure_prompts`` runs first)."""
    answers = state.get("answers") or {}
    if not answers.get("test_set"):
        return False
    return _measure_key(answers["test_set"], answers.get("model", "")) not in (state.get("measured_cache") or {})


def tree_edge(node: str) -> Callable[[AdvisorState], str]:
    """The conditional edge out of a deciding node: ``ask`` while an answer is pending, else ``routing.TREE``'s
    outcome on the state's facts."""

    def edge(state: AdvisorState) -> str:
        if state.get("pending"):
            return "ask"
        if node == "prompt_baseline" and needs_measurement(state):
            return "measure_prompts"
        return routing.next_node(node, routing.facts_of(state))

    edge.__name__ = f"after_{node}"
    return edge


def tree_targets(node: str) -> list[str]:
    """Every node ``tree_edge(node)`` can return (the graph drawing's edges)."""
    extra = ["measure_prompts"] if node == "prompt_baseline" else []
    return ["ask", *extra, *dict.fromkeys(routing.TREE[node].edges.values())]


def after_intake(state: AdvisorState) -> Literal["ask", "read_data"]:
    return "ask" if state.get("pending") else "read_data"


def after_read_data(state: AdvisorState) -> Literal["ask", "prompt_baseline"]:
    return "ask" if state.get("pending") else "prompt_baseline"


def after_plan_training(state: AdvisorState) -> Literal["ask", "recommend"]:
    return "ask" if state.get("pending") else "recommend"


def after_recommend(state: AdvisorState) -> Literal["offer_pipeline", "end"]:
    return "offer_pipeline" if state.get("path") == "fine_tune" else "end"


def after_offer_pipeline(state: AdvisorState) -> Literal["ask", "clean_data", "end"]:
    if state.get("pending"):
        return "ask"
    return "clean_data" if (state.get("answers") or {}).get("go_on") else "end"


def pipeline_edge(name: str, nxt: str) -> Callable[[AdvisorState], str]:
    """After a pipeline step: the next step; ``finish`` once the pipeline stopped; back to ``offer_pipeline``
    when cleaning refused the data file (its answer was dropped to ask for another)."""

    def edge(state: AdvisorState) -> str:
        if name == "clean_data" and not (state.get("answers") or {}).get("data"):
            return "offer_pipeline"
        return "finish" if (state.get("pipeline") or {}).get("error") else nxt

    edge.__name__ = f"after_{name}"
    return edge


def after_finish(state: AdvisorState) -> Literal["ask", "end"]:
    return "ask" if state.get("pending") else "end"


def route_after_ask(state: AdvisorState) -> str:
    if state.get("go_back"):
        return "intake"
    return state.get("return_to") or "intake"


def build_graph(checkpointer: Any = None) -> Any:
    """Compile the advisor graph (with ``checkpointer`` for sessions that persist and resume)."""
    from langgraph.graph import END, START, StateGraph

    g: Any = StateGraph(AdvisorState)  # the overloads reject plain TypedDict callables
    g.add_node("intake", intake)
    g.add_node("read_data", read_data)
    g.add_node("prompt_baseline", prompt_baseline)
    g.add_node("measure_prompts", measure_prompts)
    g.add_node("optimize_prompts", optimize_prompts)
    g.add_node("consider_fine_tuning", consider_fine_tuning)
    g.add_node("choose_method", choose_method)
    g.add_node("plan_training", plan_training)
    g.add_node("recommend", recommend)
    g.add_node("offer_pipeline", offer_pipeline)
    g.add_node("ask", ask)
    steps = {"clean_data": pipeline.clean_step, "split_data": pipeline.split_step, "train_model": pipeline.train_step,
             "evaluate_model": pipeline.evaluate_step, "check_forgetting": pipeline.forgetting_step,
             "learning_curve": pipeline.learning_curve_step, "diagnose_run": pipeline.diagnose_step}
    for name in PIPELINE_NODES:
        g.add_node(name, _pipeline_node(name, steps[name]))
    g.add_node("finish", finish)

    g.add_edge(START, "intake")
    ends: dict[Any, str] = {"end": END}
    g.add_conditional_edges("intake", after_intake, ["ask", "read_data"])
    g.add_conditional_edges("read_data", after_read_data, ["ask", "prompt_baseline"])
    for node in routing.TREE:  # the decision tree's edges, from the table routing.decide walks
        g.add_conditional_edges(node, tree_edge(node), tree_targets(node))
    g.add_edge("measure_prompts", "prompt_baseline")
    g.add_conditional_edges("plan_training", after_plan_training, ["ask", "recommend"])
    g.add_conditional_edges("recommend", after_recommend, {"offer_pipeline": "offer_pipeline", **ends})
    g.add_conditional_edges("offer_pipeline", after_offer_pipeline, {"ask": "ask", "clean_data": "clean_data", **ends})
    g.add_conditional_edges("ask", route_after_ask, list(ASKING_NODES))
    for name, nxt in zip(PIPELINE_NODES, (*PIPELINE_NODES[1:], "finish"), strict=True):
        targets = [nxt, "finish"] if nxt != "finish" else ["finish"]
        if name == "clean_data":
            targets.append("offer_pipeline")
        g.add_conditional_edges(name, pipeline_edge(name, nxt), targets)
    g.add_conditional_edges("finish", after_finish, {"ask": "ask", **ends})
    return g.compile(checkpointer=checkpointer)


def sqlite_checkpointer(path: str | Path | None = None) -> Any:
    """A ``SqliteSaver`` on ``sessions.sqlite`` in TUNEWISE_HOME (one connection, usable across threads)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from tools import paths

    conn = sqlite3.connect(str(path or paths.sessions_path()), check_same_thread=False)
    return SqliteSaver(conn)


@functools.lru_cache(maxsize=1)
def mermaid() -> str:
    """The advisor graph as a Mermaid diagram."""
    return str(build_graph().get_graph().draw_mermaid())
