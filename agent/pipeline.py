"""The advisor's tool calls: prompt measurement, memory estimate, and the "go on" phase
(clean -> split -> train -> evaluate -> forgetting -> diagnose).

Tool modules are imported inside the functions (they are heavy, and built by other areas), every call is
recorded in the run log, and long calls stream ``ProgressEvent``s through LangGraph's stream writer.
A ``TunewiseError`` from a tool becomes ``ToolFailed`` so the graph can re-ask or stop cleanly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agent import routing
from agent.api import Reason
from tools.types import ProgressEvent


class ToolFailed(Exception):  # noqa: N818 - a graph signal carrying a user-facing message
    def __init__(self, message: str, *, user_input: bool = False, kind: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.user_input = user_input
        self.kind = kind  # the TunewiseError subclass name, e.g. "ModelNotFoundError"


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


def build_config(cls: Any, values: Iterable[tuple[tuple[str, ...], Any]]) -> Any:
    """Instantiate a config dataclass from values keyed by candidate field names (the first that exists wins)."""
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else None
    kwargs: dict[str, Any] = {}
    for aliases, value in values:
        if value is None:
            continue
        name = next((a for a in aliases if names is None or a in names), None)
        if name is not None and (names is not None or name == aliases[0]):
            kwargs[name] = value
    return cls(**kwargs)


def tool_module(name: str, *, needs: tuple[str, ...] = ()) -> Any:
    """``tools.<name>``, or ``ToolFailed`` when this installation lacks it (the advice itself still works)."""
    import importlib

    try:
        mod = importlib.import_module(f"tools.{name}")
    except ImportError as e:
        raise ToolFailed(f"the {name} tool is not available in this installation ({e})") from e
    missing = [n for n in needs if not hasattr(mod, n)]
    if missing:
        raise ToolFailed(f"the {name} tool lacks {', '.join(missing)} in this installation")
    return mod


def call_tool(name: str, fn: Callable[..., Any], *args: Any, session_id: str | None = None,
              log_args: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Call a tool, logging it in the run log; user-facing errors become ``ToolFailed``."""
    from tools.errors import TunewiseError
    from tools.runlog import RunLog

    try:
        with RunLog().tool_call(name, log_args or {}, session_id=session_id) as record:
            result = fn(*args, **kwargs)
            record["result"] = _jsonable(result)
            if isinstance(result, dict) and result.get("run_id"):
                record["run_id"] = result["run_id"]
            return result
    except TunewiseError as e:
        kind = type(e).__name__
        raise ToolFailed(e.render(), user_input=kind == "InputError", kind=kind) from e
    except (TypeError, ValueError) as e:  # a config the tool does not accept
        raise ToolFailed(f"{name}: {e}") from e
    except Exception as e:  # noqa: BLE001 - a bug in a tool ends that step, not the advice session
        raise ToolFailed(f"internal error in {name}: {e} (the traceback is in the run log's tool_calls)",
                         kind="InternalError") from e


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
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
    keys = ("quality", "ci95", "metric", "n", "latency_ms", "prompt_tokens", "run_id")
    baseline = {k: result.get(k) for k in keys if result.get(k) is not None}
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
                    alt_systems: list[str] | None = None) -> dict[str, Any]:
    """Measure the plain prompt and the step-2 variants with the prompt-baseline tool."""
    prompt_eval = tool_module("prompt_eval")
    if str(model).startswith("openai:"):
        from agent.prompt_backends import register  # tools/ never imports langchain: plug the backend in here

        register()
    config = build_config(prompt_eval.PromptEvalConfig, [
        (("test", "test_path"), test_set), (("model",), model), (("variants",), True),  # step 2: the dt.step2.* variants
        (("bar", "quality_bar"), bar), (("alt_systems",), alt_systems or None),
    ])
    result = call_tool("prompt_eval", prompt_eval.run_prompt_eval, config, on_progress=progress_callback(),
                       session_id=session_id, log_args={"config": _jsonable(config)})
    if not isinstance(result, dict) or result.get("quality") is None:
        raise ToolFailed("the prompt baseline returned no quality score")
    return summarise_prompt_eval(result)


# ------------------------------------------------------------------ memory estimate

def estimate_memory(params_b: float, method: str, *, batch: int = 8, lora_r: int = 8) -> tuple[float, list[Reason]]:
    """``tools.estimate.estimate_memory`` when it is available, else the seed's memory table."""
    table_gb, reasons = routing.memory_estimate(params_b, method)
    try:
        estimate = tool_module("estimate")
    except ToolFailed:
        return table_gb, reasons
    try:
        est = estimate.estimate_memory(params_b=params_b, method=method, batch=batch, lora_r=lora_r)
        gb = round(float(est["total_gb"]), 2)
    except Exception:  # noqa: BLE001 - the table is a sound fallback
        return table_gb, reasons
    return gb, [routing.why(reasons[0].rule, {"estimate_gb": gb, "table_gb": table_gb, "tool": "tools.estimate"},
                            text=f"Estimated training memory: {gb:g} GB (the seed's table gives {table_gb:g} GB).")]


# ------------------------------------------------------------------ the "go on" phase

def clean_step(state: dict[str, Any]) -> dict[str, Any]:
    data = tool_module("data", needs=("clean", "split"))

    out = session_dir(state.get("session_id")) / "clean.jsonl"
    report = call_tool("clean", data.clean, state["answers"]["data"], out, on_progress=progress_callback(),
                       session_id=state.get("session_id"), log_args={"path": state["answers"]["data"], "out": str(out)})
    report = dict(report)
    report.pop("examples", None)  # the examples are in the file, not in the session state
    return {"clean": _jsonable({**report, "out": str(report.get("out") or out)})}


def split_step(state: dict[str, Any]) -> dict[str, Any]:
    data = tool_module("data", needs=("clean", "split"))

    src = state["pipeline"]["clean"]["out"]
    out_dir = session_dir(state.get("session_id")) / "split"
    seed = (state.get("plan") or {}).get("split", {}).get("seed", 42)
    result = call_tool("split", data.split, src, out_dir, seed=seed, on_progress=progress_callback(),
                       session_id=state.get("session_id"), log_args={"path": src, "out_dir": str(out_dir)})
    return {"split": _jsonable(result)}


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


def train_step(state: dict[str, Any]) -> dict[str, Any]:
    train = tool_module("train")

    hp = (state.get("plan") or {}).get("hyperparameters") or {}
    run = (state.get("plan") or {}).get("short_run") or {}
    lora = hp.get("lora") or {}
    files = state["pipeline"]["split"]["files"]
    val = _val_subset(files["val"], run.get("val_rows"), state.get("session_id"))
    config = build_config(train.TrainConfig, [
        (("model", "base_model"), state["answers"].get("model")),
        (("train", "train_path", "train_file"), files["train"]),
        (("val", "val_path", "val_file"), val),
        (("method",), state.get("method")),
        (("learning_rate", "lr"), hp.get("learning_rate")),
        (("epochs", "num_train_epochs"), hp.get("epochs")),
        (("per_device_batch_size", "per_device_train_batch_size", "batch_size"),
         run.get("per_device_batch_size") or hp.get("per_device_batch_size")),
        (("gradient_accumulation_steps", "grad_accum"),
         run.get("gradient_accumulation_steps") or hp.get("gradient_accumulation_steps")),
        (("weight_decay",), hp.get("weight_decay")),
        (("warmup_ratio",), hp.get("warmup_ratio")),
        (("lora_r", "r", "rank"), lora.get("r")),
        (("lora_alpha", "alpha"), lora.get("lora_alpha")),
        (("lora_dropout",), lora.get("lora_dropout")),
        (("target_modules", "lora_target_modules"), lora.get("target_modules")),
        (("lr_scheduler_type", "lr_scheduler"), hp.get("lr_scheduler")),
        (("early_stopping_threshold",), (hp.get("early_stopping") or {}).get("threshold")),
        (("max_steps",), run.get("max_steps") or state["answers"].get("max_steps")),
        (("eval_steps",), run.get("eval_steps")),
        (("early_stopping_patience", "patience"), (hp.get("early_stopping") or {}).get("patience")),
    ])
    result = call_tool("train", train_runner, config, session_id=state.get("session_id"),
                       log_args={"config": _jsonable(config)})
    result = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    if result.get("status") == "interrupted":
        raise ToolFailed(f"training run {result.get('run_id')} was stopped at step {result.get('steps')}; its "
                         f"checkpoint is kept: resume it with the Training view's Resume or `tunewise train "
                         f"--resume {result.get('run_id')}`", kind="Interrupted")
    if result.get("status") != "completed":
        err = result.get("error") or {}
        what = err.get("what") if isinstance(err, dict) else str(err)
        fix = f" What to do: {err['fix']}" if isinstance(err, dict) and err.get("fix") else ""
        raise ToolFailed(f"training run {result.get('run_id')} {result.get('status', 'failed')}: {what}{fix}",
                         kind="TrainingFailed")
    return {"train": _jsonable(result)}


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
    return tool_module("train").train(config, on_progress=progress_callback())


def train_runner(config: Any) -> Any:
    """How the pipeline trains: in a child process. Tests that fake ``tools.train`` set
    ``pipeline.TRAIN_RUNNER = pipeline.train_in_process``."""
    return TRAIN_RUNNER(config)


TRAIN_RUNNER: Callable[[Any], Any] = train_in_child


def _run_id(state: dict[str, Any]) -> str:
    run_id = (state["pipeline"].get("train") or {}).get("run_id")
    if not run_id:
        raise ToolFailed("training returned no run id")
    return str(run_id)


def _subset(state: dict[str, Any]) -> dict[str, Any]:
    """The short run's evaluation subset (``eval.short_run.subset``), or {} to score everything."""
    return ((state.get("plan") or {}).get("short_run") or {}).get("evaluation") or {}


def evaluate_step(state: dict[str, Any]) -> dict[str, Any]:
    """Test set once, a side-by-side table to read, and an A/B comparison against the base model.

    After a CPU short run all three use the first ``test_rows`` rows, so the table and the A/B reuse the
    evaluation's predictions; each result states how many rows it scored."""
    evaluate = tool_module("evaluate")

    run_id = _run_id(state)
    test = state["pipeline"]["split"]["files"]["test"]
    sid = state.get("session_id")
    sub = _subset(state)
    limit = {"limit": sub["test_rows"]} if sub.get("test_rows") else {}
    out: dict[str, Any] = {}
    out["evaluate"] = _jsonable(call_tool("evaluate_test", evaluate.evaluate_test, run_id, test,
                                          on_progress=progress_callback(), session_id=sid,
                                          log_args={"run_id": run_id, "test": test, **limit}, **limit))
    for name, fn, args, kwargs in (
        ("compare", evaluate.compare, (run_id, test), {"n": sub.get("compare_rows") or 30, **limit}),
        ("ab", evaluate.ab, (state["answers"].get("model"), f"run:{run_id}", test), limit),
    ):
        try:
            out[name] = _jsonable(call_tool(name, fn, *args, session_id=sid, log_args={"args": list(args), **kwargs},
                                            **kwargs))
        except ToolFailed as e:  # optional steps: note the failure, keep the test-set result
            out[name] = {"error": e.message}
    return out


def forgetting_step(state: dict[str, Any]) -> dict[str, Any]:
    evaluate = tool_module("evaluate")

    run_id = _run_id(state)
    probes = _subset(state).get("probes")
    limit = {"limit": probes} if probes else {}
    result = call_tool("forgetting", evaluate.forgetting, run_id, on_progress=progress_callback(),
                       session_id=state.get("session_id"), log_args={"run_id": run_id, **limit}, **limit)
    return {"forgetting": _jsonable(result)}


def diagnose_step(state: dict[str, Any]) -> dict[str, Any]:
    diagnose = tool_module("diagnose")

    run_id = _run_id(state)
    result = call_tool("diagnose", diagnose.diagnose, run_id, session_id=state.get("session_id"),
                       log_args={"run_id": run_id})
    return {"diagnosis": _jsonable(result)}


def outcome_reasons(state: dict[str, Any]) -> list[Reason]:
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
        if prompt_q is not None:
            gain = tested - prompt_q
            need = knowledge.load().rules.roi.worth_it.min_quality_improvement
            ev = {**ev, "gain": round(gain, 4), "needed": need}
            verdict = "worth its cost" if gain > need else "not yet worth its cost"
            reasons.append(routing.why("roi.worth_it", ev, text=f"The fine-tuned model gains {gain:+.1%} over the best "
                                       f"prompt; more than {need:.0%} is needed, so it is {verdict}."))
    if "forgetting" in pipe:
        reasons.append(routing.why("eval.forgetting_check", pipe["forgetting"]))
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
