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
from typing import Any

from agent import pipeline, questions, routing
from agent.state import AdvisorState
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
                return {**need.updates, "pending": need.qid, "return_to": name, "next": None}
            return {"pending": None, "return_to": None, **out}

        return node

    return wrap


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
    return _decide(state, "intake", reasons, **facts, bar=bar, go_back=False, next="read_data")


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
                    "pending": "data", "return_to": "read_data", "next": None}
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
    return _decide({**state, **updates}, "read_data", reasons, **updates, next="prompt_baseline")  # type: ignore[typeddict-item]


def _measure_key(test_set: str, model: str) -> str:
    return f"{test_set}|{model}"


@asking_node("prompt_baseline")
def prompt_baseline(state: AdvisorState) -> dict[str, Any]:
    """Step 1: measure the plain prompt on the test set (or take the user's number) against the bar."""
    bar = state["bar"]
    test_set = _get(state, "test_set")
    measured = None
    if test_set:
        key = _measure_key(test_set, _get(state, "model"))
        cached = (state.get("measured_cache") or {}).get(key)
        if cached is None:
            return {"next": "measure_prompts"}
        measured = cached["baseline"]
        quality = measured["quality"]
    else:
        quality = _get(state, "prompt_quality")
    decision, reasons = routing.step1_prompt(quality, bar, measured=measured)
    nxt = "recommend" if decision == "prompts" else "optimize_prompts"
    path = "prompts" if decision == "prompts" else None
    return _decide(state, "prompt_baseline", reasons, measured=measured, best_prompt_quality=quality,
                   path=path, next=nxt)


def measure_prompts(state: AdvisorState) -> dict[str, Any]:
    """Run the prompt-baseline tool on the test set: the plain prompt and the step-2 variants."""
    import time

    answers = state["answers"]
    key = _measure_key(answers["test_set"], answers["model"])
    device = state.get("device") or detect_device()
    estimate = pipeline.estimate_prompt_eval_seconds(answers["test_set"], device)
    if estimate:  # a job longer than a minute says so before it starts, and where the number comes from
        from tools.estimate_time import prompt_pace

        pipeline.announce("prompt_eval", f"about {pipeline.duration(estimate)} on this machine (estimate: "
                                         f"{prompt_pace().note()})")
    started = time.monotonic()
    try:
        summary = pipeline.measure_prompts(answers["test_set"], answers["model"], bar=state["bar"],
                                           session_id=state.get("session_id"),
                                           alt_systems=_proposed_system_prompts(answers))
    except pipeline.ToolFailed as e:
        # An unusable test set (or model) is the user's to fix: drop that answer and ask again, showing why.
        qid = "model" if isinstance(e.error, ModelNotFoundError) else "test_set"
        kept = {k: v for k, v in answers.items() if k != qid}
        return {"answers": kept, "ask_errors": {**(state.get("ask_errors") or {}), qid: e.message}, "device": device}
    took = round(time.monotonic() - started, 1)
    summary["baseline"] = {**summary["baseline"], "seconds": took, **({"estimate_seconds": estimate} if estimate else {})}
    from tools.estimate_time import record

    record("prompt_eval", estimate_s=estimate, actual_s=took, units=None, session_id=state.get("session_id"),
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
    bar = state["bar"]
    measured = None
    answers = state.get("answers") or {}
    if answers.get("test_set"):
        cached = (state.get("measured_cache") or {}).get(_measure_key(answers["test_set"], answers["model"]))
        measured = (cached or {}).get("optimized")
    quality = measured["quality"] if measured is not None else _get(state, "optimized_prompt_quality")
    decision, reasons = routing.step2_optimized(quality, bar, measured=measured)
    best = max(quality, state.get("best_prompt_quality") or 0.0)
    if decision == "optimized_prompts":
        return _decide(state, "optimize_prompts", reasons, measured_optimized=measured, best_prompt_quality=best,
                       path="optimized_prompts", next="recommend")
    return _decide(state, "optimize_prompts", reasons, measured_optimized=measured, best_prompt_quality=best,
                   next="consider_fine_tuning")


@asking_node("consider_fine_tuning")
def consider_fine_tuning(state: AdvisorState) -> dict[str, Any]:
    """Step 3: goals (ftw/dft), task complexity, dataset size, performance needs, cost-benefit."""
    reasons: list[Any] = []
    goal_decision, r = routing.goals_decision(_get(state, "goals"))
    reasons += r
    if goal_decision != "continue":
        return _decide(state, "consider_fine_tuning", reasons, path=goal_decision, next="recommend")
    complexity, r = routing.task_decision(_get(state, "task"))
    reasons += r
    size_decision, r = routing.dataset_size(_get(state, "n_examples"), curve=state.get("learning_curve"),
                                            bar=state["bar"])
    reasons += r
    if size_decision != "continue":
        return _decide(state, "consider_fine_tuning", reasons, path=size_decision, next="recommend",
                       plan={"complexity": complexity})
    _, r = routing.performance(state["bar"], _get(state, "latency_budget_ms"), _get(state, "consistency"))
    reasons += r
    roi_answers = {"prompt_dev_hours": _get(state, "prompt_dev_hours")}
    if roi_answers["prompt_dev_hours"] is not None:
        for k in routing.ROI_INPUTS[1:]:
            roi_answers[k] = _get(state, k)
    roi, r = routing.cost_benefit(roi_answers, prompt_quality=state.get("best_prompt_quality"))
    reasons += r
    return _decide(state, "consider_fine_tuning", reasons, path="fine_tune", next="choose_method",
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
    n = _get(state, "n_examples")
    method_name, reasons = routing.method(gpu, gpus, n)
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
    return _decide(state, "choose_method", reasons, **updates, method=method_name, next="plan_training")


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
                                           lora_r=(hp.get("lora") or {}).get("r", 8))
    if answers["gpu_memory_gb"]:  # on a CPU target, memory is not the limit
        reasons += r + routing.fits(estimate, answers["gpu_memory_gb"], answers.get("gpus") or 1, method_name)
    else:
        reasons += r
    plan.update(hyperparameters=hp, split=split, memory_estimate_gb=estimate)
    return _decide(state, "plan_training", reasons, plan=plan, next="recommend")


def facts_from_state(state: AdvisorState) -> tuple[dict[str, Any], dict[str, bool]]:
    """The flat facts ``routing.decide`` reads, and which of them tunewise measured (vs the user reported)."""
    answers = state.get("answers") or {}
    measured, optimized = state.get("measured") or {}, state.get("measured_optimized") or {}
    facts = {"bar": state.get("bar") if state.get("bar") is not None else routing.quality_bar(None)[0],
             "prompt_quality": measured.get("quality", answers.get("prompt_quality")),
             "optimized_quality": optimized.get("quality", answers.get("optimized_prompt_quality")),
             "goals": answers.get("goals"), "task": answers.get("task"), "n_examples": answers.get("n_examples"),
             "gpu_memory_gb": answers.get("gpu_memory_gb"), "gpus": answers.get("gpus")}
    derived = state.get("derived") or {}
    return facts, {"prompt_quality": bool(measured), "optimized_quality": bool(optimized),
                   "n_examples": "n_examples" in derived}


def build_recommendation(state: AdvisorState) -> dict[str, Any]:
    """The JSON document of ``tunewise advise --json`` (``recommendation``), from the state.

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
    rec: dict[str, Any] = {
        "path": state.get("path"),
        "summary": summary,
        "method": state.get("method") if fine_tune else None,
        "hyperparameters": plan.get("hyperparameters") if fine_tune else None,
        "memory_estimate_gb": plan.get("memory_estimate_gb") if fine_tune else None,
        "roi": plan.get("roi"),
        "split": plan.get("split") if fine_tune else None,
        "short_run": plan.get("short_run") if fine_tune else None,
        "quality_bar": state.get("bar"),
        "quality_bar_user_set": user_bar,
        # the measured baseline as the conversation states it (score, CI, metric, rows, latency vs the budget)
        "prompt_baseline": {k: (state.get("measured") or {}).get(k) for k in ("quality", "ci95", "metric", "n",
                                                                              "latency_ms")}
        if state.get("measured") else None,
        "latency_budget_ms": (state.get("answers") or {}).get("latency_budget_ms"),
        "prompt_quality": {"plain": (state.get("measured") or {}).get("quality"),
                           "optimized": (state.get("measured_optimized") or {}).get("quality"),
                           "best": state.get("best_prompt_quality"),
                           "measured": bool(state.get("measured"))},
        "card": routing.card(facts, decision, reasons, measured=measured, summary=summary, cfs=cfs),
        "what_would_change": cfs,
        "derived": state.get("derived") or {},
        "device": state.get("device"),
        "reasons": reasons,
    }
    if curve:
        rec["learning_curve"] = curve
    if state.get("pipeline"):
        rec["pipeline"] = state["pipeline"]
        outcome = pipeline.outcome_summary(dict(state))
        if outcome:
            rec["pre_pipeline_summary"] = summary
            rec["summary"] = outcome["summary"]
            rec["next_step"] = outcome["next_step"]
            rec["outcome"] = outcome
            rec["card"]["summary"] = outcome["summary"]
            rec["card"]["what_would_change"] = [c["text"] for c in outcome.get("what_would_change") or []][:3]
    return rec


def recommend(state: AdvisorState) -> dict[str, Any]:
    rec = build_recommendation(state)
    return {"recommendation": rec, "status": "recommended",
            "next": "offer_pipeline" if rec["path"] == "fine_tune" else "end"}


@asking_node("offer_pipeline")
def offer_pipeline(state: AdvisorState) -> dict[str, Any]:
    """After a fine-tune recommendation: go on to clean, split, train and evaluate?"""
    if not _get(state, "go_on"):
        return {"next": "end", "status": "done"}
    if not _get(state, "data"):  # answered "none yet" earlier: the pipeline cannot run without it
        kept = {k: v for k, v in state["answers"].items() if k != "data"}
        return {"answers": kept, "pending": "data", "return_to": "offer_pipeline", "next": None,
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
    return _decide(state, "train_model", reasons, next="clean_data", pipeline={}, plan=plan, device=device)


# ------------------------------------------------------------------ the "go on" phase

# Evaluation steps that may fail without stopping the rest: the run can still be diagnosed.
NON_FATAL = ("evaluate_model", "check_forgetting", "learning_curve")


def _pipeline_node(name: str, step: Callable[[Any], dict[str, Any]], nxt: str
                   ) -> Callable[[AdvisorState], dict[str, Any]]:
    """A tool-calling node: stores its results in ``pipeline``; a failure stops the pipeline unless the step
    is an evaluation (then it is noted under ``pipeline.errors`` and the next step runs)."""

    def node(state: AdvisorState) -> dict[str, Any]:
        import time

        pipe = dict(state.get("pipeline") or {})
        if pipe.get("error"):
            return {"next": "finish"}
        started = time.monotonic()
        try:
            result = step(state)
        except pipeline.ToolFailed as e:
            if name == "clean_data" and e.user_input:  # the data file is unusable: ask for another
                kept = {k: v for k, v in state["answers"].items() if k != "data"}
                return {"answers": kept, "ask_errors": {**(state.get("ask_errors") or {}), "data": e.message},
                        "next": "offer_pipeline"}
            if name in NON_FATAL:
                pipe["errors"] = {**(pipe.get("errors") or {}), name: e.message}
                return {"pipeline": pipe, "next": nxt}
            pipe["error"] = {"step": name, "message": e.message}
            return {"pipeline": pipe, "next": "finish"}
        pipe.update(result)
        pipe["timings"] = {**(pipe.get("timings") or {}), name: round(time.monotonic() - started, 1)}
        extra = {"learning_curve": result["learning_curve"]} if result.get("learning_curve") else {}
        return {"pipeline": pipe, "next": nxt, **extra}

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
    decisions["diagnose_run"] = routing.reasons_dicts(pipeline.outcome_reasons(dict(state)))
    curve = state.get("learning_curve")
    n = (state.get("answers") or {}).get("n_examples")
    if curve and n is not None:  # the measured curve, cited beside the seed's size band
        _, r = routing.dataset_size(int(n), curve=curve, bar=state["bar"])
        decisions["learning_curve"] = routing.reasons_dicts(r)
    state = {**state, "decisions": decisions}  # type: ignore[typeddict-item]
    return {"decisions": decisions, "recommendation": build_recommendation(state), "status": "done",
            "next": "end"}


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
        est = pipeline.estimate_check_run_seconds(dict(state))
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


def route(state: AdvisorState) -> str:
    if state.get("pending"):
        return "ask"
    return state.get("next") or "end"


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
    for name, nxt in zip(PIPELINE_NODES, (*PIPELINE_NODES[1:], "finish"), strict=True):
        g.add_node(name, _pipeline_node(name, steps[name], nxt))
    g.add_node("finish", finish)

    g.add_edge(START, "intake")
    ends: dict[Any, str] = {"end": END}
    g.add_conditional_edges("intake", route, ["ask", "read_data"])
    g.add_conditional_edges("read_data", route, ["ask", "prompt_baseline"])
    g.add_conditional_edges("prompt_baseline", route, ["ask", "measure_prompts", "optimize_prompts", "recommend"])
    g.add_edge("measure_prompts", "prompt_baseline")
    g.add_conditional_edges("optimize_prompts", route, ["ask", "consider_fine_tuning", "recommend"])
    g.add_conditional_edges("consider_fine_tuning", route, ["ask", "choose_method", "recommend"])
    g.add_conditional_edges("choose_method", route, ["ask", "plan_training"])
    g.add_conditional_edges("plan_training", route, ["ask", "recommend"])
    g.add_conditional_edges("recommend", route, {"offer_pipeline": "offer_pipeline", **ends})
    g.add_conditional_edges("offer_pipeline", route, {"ask": "ask", "clean_data": "clean_data", **ends})
    g.add_conditional_edges("ask", route_after_ask, list(ASKING_NODES))
    for name, nxt in zip(PIPELINE_NODES, (*PIPELINE_NODES[1:], "finish"), strict=True):
        targets = [nxt, "finish"] if nxt != "finish" else ["finish"]
        if name == "clean_data":
            targets.append("offer_pipeline")
        g.add_conditional_edges(name, route, targets)
    g.add_conditional_edges("finish", route, {"ask": "ask", **ends})
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
