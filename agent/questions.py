"""The advisor's question catalogue and the validation that turns a raw answer into a typed value.

Question ids are the contract for scripted use (``tunewise advise --answers FILE``). ``coerce`` never raises
on a bad answer: it returns ``(ok, value, reason)`` so the graph can re-ask with the reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.api import Question

TASKS = [
    "classification", "extraction", "formatting", "tone", "multi_step_reasoning", "domain_language",
    "complex_behavior", "new_capability", "other",
]
GOALS = [
    "quality", "consistency", "latency", "new_capability", "tone_style", "output_format",
    "recent_information", "quick_experiment",
]
CONSISTENCY = ["variable", "high", "perfect"]
USES = ["dedicated", "assistant", "not_sure"]
NO_GPU = {"none", "no", "no gpu", "nogpu", "cpu", "cpu only", "n/a", "0 gb"}
EMBEDDED_MODEL = "smollm2-135m-instruct"  # tools.models.EMBEDDED_NAME, repeated to keep imports light
EMBEDDED_PARAMS_B = 0.135

_Q = [  # the user's files first: what they answer (rows, task kind, labels) is read, not asked
    Question("data", "path", "Your data file (JSONL chat, or CSV/JSONL with input/output columns; empty if you "
             "have none yet)", default="", required=False,
             help="data.derived: read first. Its row count, task profile and, without a test set, a held-out test "
                  "split come from the file; the file itself is never modified."),
    Question("test_set", "path", "A labelled test set to measure every step on (JSONL/CSV; empty: a held-out "
             "split of your data, or a score you report)", default="", required=False,
             help="dt.step1.evaluate: a measured baseline beats a guess. Yours, when given, is the one the prompt "
                  "baseline and the tuned model are scored on."),
    Question("task", "choice", "What kind of task is it?", choices=TASKS,
             help="Criterion 1 (task.*): simple tasks are usually solved by prompting, complex ones may need training."),
    Question("goals", "multi_choice", "What do you want to improve? (comma-separated)", choices=GOALS,
             default=["quality"], required=False,
             help="Some goals justify fine-tuning (ftw.*), others have a better tool (dft.*)."),
    Question("quality_target", "fraction", "Which quality score counts as good enough? (e.g. 0.9 or 90%)",
             default=0.90, minimum=0.0, maximum=1.0, required=False,
             help="dt.quality_bar: prompts that reach this bar stop the process."),
    Question("model", "text", "Which model? (smollm2-135m-instruct, a local folder, or openai:MODEL)",
             default=EMBEDDED_MODEL, required=False, help="The model the prompts are measured on and trained from."),
    Question("prompt_quality", "fraction",
             "Quality of a system prompt with 3-5 examples on your test set (0..1 or a percentage)",
             minimum=0.0, maximum=1.0, help="dt.step1: score the plain prompt before anything else."),
    Question("optimized_prompt_quality", "fraction",
             "Quality after optimising the prompt (5-10 examples, step-by-step, format spec, temperature 0)",
             minimum=0.0, maximum=1.0, help="dt.step2: optimise the prompt before considering training."),
    Question("grades", "path", "Grades of the prompt's outputs (a JSONL/CSV file of row or input, and good / bad / "
             "skip; empty to go on without)", default="", required=False,
             help="dt.bar.needs_share: chrF and ROUGE-L are similarities, so the quality bar needs people's grades. "
                  "Grade the outputs now with ctrl+g in the app (or `tunewise eval grade --run RUN`) and leave this "
                  "empty: the advisor reads them from the run log. Empty with no grades: it says what it would take."),
    Question("n_examples", "number", "How many good labelled examples do you have?", minimum=0,
             help="Criterion 2 (size.band.*): under 100 prompts only; 1000+ makes training viable."),
    Question("latency_budget_ms", "number", "Latency budget per request in ms (empty if none)",
             default=None, minimum=0, required=False, help="Criterion 4 (perf.latency.*)."),
    Question("consistency", "choice", "How consistent must the outputs be?", choices=CONSISTENCY,
             default="variable", required=False, help="Criterion 4 (perf.consistency.*)."),
    Question("prompt_dev_hours", "number", "Hours spent developing prompts (empty to skip the ROI)",
             default=None, minimum=0, required=False, help="Criterion 3 (roi.formula)."),
    Question("hourly_rate", "number", "Cost of an engineer hour (USD)", default=None, minimum=0, required=False,
             help="Criterion 3 (roi.formula)."),
    Question("data_prep_hours", "number", "Hours to collect and clean training data", default=None, minimum=0,
             required=False, help="Criterion 3 (roi.formula)."),
    Question("training_cost", "number", "Compute spend for training and evaluation (USD)", default=None,
             minimum=0, required=False, help="Criterion 3 (roi.formula)."),
    Question("gpu_memory_gb", "number", "GPU memory of the machine you will train on, per GPU (GB; 0 or 'none' "
             "for no GPU)", minimum=0,
             help="method.select.*: QLoRA under 24 GB, LoRA under 80 GB; no GPU: LoRA on the CPU."),
    Question("gpus", "number", "How many GPUs does the training machine have?", default=1, minimum=1,
             required=False, help="method.select.full needs 2 or more GPUs."),
    Question("model_params_b", "number", "Model size in billions of parameters (e.g. 7, or 0.135)", minimum=0.001,
             help="hp.lr.*: the learning rate depends on model size."),
    Question("go_on", "yes_no", "Clean the data, split it, train a short run and evaluate it now?", default=False,
             required=False, help="The pipeline calls the tools and ticks the checklist as it goes."),
    Question("max_steps", "number", "Optimizer steps for the short run", default=20, minimum=1, required=False,
             help="A short run shows whether training moves the metric before paying for a long one."),
    Question("learning_curve", "yes_no", "Also measure a learning curve (the short run on 25/50/100% of the "
             "training split; about three more short runs)?", default=False, required=False,
             help="lc.measured: how quality grows with data on your own task, beside the seed's size band."),
    Question("use", "choice", "The check run lost general answers. What are you building?", choices=USES,
             default="not_sure", required=False,
             help="use.dedicated / use.assistant: a dedicated classifier can afford to forget general chat; an "
                  "assistant cannot."),
]
QUESTIONS: dict[str, Question] = {q.id: q for q in _Q}
# the task kind a data set's outputs show (tools.types.TaskProfile.output_kind); other kinds are asked
TASK_BY_OUTPUT_KIND = {"label": "classification"}


def task_from_profile(profile: dict[str, Any] | None) -> str | None:
    """The ``task`` answer a data profile suggests (a closed label set is a classification), or None."""
    return TASK_BY_OUTPUT_KIND.get(str((profile or {}).get("output_kind")))
ALIASES = {"data_path": "data", "train_data": "data", "base_model": "model"}  # other spellings scripts use
INTEGER_IDS = {"n_examples", "gpus", "max_steps"}


def question(qid: str, *, default: Any = ..., error: str | None = None) -> Question:
    """A fresh copy of question ``qid`` (optionally with another default and an error to show)."""
    q = replace(QUESTIONS[qid], choices=list(QUESTIONS[qid].choices))
    if default is not ...:
        q.default = default
    q.error = error
    return q


_NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9}


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a number, got yes/no")
    if isinstance(raw, (int, float)):
        return float(raw)
    s = str(raw).strip().lower().replace(",", "").replace("_", "")
    if s in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[s])
    m = re.fullmatch(r"([-+]?\d*\.?\d+(?:e[-+]?\d+)?)\s*([kmb])?\s*(gb|g|ms|b|h|hours?|usd|\$)?", s.lstrip("$"))
    if not m:
        raise ValueError(f"'{raw}' is not a number")
    value = float(m.group(1))
    if m.group(2):
        value *= _SCALE[m.group(2)]
    return value


def _fraction(raw: Any) -> float:
    s = str(raw).strip()
    if s.endswith("%"):
        return _number(s[:-1]) / 100
    value = _number(raw)
    # "85" for a fraction is a percentage; 1 stays 1.0 (a perfect score)
    return value / 100 if 1 < value <= 100 else value


def _is_empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def coerce(q: Question, raw: Any) -> tuple[bool, Any, str | None]:
    """Validate ``raw`` for question ``q``: ``(True, value, None)`` or ``(False, None, reason)``."""
    if _is_empty(raw):
        if q.default is not None or not q.required:
            return True, q.default, None
        return False, None, "an answer is required"
    try:
        value = _coerce(q, raw)
    except ValueError as e:
        return False, None, str(e)
    return True, value, None


def _coerce(q: Question, raw: Any) -> Any:
    if q.id == "gpu_memory_gb" and str(raw).strip().lower() in NO_GPU:
        return 0.0  # "No GPU" is a valid answer
    if q.type in ("number", "fraction"):
        value = _fraction(raw) if q.type == "fraction" else _number(raw)
        if math.isnan(value) or math.isinf(value):
            raise ValueError("expected a finite number")
        if q.minimum is not None and value < q.minimum:
            raise ValueError(f"must be at least {q.minimum:g}, got {value:g}")
        if q.maximum is not None and value > q.maximum:
            hint = " (write 85% or 0.85)" if q.type == "fraction" else ""
            raise ValueError(f"must be at most {q.maximum:g}, got {value:g}{hint}")
        if q.id in INTEGER_IDS:
            if value != int(value):
                raise ValueError(f"must be a whole number, got {value:g}")
            return int(value)
        return value
    if q.type == "choice":
        s = str(raw).strip().lower().replace(" ", "_").replace("-", "_")
        if s in q.choices:
            return s
        if s.isdigit() and 1 <= int(s) <= len(q.choices):  # the number shown next to a choice
            return q.choices[int(s) - 1]
        raise ValueError(f"'{raw}' is not one of: {', '.join(q.choices)}")
    if q.type == "multi_choice":
        items = raw if isinstance(raw, (list, tuple, set)) else re.split(r"[,;\s]+", str(raw).strip())
        out: list[str] = []
        for item in items:
            s = str(item).strip().lower().replace("-", "_")
            if not s:
                continue
            if s.isdigit() and 1 <= int(s) <= len(q.choices):
                s = q.choices[int(s) - 1]
            if s not in q.choices:
                raise ValueError(f"'{item}' is not one of: {', '.join(q.choices)}")
            if s not in out:
                out.append(s)
        if not out and q.required:
            raise ValueError("choose at least one")
        return out
    if q.type == "yes_no":
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s in {"y", "yes", "true", "1", "ok", "go"}:
            return True
        if s in {"n", "no", "false", "0", "stop"}:
            return False
        raise ValueError(f"'{raw}' is not yes or no")
    if q.type == "path":
        p = Path(str(raw).strip()).expanduser()
        if not p.exists():
            raise ValueError(f"{p} does not exist")
        return str(p.resolve())
    return str(raw).strip()


def validate_answers(answers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Coerce every known answer; returns ``(values, errors)``. Unknown ids are kept verbatim."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for qid, raw in answers.items():
        qid = qid if qid in QUESTIONS or qid not in ALIASES or ALIASES[qid] in answers else ALIASES[qid]
        if qid not in QUESTIONS:
            values[qid] = raw
            continue
        if raw is None:
            values[qid] = None
            continue
        ok, value, reason = coerce(QUESTIONS[qid], raw)
        if ok:
            values[qid] = value
        else:
            errors[qid] = reason or "invalid"
    return values, errors
