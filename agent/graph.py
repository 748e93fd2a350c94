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
DECISION_NODES = ("intake", "prompt_baseline", "optimize_prompts", "consider_fine_tuning", "choose_method",
                  "plan_training")
PIPELINE_NODES = ("clean_data", "split_data", "train_model", "evaluate_model", "check_forgetting",
                  "diagnose_run")
ASKING_NODES = (*DECISION_NODES, "offer_pipeline")


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
    """What the task is, what the user wants, and the quality bar."""
    _get(state, "task")
    _get(state, "goals")
    bar, reasons = routing.quality_bar(_get(state, "quality_target"))
    return _decide(state, "intake", reasons, bar=bar, go_back=False, next="prompt_baseline")


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
    answers = state["answers"]
    key = _measure_key(answers["test_set"], answers["model"])
    try:
        summary = pipeline.measure_prompts(answers["test_set"], answers["model"], bar=state["bar"],
                                           session_id=state.get("session_id"),
                                           alt_systems=_proposed_system_prompts(answers))
    except pipeline.ToolFailed as e:
        # An unusable test set (or model) is the user's to fix: drop that answer and ask again, showing why.
        qid = "model" if isinstance(e.error, ModelNotFoundError) else "test_set"
        kept = {k: v for k, v in answers.items() if k != qid}
        return {"answers": kept, "ask_errors": {**(state.get("ask_errors") or {}), qid: e.message}}
    return {"measured_cache": {**(state.get("measured_cache") or {}), key: summary}}


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
    size_decision, r = routing.dataset_size(_get(state, "n_examples"))
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
    answers = state.get("answers") or {}
    updates: dict[str, Any] = {}
    if "gpu_memory_gb" not in answers and state.get("device") is None:
        updates["device"] = detect_device()  # the default offered for the training machine
    gpu = _get(state, "gpu_memory_gb", updates)
    gpus = _get(state, "gpus", updates)
    n = _get(state, "n_examples")
    method_name, reasons = routing.method(gpu, gpus, n)
    _get(state, "model_params_b", updates)
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
    reasons += r + routing.fits(estimate, answers["gpu_memory_gb"], answers["gpus"], method_name)
    plan.update(hyperparameters=hp, split=split, memory_estimate_gb=estimate)
    return _decide(state, "plan_training", reasons, plan=plan, next="recommend")


SUMMARY = {
    "prompts": "Use prompts: no fine-tuning needed.",
    "optimized_prompts": "Use (or keep improving) optimised prompts: fine-tuning is not the right tool here.",
    "fine_tune": "Fine-tune",
    "rag": "Use retrieval (RAG) for the information; do not fine-tune for it.",
    "collect_more_data": "Collect more data first: fine-tuning on this little is risky.",
}


def build_recommendation(state: AdvisorState) -> dict[str, Any]:
    """The JSON document of ``tunewise advise --json`` (``recommendation``), from the state."""
    plan = state.get("plan") or {}
    decisions = state.get("decisions") or {}
    reasons = [r for node in (*DECISION_NODES, *PIPELINE_NODES) for r in decisions.get(node, [])]
    fine_tune = state.get("path") == "fine_tune"
    summary = SUMMARY.get(state.get("path") or "", "")
    if fine_tune:
        summary += f" with {(state.get('method') or 'lora').upper()}."
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
        "prompt_quality": {"plain": (state.get("measured") or {}).get("quality"),
                           "optimized": (state.get("measured_optimized") or {}).get("quality"),
                           "best": state.get("best_prompt_quality"),
                           "measured": bool(state.get("measured"))},
        "reasons": reasons,
    }
    if state.get("pipeline"):
        rec["pipeline"] = state["pipeline"]
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
    _get(state, "data")
    answers = state["answers"]
    _get(state, "model")
    _get(state, "max_steps")
    # the short run trains here: size it for this machine (a CPU gets hp.batch.cpu), keep the plan as it is
    device = state.get("device") or detect_device()
    plan = dict(state.get("plan") or {})
    run, reasons = routing.short_run(plan.get("hyperparameters") or {}, device=device,
                                     model_params_b=answers.get("model_params_b") or questions.EMBEDDED_PARAMS_B,
                                     max_steps=answers.get("max_steps"))
    plan["short_run"] = run
    # cited with the training step it shapes (the recommendation lists pipeline reasons after the plan's)
    return _decide(state, "train_model", reasons, next="clean_data", pipeline={}, plan=plan, device=device)


# ------------------------------------------------------------------ the "go on" phase

# Evaluation steps that may fail without stopping the rest: the run can still be diagnosed.
NON_FATAL = ("evaluate_model", "check_forgetting")


def _pipeline_node(name: str, step: Callable[[Any], dict[str, Any]], nxt: str
                   ) -> Callable[[AdvisorState], dict[str, Any]]:
    """A tool-calling node: stores its results in ``pipeline``; a failure stops the pipeline unless the step
    is an evaluation (then it is noted under ``pipeline.errors`` and the next step runs)."""

    def node(state: AdvisorState) -> dict[str, Any]:
        pipe = dict(state.get("pipeline") or {})
        if pipe.get("error"):
            return {"next": "finish"}
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
        return {"pipeline": pipe, "next": nxt}

    node.__name__ = name
    return node


def finish(state: AdvisorState) -> dict[str, Any]:
    """Diagnose the outcome against the prompt baseline and the ROI, then close the session."""
    decisions = dict(state.get("decisions") or {})
    decisions["diagnose_run"] = routing.reasons_dicts(pipeline.outcome_reasons(dict(state)))
    state = {**state, "decisions": decisions}  # type: ignore[typeddict-item]
    return {"decisions": decisions, "recommendation": build_recommendation(state), "status": "done"}


# ------------------------------------------------------------------ ask, back, and routing

def _default_for(qid: str, state: AdvisorState) -> Any:
    answers = state.get("answers") or {}
    dev = state.get("device") or {}
    if qid == "gpu_memory_gb":
        return dev.get("gpu_memory_gb")
    if qid == "gpus":
        return dev.get("gpus") or 1
    if qid == "model_params_b" and answers.get("model", questions.EMBEDDED_MODEL) == questions.EMBEDDED_MODEL:
        return questions.EMBEDDED_PARAMS_B
    return ...


def pending_question(state: AdvisorState) -> Any:
    """The ``Question`` the state is waiting on (with its default for this session and any error)."""
    qid = state.get("pending") or "task"
    return questions.question(qid, default=_default_for(qid, state), error=(state.get("ask_errors") or {}).get(qid))


def back_update(state: AdvisorState) -> dict[str, Any] | None:
    """Remove the last interactive answer and reset the decisions; ``None`` when nothing was answered."""
    asked = list(state.get("asked") or [])
    if not asked:
        return None
    last = asked.pop()
    answers = {k: v for k, v in (state.get("answers") or {}).items() if k != last}
    return {"answers": answers, "asked": asked, "pending": None, "return_to": None, "go_back": True,
            "decisions": {}, "path": None, "method": None, "plan": {}, "recommendation": None, "pipeline": {},
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
    return {"answers": {**(state.get("answers") or {}), q.id: value},
            "asked": [*(state.get("asked") or []), q.id], "pending": None, "ask_errors": errors}


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
             "diagnose_run": pipeline.diagnose_step}
    for name, nxt in zip(PIPELINE_NODES, (*PIPELINE_NODES[1:], "finish"), strict=True):
        g.add_node(name, _pipeline_node(name, steps[name], nxt))
    g.add_node("finish", finish)

    g.add_edge(START, "intake")
    ends: dict[Any, str] = {"end": END}
    g.add_conditional_edges("intake", route, ["ask", "prompt_baseline"])
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
    g.add_edge("finish", END)
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
