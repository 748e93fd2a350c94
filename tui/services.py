"""Every call the TUI makes into the advisor and the tools goes through this one module.

The TUI holds no business logic: the screens call these functions (from worker threads) and render what they
return. Imports are lazy, inside the functions, so that opening the app loads neither torch nor langgraph
before the first question is on screen. Tests replace this module's functions with fakes through
``TunewiseApp(services=...)``; when a tool's signature changes, it is adjusted here, in one place.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import jobs

if TYPE_CHECKING:  # the typed tool results the views read (fields, not keys)
    from tools.evaluate.ab import ABResult
    from tools.evaluate.compare import CompareResult
    from tools.evaluate.forgetting import ForgettingResult
    from tools.evaluate.test_set import EvalResult
    from tools.prompt.evaluation import PromptEvalResult

ProgressCallback = Callable[[Any], None]

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------ advisor
def make_advisor(session_id: str | None = None, *, on_progress: ProgressCallback | None = None) -> Any:
    """An ``agent.advisor.Advisor`` (imports langgraph: call it from a worker, never at start-up)."""
    from agent.advisor import Advisor

    return Advisor(session_id, chat_model=chat_model(), on_progress=on_progress)


def chat_model() -> Any:
    """The optional chat model for free-text answers, or None when none is configured."""
    from agent import llm

    try:
        return llm.chat_model_from_env()
    except Exception as e:  # noqa: BLE001 - a broken endpoint setting must not stop the app; it is logged
        from tools.errors import log_bug

        log_bug(e, "the chat model setting was not usable; the advisor runs without it")
        return None


def chat_model_configured() -> bool:
    """Cheap check (no imports) whether a chat model is configured, so the free-text field can be shown."""
    return any(os.environ.get(v) for v in ("TUNEWISE_CHAT_BASE_URL", "TUNEWISE_OPENAI_BASE_URL", "TUNEWISE_CHAT_MODEL"))


def checklist_items() -> list[dict[str, Any]]:
    """The 15 best-practice items (id, n, text, phase) from ``knowledge/checklist.yaml``."""
    import knowledge

    k = knowledge.load()
    items = []
    for r in k.index.values():
        if r.id.startswith("chk.") and "n" in r.raw:
            items.append({"id": r.id, "n": int(r.raw["n"]), "text": r.text, "phase": r.id.split(".")[1],
                          "evidence": r.raw.get("evidence")})
    return sorted(items, key=lambda i: i["n"])


# ------------------------------------------------------------------------------------------------ demo
def demo_dataset() -> Path:
    """The built-in demo task: synthetic support-ticket intents (labelled synthetic in every row's meta)."""
    return REPO / "knowledge" / "demo" / "support_tickets.jsonl"


def demo_rows() -> int:
    """Rows in the demo file (1208: 1200 good, 8 deliberately flawed)."""
    with demo_dataset().open(encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def demo_test_set() -> Path:
    """A separate clean synthetic set (40 rows, small so the demo stays quick on a CPU) for the prompt baseline."""
    return REPO / "knowledge" / "demo" / "support_tickets_test.jsonl"


def demo_answers() -> dict[str, Any]:
    """Answers the demo pre-fills, keyed by the advisor's question ids (agent/questions.py); the advisor asks
    whatever is left. The run is short and CPU-sized: the embedded model, a few dozen LoRA steps."""
    return {
        "task": "classification",
        "goals": ["quality", "consistency"],
        "quality_target": 0.9,
        "test_set": str(demo_test_set()),
        "model": "smollm2-135m-instruct",
        "model_params_b": 0.135,
        "n_examples": demo_rows(),
        # 24 GB puts the 135M demo on LoRA (method.select.*): QLoRA's 4-bit kernels need a CUDA GPU and would
        # crawl on a CPU, and the demo model trains in well under 1 GB either way.
        "gpu_memory_gb": 24,
        "gpus": 1,
        "consistency": "high",
        "data": str(demo_dataset()),
        "max_steps": 30,  # on a CPU: 8 sequences a step (hp.batch.cpu), 240 examples seen: enough for the
                          # one-word intents to beat the best prompt with a paired CI above 0
    }


# ------------------------------------------------------------------------------------------------ data
def inspect_data(path: str, *, columns: tuple[str, str] | None = None) -> Any:
    """An ``InspectReport`` (fields; ``to_dict()`` for the old dict shape)."""
    from tools import data

    return data.inspect(path, columns=columns)


def clean_data(path: str, out: str, *, on_progress: ProgressCallback | None = None,
               columns: tuple[str, str] | None = None) -> Any:
    """A ``CleanReport``."""
    from tools import data
    from tools.data.config import CleanConfig

    with job("data", "cleaning " + Path(path).name, on_progress) as relay:
        return data.clean(path, out, config=CleanConfig(columns=columns), on_progress=relay)


def split_data(path: str, out_dir: str, *, on_progress: ProgressCallback | None = None,
               columns: tuple[str, str] | None = None) -> Any:
    """A ``SplitReport``."""
    from tools import data

    with job("data", "splitting " + Path(path).name, on_progress) as relay:
        return data.split(path, out_dir, on_progress=relay, columns=columns)


def spotcheck(path: str, n: int = 100) -> Any:
    """A resumable spot-check session: ``.next()``, ``.verdict(idx, v, reason)``, ``.propose_rule()``."""
    from tools.data.spotcheck import SpotCheck

    return SpotCheck(path, n=n)


def accept_rule(rule: dict[str, Any], spot: Any) -> str:
    """Apply an accepted spot-check rule as `tunewise data spot-check` does: write the data file without the
    rows it matches, beside the input as ``<name>.spotchecked.jsonl`` (the input stays untouched); returns
    that path."""
    out = Path(spot.path).with_name(Path(spot.path).stem + ".spotchecked.jsonl")
    return str(spot.apply_rule(rule, out)["out"])


# ------------------------------------------------------------------------------------------------ prompt baseline
def prompt_eval(data_path: str, *, on_progress: ProgressCallback | None = None,
                limit: int | None = None) -> PromptEvalResult:
    """The prompt baseline on ``data_path`` (its first ``limit`` rows when given)."""
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval

    # variants=True: the plain prompt, few-shot, chain-of-thought... each scored with its CI
    with job("prompt", "prompt baseline on " + Path(data_path).name, on_progress) as relay:
        started = time.monotonic()
        result = run_prompt_eval(PromptEvalConfig(test=data_path, variants=True, limit=limit), on_progress=relay)
        _record_prompt_time(result, time.monotonic() - started)
        return result


def prompt_estimate(data_path: str, *, limit: int | None = None) -> str:
    """What the prompt baseline on ``data_path`` should take at most on this machine, in words ('' when the
    file cannot be read or it is under a minute)."""
    from tools.estimate_time import prompt_eval_estimate

    est = prompt_eval_estimate(data_path, limit=limit)
    if est is None or est.seconds < 60:
        return ""
    return (f"at most about {round(est.seconds / 60)} min for {est.rows:,} rows, less when the answer is clear "
            f"early (estimate: {est.pace.note()})")


def _record_prompt_time(result: Any, seconds: float) -> None:
    from tools.estimate_time import record, row_variants

    doc = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    units = row_variants(doc)
    if units:
        record("prompt_eval", estimate_s=None, actual_s=round(seconds, 1), units=units,
               shape=doc.get("output_kind"), run_id=doc.get("run_id"))


# ------------------------------------------------------------------------------------------------ training
# The child process and its registry live in agent.jobs, shared with the advisor's pipeline.
TrainingProcess = jobs.TrainingProcess


def start_training(data: str, *, model: str | None = None, resume: str | None = None,
                   max_steps: int | None = None) -> TrainingProcess:
    """A LoRA run on ``data`` (a split folder with train.jsonl/val.jsonl, or one training file), or resume run
    ``resume`` from its last checkpoint."""
    args: list[str] = []
    if data:
        p = Path(data).expanduser()
        if p.is_dir():
            args += ["--train", str(p / "train.jsonl")]
            if (p / "val.jsonl").exists():
                args += ["--val", str(p / "val.jsonl")]
        else:
            args += ["--train", str(p)]
    if model:
        args += ["--model", model]
    if resume:
        args += ["--resume", resume]
        run_id = resume
    else:  # the id is chosen here, so the quit dialog and the view name the run from its first second
        from tools.runlog import new_id

        run_id = new_id("train-")
        args += ["--run-id", run_id]
    if max_steps:
        args += ["--max-steps", str(max_steps)]
    return TrainingProcess(args, run_id=run_id, source="training")


def train_preview(data: str, *, model: str | None = None) -> Any:
    """``tools.train.preview.TrainPreview`` of the training file in ``data`` (a split folder or a file)."""
    from tools.train import TrainConfig
    from tools.train.preview import preview_training

    p = Path(data).expanduser()
    train = p / "train.jsonl" if p.is_dir() else p
    config = TrainConfig(train=str(train))
    if model:
        config.model = model
    return preview_training(config)


def diagnose(run_id: str) -> dict[str, Any]:
    from tools.train.diagnose import diagnose as _diagnose

    return _diagnose(run_id).to_dict()


# ------------------------------------------------------------------------------------------------ runs
def list_runs(text_filter: str = "") -> list[dict[str, Any]]:
    """Runs from the DuckDB run log, newest first; ``text_filter`` matches id, kind, status, method, model."""
    from tools.runlog import RunLog

    rows = RunLog().query(
        """SELECT run_id, kind, status, method, model, started_at, best_val_loss, steps, train_seconds,
                  pid, host, heartbeat_at
           FROM runs ORDER BY started_at DESC""")
    for r in rows:  # a killed run reads as crashed here too, as in `tunewise runs list`
        r["status"] = RunLog.live_status(r)
        for k in ("pid", "host", "heartbeat_at"):
            r.pop(k, None)
    if text_filter:
        f = text_filter.lower()
        rows = [r for r in rows if any(f in str(r.get(k) or "").lower()
                                       for k in ("run_id", "kind", "status", "method", "model"))]
    return rows


def resumable_training() -> dict[str, Any] | None:
    """The newest training run that stopped before its end (interrupted, or crashed: its process is gone) and
    has a complete checkpoint to resume from; None when there is none."""
    from tools import paths
    from tools.runlog import RunLog
    from tools.train.checkpoints import newest_complete

    rows = RunLog().query(
        """SELECT run_id, status, steps, model, config, started_at, pid, host, heartbeat_at FROM runs
           WHERE kind = 'train' ORDER BY started_at DESC LIMIT 20""")
    for r in rows:
        if RunLog.live_status(r) not in ("interrupted", "crashed"):
            continue
        ckpt = newest_complete(paths.run_dir(r["run_id"]) / "checkpoints")
        if ckpt is not None:
            total = _decoded(r.get("config")).get("max_steps")
            return {"run_id": r["run_id"], "status": RunLog.live_status(r), "checkpoint": str(ckpt),
                    "step": _checkpoint_step(ckpt), "total": total, "model": r.get("model")}
    return None


def _checkpoint_step(ckpt: Path) -> int | None:
    tail = ckpt.name.rsplit("-", 1)[-1]  # checkpoint-40
    return int(tail) if tail.isdigit() else None


def past_evaluations(limit: int = 20) -> list[dict[str, Any]]:
    """The run log's evaluations, newest first (test scores, forgetting checks, prompt baselines)."""
    from tools.runlog import RunLog

    return RunLog().query("SELECT run_id, kind, metric, value, ci_low, ci_high, n, created_at FROM evaluations "
                          "ORDER BY created_at DESC LIMIT ?", [limit])


def advisor_sessions(limit: int = 5) -> list[dict[str, Any]]:
    """Earlier advisor sessions, newest first: id, status (asking or done), when, and how many answers."""
    from tools.runlog import RunLog

    rows = RunLog().query("SELECT session_id, status, updated_at, answers FROM sessions "
                          "ORDER BY updated_at DESC LIMIT ?", [limit])
    out = []
    for r in rows:
        answers = _decoded(r.get("answers"))
        out.append({"session_id": r["session_id"], "status": r.get("status"), "updated_at": r.get("updated_at"),
                    "answers": len(answers), "data": answers.get("data") or ""})
    return out


def _decoded(value: Any) -> dict[str, Any]:
    """A JSON object column of the run log as a dict ({} when empty or unreadable)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def run_detail(run_id: str) -> dict[str, Any]:
    """One run's row (JSON fields decoded), its metric curves and its evaluations."""
    from tools.runlog import RunLog

    log = RunLog()
    run = log.find_run(run_id)
    curves: dict[str, list[tuple[int, float]]] = {}
    for m in log.metrics(run["run_id"]):
        if m["name"] == "loss":
            curves.setdefault(m["split"], []).append((int(m["step"]), float(m["value"])))
    evals = log.query("SELECT kind, metric, value, ci_low, ci_high, n FROM evaluations WHERE run_id = ? "
                      "ORDER BY created_at", [run["run_id"]])
    return {"run": run, "curves": curves, "evaluations": evals}


def compare_runs(a: str, b: str) -> dict[str, Any]:
    """Two runs side by side: the config keys that differ, both loss curves, the headline metrics."""
    da, db = run_detail(a), run_detail(b)
    ca, cb = da["run"].get("config") or {}, db["run"].get("config") or {}
    diff = [{"key": k, "a": ca.get(k), "b": cb.get(k)} for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)]
    keys = ("status", "method", "model", "best_val_loss", "steps", "train_seconds", "peak_memory_mb")
    metrics = [{"key": k, "a": da["run"].get(k), "b": db["run"].get(k)} for k in keys]
    return {"a": da, "b": db, "config_diff": diff, "metrics": metrics}


# ------------------------------------------------------------------------------------------------ evaluation
def evaluate_test(run_id: str, test: str, *, on_progress: ProgressCallback | None = None) -> EvalResult:
    from tools.evaluate import evaluate_test as _evaluate_test

    with job("evaluation", f"evaluating {run_id}", on_progress) as relay:
        return _evaluate_test(run_id, test, on_progress=relay)


def compare_outputs(run_id: str, test: str, n: int = 30) -> CompareResult:
    from tools.evaluate import compare

    return compare(run_id, test, n=n)


def forgetting(run_id: str, *, on_progress: ProgressCallback | None = None) -> ForgettingResult:
    from tools.evaluate import forgetting as _forgetting

    with job("evaluation", f"forgetting check of {run_id}", on_progress) as relay:
        return _forgetting(run_id, on_progress=relay)


def ab_test(a: str, b: str, test: str) -> ABResult:
    from tools.evaluate import ab

    return ab(a, b, test)


def export_report(run_id: str, out: str) -> str:
    from tools.report import build_report

    return str(build_report(run_id, out))


# ------------------------------------------------------------------------------------------------ long work
_tokens: dict[str, jobs.CancelToken] = {}
_active: dict[str, str] = {}  # view -> what runs there now
_jobs_lock = threading.Lock()


@contextmanager
def job(view: str, what: str, on_progress: ProgressCallback | None) -> Iterator[ProgressCallback]:
    """Run a tool as the cancellable job of ``view``: yields the ``on_progress`` to hand the tool, which raises
    ``jobs.JobCancelled`` at the next event once ``cancel(view)`` was called (the tool records ``interrupted``)."""
    with _jobs_lock:
        token = _tokens.setdefault(view, jobs.CancelToken(what))
        token.reset()
        token.name = what
        _active[view] = what
    try:
        yield token.wrap(on_progress)
    finally:
        with _jobs_lock:
            _active.pop(view, None)


def cancel(view: str) -> bool:
    """Stop the job running in ``view`` (the Training view's and the advisor's training: a checkpoint first).
    True when there was one."""
    found = False
    if view == "training":  # the view shows the advisor's training too
        found = bool(jobs.cancel_training())
    if view == "advisor":
        jobs.cancel_training("advisor")
        jobs.advisor_token.cancel()
        found = True
    with _jobs_lock:
        if view in _active:
            _tokens[view].cancel()
            found = True
    return found


def advisor_step_started() -> None:
    """A new advisor step starts: a stop requested for the previous one no longer applies."""
    jobs.advisor_token.reset()


def running_training(source: str | None = None) -> list[Any]:
    """Live training child processes (``agent.jobs.TrainingProcess``), optionally from one source."""
    return [p for p in jobs.running() if source is None or p.source == source]


def running_work(advisor_busy: bool = False) -> list[str]:
    """What is running now, one line each: training children (with run id and step) and tools in threads."""
    lines = [p.describe() + (" (the advisor's pipeline)" if p.source == "advisor" else "") for p in jobs.running()]
    with _jobs_lock:
        lines += list(_active.values())
    if advisor_busy and not any("advisor" in line for line in lines):
        lines.append("the advisor's current step (a prompt baseline, cleaning or evaluation)")
    return lines


def stop_all_work() -> list[Any]:
    """Quit, stopping everything: training children checkpoint (SIGINT), tools in threads stop at their next
    progress event. Returns the training processes that were asked to stop."""
    return jobs.stop_all()  # the one stop path (tools.processes): the CLI's Ctrl-C does the same


def keep_training_in_background() -> list[Any]:
    """Quit, leaving training children running (they are their own process group); returns them."""
    procs = jobs.running()
    for p in procs:
        p.detach()
    stop_thread_work()
    return procs


def stop_thread_work() -> None:
    jobs.advisor_token.cancel()
    with _jobs_lock:
        for view in _active:
            _tokens[view].cancel()


def is_cancelled(e: BaseException) -> bool:
    return isinstance(e, jobs.JobCancelled)


# ------------------------------------------------------------------------------------------------ errors
def describe_error(e: BaseException) -> str:
    """A user-facing message: a TunewiseError's what/where/fix; anything else is a bug, so its traceback goes
    to the bug log (tools.errors.log_bug) and the message says where."""
    from tools.errors import TunewiseError, describe_bug

    if isinstance(e, TunewiseError):
        return e.render()
    if isinstance(e, jobs.JobCancelled):
        return "stopped"
    return describe_bug(e)


# ------------------------------------------------------------------------------------------------ grades
def grading_set(run_id: str | None, *, variant: str | None = None) -> Any:
    """The sampled outputs of a run to grade, with the grades already given (``tools.scoring.grades``).

    Without a run id: the newest prompt baseline (the one the advisor measured)."""
    from tools.scoring import grades

    if not run_id:
        from tools.errors import InputError
        from tools.prompt.variants import prompt_baseline_run

        run = prompt_baseline_run()
        if run is None:
            raise InputError("there is no run to grade yet", where="run id",
                             fix="measure a prompt baseline first, or type a run id in the Evaluation view")
        run_id = str(run["run_id"])
    return grades.grading_set(run_id, variant=variant)


def record_grade(grading: Any, idx: int, grade: str) -> Any:
    """Store one grade (good / bad / skip) in the run log; returns the ``GradedShare`` so far."""
    from tools.scoring import grades

    return grades.record_grade(grading, idx, grade)


def grading_variants(run_id: str) -> list[str]:
    """The outputs of a run that can be graded (a prompt baseline's variants, or tuned / base / prompt)."""
    from tools.scoring import grades

    return grades.variants(run_id)
