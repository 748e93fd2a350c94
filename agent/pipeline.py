"""The advisor's tool calls: prompt measurement, memory estimate, and the "go on" phase
(clean -> split -> train -> evaluate -> forgetting -> diagnose).

Tool modules are imported inside the functions (they are heavy: torch, transformers), every call is
recorded in the run log, and long calls stream ``ProgressEvent``s through LangGraph's stream writer.
A ``TunewiseError`` from a tool becomes ``ToolFailed`` so the graph can re-ask or stop cleanly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import knowledge
from agent import routing
from agent.api import Reason
from agent.state import AdvisorState, PipelineResults
from tools.errors import InputError, TunewiseError
from tools.types import ProgressEvent


class ToolFailed(Exception):  # noqa: N818 - a graph signal carrying a user-facing message
    """A tool step failed; ``error`` is the user-facing error behind it (None for a bug or a bad result).

    The graph dispatches on the type of ``error`` (``isinstance(e.error, ModelNotFoundError)``).
    """

    def __init__(self, message: str, *, error: TunewiseError | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error

    @property
    def user_input(self) -> bool:
        """True when the user's input (a file, a row, an answer) is what failed: ask for another."""
        return isinstance(self.error, InputError)


def progress_callback() -> Callable[[ProgressEvent], None] | None:
    """Forward ProgressEvents to the graph's custom stream (a no-op outside a streaming run)."""
    try:
        from langgraph.config import get_stream_writer

        writer = get_stream_writer()
    except Exception:  # noqa: BLE001 - called outside a graph run
        return None
    from agent.jobs import advisor_token

    def forward(ev: ProgressEvent) -> None:
        advisor_token.check()  # the user stopped the advisor's work: end the tool at this event (interrupted)
        writer({"progress": ev.to_dict()})

    return forward


Document = dict[str, Any]  # a tool result as its JSON document (``to_dict()``): what the session state keeps


def call_tool(name: str, fn: Callable[..., object], *args: Any, session_id: str | None = None,
              log_args: dict[str, Any] | None = None, **kwargs: Any) -> Document:
    """Call a tool, logging it in the run log; user-facing errors become ``ToolFailed``.

    Tools are imported inside the steps (they are heavy; tests put fakes in ``sys.modules``). The typed result
    is serialised here, once, to the JSON document the run log and the session state keep."""
    from tools.errors import log_bug
    from tools.redaction import redact
    from tools.runlog import RunLog

    try:
        with RunLog().tool_call(name, document(log_args or {}), session_id=session_id) as record:
            result = document(fn(*args, **kwargs))
            if not isinstance(result, dict):
                raise TypeError(f"{name} returned {type(result).__name__}, not a result with to_dict()")
            record["result"] = result
            if result.get("run_id"):
                record["run_id"] = result["run_id"]
            return result
    except TunewiseError as e:
        raise ToolFailed(e.render(), error=e) from e
    except Exception as e:  # noqa: BLE001 - a bug in a tool ends that step, not the advice session
        log = log_bug(e, f"the {name} tool failed inside the advisor")
        raise ToolFailed(f"internal error in {name}: {redact(str(e))} (a bug in tunewise; the traceback is in "
                         f"{log})") from e


def document(x: object) -> Any:
    """``x`` as JSON-like data: typed results by their ``to_dict()``, paths as strings (the one serialiser at the
    boundary between the tools and the session state)."""
    to_dict = getattr(x, "to_dict", None)
    if callable(to_dict) and not isinstance(x, type):  # typed tool results (issue 17)
        return document(to_dict())
    if isinstance(x, dict):
        return {str(k): document(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [document(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return document(dataclasses.asdict(x))
    return str(x)


def session_dir(session_id: str | None) -> Path:
    from tools import paths

    p = paths.home() / "sessions" / (session_id or "scratch")
    p.mkdir(parents=True, exist_ok=True)
    return p


# ------------------------------------------------------------------ prompt baseline (steps 1 and 2)

def _variant_list(variants: Any) -> list[dict[str, Any]]:
    if isinstance(variants, dict):
        return [{"name": k, **(v if isinstance(v, dict) else {"quality": v})} for k, v in variants.items()]
    return [v for v in (variants or []) if isinstance(v, dict)]


def summarise_prompt_eval(result: dict[str, Any]) -> dict[str, Any]:
    """Plain prompt (step 1) and best variant (step 2) from a ``run_prompt_eval`` result."""
    keys = ("quality", "ci95", "metric", "share", "n", "latency_ms", "prompt_tokens", "run_id", "task_profile",
            "final_answer_flexible", "final_answer_flexible_ci95")
    baseline = {k: result.get(k) for k in keys if result.get(k) is not None}
    from tools.estimate_time import row_variants

    baseline["row_variants"] = row_variants(result)  # the work it took: the time estimate's units
    if result.get("output_kind"):
        baseline["output_kind"] = result["output_kind"]
    variants = [v for v in _variant_list(result.get("variants")) if v.get("quality") is not None]
    best = result.get("best")
    best_row = None
    if isinstance(best, dict) and best.get("quality") is not None:
        best_row = best
    elif variants:
        best_row = next((v for v in variants if v.get("name") == best), None) or max(variants, key=lambda v: v["quality"])
    optimized = None
    if best_row is not None:
        optimized = {"quality": max(best_row["quality"], baseline["quality"]),
                     "variant": best_row.get("name") or best_row.get("variant"),
                     **{k: best_row[k] for k in ("ci95", "metric", "n") if k in best_row},
                     "variants_tried": len(variants)}
    return {"baseline": baseline, "optimized": optimized}


def measure_prompts(test_set: str, model: str, *, bar: float, session_id: str | None = None,
                    alt_systems: list[str] | None = None, task: str | None = None) -> dict[str, Any]:
    """Measure the plain prompt and the step-2 variants with the prompt-baseline tool. The user's task answer
    decides the task kind when it implies one (``task.classification``: labels), before the rows' guess."""
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval

    if str(model).startswith("openai:"):
        from agent.prompt_backends import register  # tools/ never imports langchain: plug the backend in here

        register()
    # variants=True: step 2's dt.step2.* variants are measured beside the plain prompt
    config = PromptEvalConfig(test=test_set, model=model, variants=True, bar=bar, alt_systems=list(alt_systems or []),
                              task_kind=task_kind_of(task))
    result = call_tool("prompt_eval", run_prompt_eval, config, on_progress=progress_callback(),
                       session_id=session_id, log_args={"config": config})
    if result.get("quality") is None:
        raise ToolFailed("the prompt baseline returned no quality score")
    return summarise_prompt_eval(result)


def task_kind_of(task: str | None) -> str | None:
    """The task kind the user's task answer implies (its ``task.*`` rule's ``output_kind``), or None."""
    from knowledge.lookup import task_rule

    try:
        return task_rule(task).output_kind if task else None
    except ValueError:  # "other" or an answer the rules do not know: the rows decide
        return None


# ------------------------------------------------------------------ memory estimate

def estimate_memory(params_b: float, method: str, *, batch: int = 8, lora_r: int = 8) -> tuple[float, list[Reason]]:
    """``tools.estimate.estimate_memory`` when it is available, else the seed's memory table."""
    table_gb, reasons = routing.memory_estimate(params_b, method)
    from tools.estimate import estimate_memory as estimator

    try:
        est = estimator(params_b=params_b, method=method, batch=batch, lora_r=lora_r)
        gb = round(float(est.total_gb), 2)
    except TunewiseError:  # an input the estimator refuses (e.g. an unknown method): the seed's table stands
        return table_gb, reasons
    return gb, [routing.why(reasons[0].rule, {"estimate_gb": gb, "table_gb": table_gb, "tool": "tools.estimate"},
                            text=f"Estimated training memory: {gb:g} GB (the seed's table gives {table_gb:g} GB).")]


# ------------------------------------------------------------------ the "go on" phase

def clean_step(state: AdvisorState) -> PipelineResults:
    facts = state.get("data_facts") or {}
    if facts.get("path") == state["answers"]["data"] and facts.get("clean"):
        return {"clean": facts["clean"]}  # read_data cleaned this file already: same rows, same test split
    from tools.data import clean

    out = session_dir(state.get("session_id")) / "clean.jsonl"
    report = call_tool("clean", clean, state["answers"]["data"], out, on_progress=progress_callback(),
                       session_id=state.get("session_id"), log_args={"path": state["answers"]["data"], "out": str(out)})
    report.pop("examples", None)  # the examples are in the file, not in the session state
    return {"clean": {**report, "out": str(report.get("out") or out)}}


def split_step(state: AdvisorState) -> PipelineResults:
    facts = state.get("data_facts") or {}
    if facts.get("path") == state["answers"]["data"] and facts.get("split"):
        return {"split": facts["split"]}  # the prompt baseline was measured on this split's test rows
    from tools.data import split

    src = state["pipeline"]["clean"]["out"]
    out_dir = session_dir(state.get("session_id")) / "split"
    seed = (state.get("plan") or {}).get("split", {}).get("seed", 42)
    result = call_tool("split", split, src, out_dir, seed=seed, on_progress=progress_callback(),
                       session_id=state.get("session_id"), log_args={"path": src, "out_dir": str(out_dir)})
    return {"split": result}


def _val_subset(val: str, rows: int | None, session_id: str | None) -> str:
    """The first ``rows`` lines of the validation split as their own file (the short run's ``val_rows``), or
    the split itself when it is no longer than that. The split files stay as they are."""
    if not rows or not Path(val).is_file():
        return val
    with open(val, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if len(lines) <= rows:
        return val
    from tools.fileio import write_text

    out = session_dir(session_id) / f"val_first_{rows}.jsonl"
    write_text(out, "".join(line if line.endswith("\n") else line + "\n" for line in lines[:rows]))
    return str(out)


def train_step(state: AdvisorState) -> PipelineResults:
    from tools.train.config import TrainConfig

    run = (state.get("plan") or {}).get("short_run") or {}
    files = state["pipeline"]["split"]["files"]
    val = _val_subset(files["val"], run.get("val_rows"), state.get("session_id"))
    config = TrainConfig.from_plan(
        state.get("plan"), train=files["train"], val=val, model=state["answers"].get("model"),
        method=run.get("method") or state.get("method"),  # a CPU check run trains LoRA
        max_steps=run.get("max_steps") or state["answers"].get("max_steps"))
    from tools.estimate_time import record, train_pace

    pace = train_pace()
    result = call_tool("train", train_runner, config, session_id=state.get("session_id"), log_args={"config": config})
    if result.get("status") == "completed" and result.get("train_seconds") and result.get("steps"):
        steps = int(result["steps"])
        record("train", estimate_s=round(pace.seconds(steps), 1), actual_s=float(result["train_seconds"]),
               units=steps, pace=pace, session_id=state.get("session_id"), run_id=result.get("run_id"))
    if result.get("status") == "interrupted":
        raise ToolFailed(f"training run {result.get('run_id')} was stopped at step {result.get('steps')}; its "
                         f"checkpoint is kept: resume it with the Training view's Resume or `tunewise train "
                         f"--resume {result.get('run_id')}`")
    if result.get("status") != "completed":
        err = result.get("error") or {}
        what = err.get("what") if isinstance(err, dict) else str(err)
        fix = f" What to do: {err['fix']}" if isinstance(err, dict) and err.get("fix") else ""
        raise ToolFailed(f"training run {result.get('run_id')} {result.get('status', 'failed')}: {what}{fix}")
    return {"train": result}


def train_in_child(config: Any) -> dict[str, Any]:
    """Train ``config`` in a child process (``tunewise train --plan FILE --run-id ID --events jsonl``), the same
    mechanism as the Training view: the trainer's progress streams through the graph, a cancel (``agent.jobs``)
    makes it checkpoint and stop, and a crash stays in the child. Returns the run's JSON document."""
    import json

    from agent import jobs
    from tools.fileio import write_text
    from tools.runlog import new_id

    run_id = config.run_id or new_id("train-")
    doc = {"train_config": {k: v for k, v in config.to_dict().items() if v is not None}}
    plan = session_dir(None) / f"{run_id}.train_config.json"
    write_text(plan, json.dumps(doc, indent=2, default=str))
    proc = jobs.TrainingProcess(["--plan", str(plan), "--run-id", run_id], run_id=run_id, source="advisor")
    on_progress = progress_callback()
    for event in proc:
        if on_progress is None:
            continue
        try:
            on_progress(ProgressEvent.from_dict(event))
        except jobs.JobCancelled:  # the user stopped the advisor: the trainer checkpoints, then we read its result
            if not proc.detached:  # (a run the user keeps going when the app quits is left alone)
                proc.cancel()
    if proc.result is None and proc.cancelled:  # stopped before training began: nothing to checkpoint
        return {"run_id": run_id, "status": "interrupted", "steps": proc.step}
    if proc.result is None:
        tail = proc.stderr_tail()[-600:].strip() or "no output"
        return {"run_id": run_id, "status": "failed", "steps": proc.step,
                "error": {"what": f"the trainer exited with code {proc.returncode} before reporting a result "
                                  f"({tail})", "fix": f"the trainer's output is in {proc.stderr_path}"}}
    return proc.result


def train_in_process(config: Any) -> Any:
    """``tools.train.train`` in this process (tests with fake tools; the child process is the default)."""
    from tools.train import train

    return train(config, on_progress=progress_callback())


def train_runner(config: Any) -> Any:
    """How the pipeline trains: in a child process. Tests that fake ``tools.train`` set
    ``pipeline.TRAIN_RUNNER = pipeline.train_in_process``."""
    return TRAIN_RUNNER(config)


TRAIN_RUNNER: Callable[[Any], Any] = train_in_child


def _run_id(state: AdvisorState) -> str:
    run_id = (state["pipeline"].get("train") or {}).get("run_id")
    if not run_id:
        raise ToolFailed("training returned no run id")
    return str(run_id)


def _subset(state: AdvisorState) -> dict[str, Any]:
    """The short run's evaluation subset (``eval.short_run.subset``), or {} to score everything."""
    return ((state.get("plan") or {}).get("short_run") or {}).get("evaluation") or {}


def measured_test_file(state: AdvisorState) -> str:
    """The file every step measures on: the user's own test set when they gave one (the prompt baseline was
    scored on it too), else the held-out split of their data."""
    answers, derived = state.get("answers") or {}, state.get("derived") or {}
    if answers.get("test_set") and "test_set" not in derived:
        return str(answers["test_set"])
    return str(state["pipeline"]["split"]["files"]["test"])


def evaluate_step(state: AdvisorState) -> PipelineResults:
    """Test set once, a side-by-side table to read, and an A/B comparison against the base model.

    After a CPU short run all three use the first ``test_rows`` rows, so the table and the A/B reuse the
    evaluation's predictions; each result states how many rows it scored."""
    from tools.evaluate import ab, compare, evaluate_test

    run_id = _run_id(state)
    test = measured_test_file(state)
    sid = state.get("session_id")
    sub = _subset(state)
    limit = {"limit": sub["test_rows"]} if sub.get("test_rows") else {}
    out: PipelineResults = {}
    out["evaluate"] = call_tool("evaluate_test", evaluate_test, run_id, test, on_progress=progress_callback(),
                                session_id=sid, log_args={"run_id": run_id, "test": test, **limit}, **limit)
    # The best prompt and the tuned model on the SAME rows with the SAME metric (decided once from the test
    # file's profile): the paired difference tuned - prompt with its CI (issue 14). None without a baseline.
    out["paired"] = paired_vs_prompt(out["evaluate"])
    optional: tuple[tuple[Literal["compare", "ab"], Callable[..., object], tuple[Any, ...], dict[str, Any]], ...] = (
        # the short run's sample size, else the tool's own default
        ("compare", compare, (run_id, test), {**({"n": sub["compare_rows"]} if sub.get("compare_rows") else {}),
                                              **limit}),
        ("ab", ab, (state["answers"].get("model"), f"run:{run_id}", test), limit),
    )
    for name, fn, args, kwargs in optional:
        try:
            out[name] = call_tool(name, fn, *args, session_id=sid, log_args={"args": list(args), **kwargs}, **kwargs)
        except ToolFailed as e:  # optional steps: note the failure, keep the test-set result
            out[name] = {"error": e.message}
    return out


def paired_vs_prompt(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    """From an ``evaluate_test`` document: tuned minus the best prompt on the same rows, with the metric that
    decided, whether it is a share of acceptable answers, and the 95% CI of the paired difference."""
    vs = (evaluation.get("vs") or {}).get("prompt_baseline")
    if not vs or "diff" not in vs:
        return None
    out = {"metric": evaluation.get("metric"), "share": evaluation.get("share"), "n": evaluation.get("n"),
           "tuned_quality": evaluation.get("quality"), "prompt_quality": vs.get("quality"),
           "prompt_variant": vs.get("variant"), "diff": vs["diff"], "diff_ci95": vs.get("diff_ci95"),
           "mcnemar": vs.get("mcnemar"), "mode": "generation"}
    choice = evaluation.get("choice") or {}
    cvs = (choice.get("vs") or {}).get("prompt_baseline")
    if cvs and "diff" in cvs:  # label tasks: the same rows in choice mode, reported beside generation
        out["choice"] = {"metric": choice.get("metric"), "n": choice.get("n"), "tuned_quality": choice.get("quality"),
                         "prompt_quality": cvs.get("quality"), "diff": cvs["diff"], "diff_ci95": cvs.get("diff_ci95")}
    return out


def forgetting_step(state: AdvisorState) -> PipelineResults:
    from tools.evaluate import forgetting

    run_id = _run_id(state)
    probes = _subset(state).get("probes")
    limit = {"limit": probes} if probes else {}
    result = call_tool("forgetting", forgetting, run_id, on_progress=progress_callback(),
                       session_id=state.get("session_id"), log_args={"run_id": run_id, **limit}, **limit)
    return {"forgetting": result}


def diagnose_step(state: AdvisorState) -> PipelineResults:
    from tools.train.diagnose import diagnose

    run_id = _run_id(state)
    return {"diagnosis": call_tool("diagnose", diagnose, run_id, session_id=state.get("session_id"),
                                   log_args={"run_id": run_id})}


def outcome_reasons(state: AdvisorState) -> list[Reason]:
    """Reasons for the pipeline's outcome: tested quality vs the best prompt, ROI bar, forgetting, diagnosis."""
    import knowledge

    pipe = state.get("pipeline") or {}
    reasons: list[Reason] = []
    if pipe.get("error"):
        err = pipe["error"]
        return [routing.why("principle.validation", err, text=f"The pipeline stopped at {err['step']}: {err['message']}")]
    for step, message in (pipe.get("errors") or {}).items():
        reasons.append(routing.why("principle.validation", {"step": step, "message": message},
                                   text=f"{step} could not run ({message}); the run is unvalidated until it does."))
    tested = (pipe.get("evaluate") or {}).get("quality")
    prompt_q = state.get("best_prompt_quality")
    if tested is not None:
        ev: dict[str, Any] = {"test_quality": tested, "best_prompt_quality": prompt_q}
        reasons.append(routing.why("eval.test_once", ev))
        paired = pipe.get("paired") or {}
        if paired.get("prompt_quality") is not None:  # same rows, same metric: the paired difference decides
            prompt_q = paired["prompt_quality"]
        if prompt_q is not None:
            gain = paired.get("diff", tested - prompt_q)
            need = knowledge.load().rules.roi.worth_it.min_quality_improvement
            ev = {**ev, "best_prompt_quality": prompt_q, "gain": round(gain, 4), "needed": need,
                  "metric": paired.get("metric") or (pipe.get("evaluate") or {}).get("metric"),
                  "diff_ci95": paired.get("diff_ci95"), "n": paired.get("n")}
            verdict = "worth its cost" if gain > need else "not yet worth its cost"
            how = (f" on the same {paired['n']} rows by {ev['metric']} (paired 95% CI "
                   f"[{paired['diff_ci95'][0]:+.1%}, {paired['diff_ci95'][1]:+.1%}])"
                   if paired.get("diff_ci95") and paired.get("n") else "")
            reasons.append(routing.why("roi.worth_it", ev, text=f"The fine-tuned model gains {gain:+.1%} over the best "
                                       f"prompt{how}; more than {need:.0%} is needed, so it is {verdict}."))
            ch = paired.get("choice")
            if ch and ch.get("diff_ci95"):
                reasons.append(routing.why("eval.choice_mode", ch, text=(
                    f"In choice mode (each allowed label scored by log-likelihood, so no invented labels) the tuned "
                    f"model scores {ch['tuned_quality']:.1%} against the prompt's {ch['prompt_quality']:.1%} "
                    f"({ch['diff']:+.1%}, paired 95% CI [{ch['diff_ci95'][0]:+.1%}, {ch['diff_ci95'][1]:+.1%}]). "
                    "This recommendation assumes free generation, the way a chat model is served; choice mode "
                    "applies only where you can score the labels yourself.")))
    if "forgetting" in pipe:
        reasons.append(routing.why("eval.forgetting_check", pipe["forgetting"]))
        use = (state.get("answers") or {}).get("use")
        if forgetting_degraded(pipe) and use in ("dedicated", "assistant"):
            reasons.append(routing.why(f"use.{use}", {"use": use, "forgetting_points":
                                                       _forgetting_points(pipe["forgetting"])}))
    cost = full_run_cost(state)
    if cost:
        reasons.append(routing.why("cost.full_run", cost, text=f"The check run took {cost['seconds_per_step']:g} s "
                                   f"per step here; a full run of {cost['full_run_steps']:,} steps "
                                   f"({cost['epochs']:g} epochs of {cost['train_rows']:,} rows) would take about "
                                   f"{duration(cost['full_run_seconds'])} on this machine."))
    diagnosis = pipe.get("diagnosis") or {}
    index = knowledge.load().index
    for issue in diagnosis.get("issues") or []:
        if isinstance(issue, dict):
            iid = next((str(issue[k]) for k in ("rule", "id", "issue", "name") if issue.get(k)), "")
        else:
            iid = str(issue)
        rid = iid if iid in index else f"diag.{iid}"
        if rid in index:
            reasons.append(routing.why(rid, issue))
            fixes = issue.get("fixes") if isinstance(issue, dict) else None
            first = fixes[0] if fixes and isinstance(fixes[0], dict) else {}
            if first.get("id") in index:  # the first fix to try, with its parameters
                reasons.append(routing.why(first["id"], first.get("params") or None))
    return reasons


# ------------------------------------------------------------------ read before asking (issue 15)

def read_data(path: str, *, session_id: str | None = None) -> dict[str, Any]:
    """Clean and split the user's data file once, early: the row count, the task profile and a held-out test
    split come from it (the pipeline later reuses both, so the prompt baseline and the tuned model are scored
    on the same test rows)."""
    from tools.data import clean as clean_tool
    from tools.data import split as split_tool

    out = session_dir(session_id) / "clean.jsonl"
    report = call_tool("clean", clean_tool, path, out, on_progress=progress_callback(), session_id=session_id,
                       log_args={"path": path, "out": str(out)})
    report.pop("examples", None)  # the removed rows per reason: in the report file, not the session state
    clean = {**report, "out": str(report.get("out") or out)}
    rows = int(report.get("kept_rows") or 0)
    seed = int(routing.split_plan(max(rows, 1))[0]["seed"])
    split = call_tool("split", split_tool, clean["out"], session_dir(session_id) / "split", seed=seed,
                      on_progress=progress_callback(), session_id=session_id, log_args={"path": clean["out"], "seed": seed})
    return {"path": path, "rows": rows, "input_rows": report.get("input_rows"), "clean": clean, "split": split,
            "test_file": (split.get("files") or {}).get("test"), "test_rows": split.get("test"),
            "split_rule": split.get("rule"), "seed": seed, "profile": task_profile(clean["out"])}


def task_profile(path: str) -> dict[str, Any] | None:
    """``tools.data.profile.detect_profile`` on the cleaned rows (the one profile every step reads)."""
    from tools.data import load_examples
    from tools.data.profile import detect_profile

    try:
        return dict(detect_profile(load_examples(path)).to_dict())
    except TunewiseError:  # a file the loader refuses: the advice goes on without a profile, the error was shown
        return None


def model_size(model: str) -> float | None:
    """Billions of parameters of a known local model (the embedded one or an HF folder), from its config."""
    from agent import questions

    if model == questions.EMBEDDED_MODEL:
        return questions.EMBEDDED_PARAMS_B
    if str(model).startswith("openai:"):
        return None
    try:
        from tools import models

        return models.describe(model).get("params_b")
    except Exception:  # noqa: BLE001 - unknown or remote: ask the user
        return None


# ------------------------------------------------------------------ time: estimate before, measure after

def duration(seconds: float) -> str:
    """'45 s', '3 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def announce(stage: str, message: str) -> None:
    """One progress line (e.g. a time estimate) on the graph's stream; a no-op outside a graph run."""
    cb = progress_callback()
    if cb is not None:
        cb(ProgressEvent(stage, 0, None, message=message))


def estimate_prompt_eval(test_set: str, device: dict[str, Any] | None, shape: str | None = None) -> Any:
    """``tools.estimate_time.prompt_eval_estimate`` for a job over a minute on this CPU; None on a GPU, for a
    short job or an unreadable file."""
    if ((device or {}).get("kind") or "cpu") != "cpu":
        return None
    from tools.estimate_time import prompt_eval_estimate

    est = prompt_eval_estimate(test_set, shape=shape)
    return est if est is not None and est.seconds > 60 else None


def estimate_check_run_seconds(state: AdvisorState) -> float | None:
    """What the check run (and the optional learning curve) should take on this CPU, from the costs measured
    on a 2-core CPU (``cost.check_run.cpu``); None on a GPU, where it is minutes at most."""
    import knowledge

    if ((state.get("device") or {}).get("kind") or "cpu") != "cpu":
        return None
    c = knowledge.rule("cost.check_run.cpu").raw
    sub = knowledge.rule("eval.short_run.subset").raw
    steps = int((state.get("answers") or {}).get("max_steps") or knowledge.rule("hp.batch.cpu").raw["max_steps"])
    from tools.estimate_time import train_pace

    secs = (train_pace().seconds(steps) + int(sub["test_rows"]) * 3 * float(c["seconds_per_test_row"])
            + int(sub["probes"]) * 2 * float(c["seconds_per_probe"]) + float(c["overhead_seconds"]))
    return round(secs, 1)


# ------------------------------------------------------------------ the learning curve (optional step)

def learning_curve_step(state: AdvisorState) -> PipelineResults:
    """The short-run recipe on 25/50/100% of the training split, scored on the evaluation's test rows."""
    if not (state.get("answers") or {}).get("learning_curve"):
        return {}
    from agent.questions import EMBEDDED_MODEL
    from tools.evaluate.learning_curve import CurveConfig, learning_curve

    run = (state.get("plan") or {}).get("short_run") or {}
    files = state["pipeline"]["split"]["files"]
    sub = run.get("evaluation") or {}
    train = (state["pipeline"].get("train") or {})
    config = CurveConfig(train=files["train"], test=measured_test_file(state), model=state["answers"].get("model") or
                         EMBEDDED_MODEL, bar=state.get("bar"),
                         max_steps=run.get("max_steps") or state["answers"].get("max_steps"),
                         per_device_batch_size=int(run.get("per_device_batch_size") or _cpu_batch()),
                         test_rows=sub.get("test_rows"), method="lora",
                         learning_rate=((state.get("plan") or {}).get("hyperparameters") or {}).get("learning_rate"))
    return {"learning_curve": call_tool("learning_curve", learning_curve, config, on_progress=progress_callback(),
                                        session_id=state.get("session_id"),
                                        log_args={"config": config, "check_run": train.get("run_id")})}


# ------------------------------------------------------------------ after the pipeline: what was measured

def forgetting_degraded(pipe: PipelineResults) -> bool:
    """True when the forgetting check says general answers got worse (its ``degraded``)."""
    return bool((pipe.get("forgetting") or {}).get("degraded"))


def _cpu_batch() -> int:
    """The check run's per-device batch on a CPU (``hp.batch.cpu``): the fallback when a plan names none."""
    import knowledge

    return int(knowledge.rule("hp.batch.cpu").raw["per_device_batch_size"])


def _forgetting_points(fg: dict[str, Any]) -> float | None:
    if fg.get("base_score") is not None and fg.get("tuned_score") is not None:
        return round((float(fg["base_score"]) - float(fg["tuned_score"])) * 100, 1)
    return None


def full_run_cost(state: AdvisorState) -> dict[str, Any] | None:
    """The check run's measured seconds per step, times the steps of a full run of the plan's epochs over the
    training split at the check run's batch (``cost.full_run``)."""
    pipe = state.get("pipeline") or {}
    train = pipe.get("train") or {}
    steps, secs = train.get("steps"), train.get("train_seconds")
    n_train = (pipe.get("split") or {}).get("train")
    plan = state.get("plan") or {}
    hp = plan.get("hyperparameters") or {}
    run = plan.get("short_run") or {}
    if not steps or not secs or not n_train:
        return None
    batch = int(run.get("effective_batch_size") or run.get("per_device_batch_size") or
                hp.get("effective_batch_size") or _cpu_batch())
    epochs = float(hp.get("epochs") or knowledge.load().hyperparameters.epochs_rule.default)
    full_steps = int(-(-epochs * int(n_train) // batch))
    per_step = float(secs) / int(steps)
    return {"seconds_per_step": round(per_step, 2), "check_run_steps": int(steps), "full_run_steps": full_steps,
            "epochs": epochs, "train_rows": int(n_train), "batch": batch,
            "full_run_seconds": round(per_step * full_steps, 1),
            "device": (state.get("device") or {}).get("kind") or "cpu"}


def outcome_summary(state: AdvisorState) -> dict[str, Any] | None:
    """The summary and the next step after the pipeline, from what it measured: the check run's test quality
    against the bar and the prompt on the same rows, the cost of a full run here, and forgetting weighed
    against the use the user named."""
    import knowledge

    pipe = state.get("pipeline") or {}
    if pipe.get("error"):
        err = pipe["error"]
        return {"summary": f"The pipeline stopped at {err['step']}: {err['message']}", "next_step":
                "fix the problem above and resume the session", "verdict": "stopped"}
    ev = pipe.get("evaluate") or {}
    tested = ev.get("quality")
    if tested is None:
        return None
    bar = float(state["bar"]) if state.get("bar") is not None else routing.quality_bar(None)[0]
    vs = (ev.get("vs") or {}).get("prompt_baseline") or {}
    prompt_q = vs.get("quality", state.get("best_prompt_quality"))
    same_rows = bool(vs)
    need = knowledge.load().rules.roi.worth_it.min_quality_improvement
    n = ev.get("n")
    ci = ev.get("ci95") or []
    ci_txt = f" [{ci[0]:.0%}–{ci[1]:.0%}]" if len(ci) == 2 else ""
    cost = full_run_cost(state)
    cost_txt = (f"a full run ({cost['full_run_steps']:,} steps) would take about "
                f"{duration(cost['full_run_seconds'])} on this machine" if cost else "")
    metric = ev.get("metric")
    share = ev.get("share") is not False  # a reference metric (chrF, ROUGE-L) is a similarity, not a share
    named = f" {metric}" if metric else ""
    if share:
        head = f"The check run scores {tested:.1%}{ci_txt}{named} on {n} test rows against your {bar:.0%} bar"
    else:  # no bar in these units: the decision is head to head with the prompt on the same rows
        head = (f"The check run scores {tested:.1%}{ci_txt}{named} on {n} test rows ({metric} is a similarity, "
                f"not a share of acceptable answers, so it is compared head to head with the prompt, not with "
                f"your {bar:.0%} bar)")
    gain = None if prompt_q is None else tested - float(prompt_q)
    if gain is not None and prompt_q is not None:
        paired = pipe.get("paired") or {}
        dci = paired.get("diff_ci95") or []
        dci_txt = ""
        if len(dci) == 2:
            dci_txt = f", paired 95% CI [{dci[0] * 100:+.1f}, {dci[1] * 100:+.1f}]"
            if dci[0] <= 0 <= dci[1]:
                dci_txt += ": not shown to be better"
        head += (f" ({gain * 100:+.1f} points over the prompt's {float(prompt_q):.1%}"
                 f"{' on the same rows' if same_rows else ''}{dci_txt}; {need:.0%} needed to pay for training)")
    decisive_bar = bar if share else math.inf  # a similarity never "reaches" a bar set as a share
    verdict = outcome_verdict(tested, prompt_q, decisive_bar, need)
    if verdict == "reaches_bar":
        nxt = "train the full run on the plan" + (f": {cost_txt}" if cost else "")
    elif verdict == "worth_a_full_run":
        nxt = "a full run is worth trying" + (f": {cost_txt}" if cost else "")
    else:
        nxt = ("not worth a full run yet: train longer, add data, or try a larger base model"
               + (f" ({cost_txt})" if cost else ""))
    fg = pipe.get("forgetting") or {}
    forget = ""
    use = (state.get("answers") or {}).get("use")
    if forgetting_degraded(pipe):
        pts = _forgetting_points(fg)
        lost = f"general answers degraded by {pts:g} points" if pts is not None else "general answers degraded"
        if use == "dedicated":
            forget = f"; {lost}, which a dedicated model can afford"
        elif use == "assistant":
            forget = f"; {lost}, a defect for an assistant: lower the learning rate or mix general data back in"
            if verdict != "not_yet":
                nxt += ", after fixing the forgetting"
        else:
            forget = f"; {lost}: fine for a dedicated classifier, a defect for an assistant"
    summary = f"{head}{forget}. Next: {nxt}."
    return {"summary": summary, "next_step": nxt, "verdict": verdict, "test_quality": tested, "n": n,
            "ci95": ci or None, "bar": bar, "prompt_quality": prompt_q, "gain": None if gain is None else
            round(gain, 4), "needed": need, "full_run": cost, "forgetting_points": _forgetting_points(fg),
            "use": use, "timings": pipe.get("timings"),
            "what_would_change": outcome_counterfactuals(tested, prompt_q, decisive_bar, need),
            "metric": metric, "share": share, "paired": pipe.get("paired")}


VERDICT_WORDS = {"reaches_bar": "train the full run", "worth_a_full_run": "a full run is worth trying",
                 "not_yet": "not worth a full run yet"}


def outcome_verdict(tested: float, prompt_q: float | None, bar: float, need: float) -> str:
    """The check run against the bar (``outcome.check_run``) and against the prompt (``roi.worth_it``)."""
    if tested >= bar:
        return "reaches_bar"
    if prompt_q is not None and tested - float(prompt_q) > need:
        return "worth_a_full_run"
    return "not_yet"


def outcome_counterfactuals(tested: float, prompt_q: float | None, bar: float, need: float) -> list[dict[str, Any]]:
    """The check-run scores that would change the verdict, from the same ``outcome_verdict``."""
    base = outcome_verdict(tested, prompt_q, bar, need)
    cands = [bar] + ([round(float(prompt_q) + need + 0.001, 4)] if prompt_q is not None else [])
    out: list[dict[str, Any]] = []
    for v in sorted(set(cands), key=lambda x: abs(x - tested)):
        if v > 1:
            continue
        probe = v if v > tested else round(v - 0.002, 4)
        changed = outcome_verdict(probe, prompt_q, bar, need)
        if changed != base and changed not in [c["verdict"] for c in out]:
            word = "reached" if probe > tested else "fell under"
            out.append({"fact": "check_run_quality", "from": tested, "to": probe, "verdict": changed,
                        "text": f"if the check run {word} {v:.1%}: {VERDICT_WORDS[changed]}"})
    return out
