"""The prompt baseline: measure a prompt (Step 1) and its cheap improvements (Step 2) before any fine-tuning.

A prompt is chat messages: an optional system message, few-shot (user, assistant) pairs, then the test
input. Every example is generated greedily (temperature 0), scored with the shared metrics in
``tools.scoring.metrics`` (so a fine-tuned model is later judged by the same code), and reported with a 95%
interval, the number of examples, latency and token counts.

``variants=True`` runs Step 2: 5 and 10 shots, a chain-of-thought instruction, an explicit output-format
specification (the label set or the JSON schema), and alternative system messages. Each is scored the same
way; the best one is named and checked against the quality bar (``dt.quality_bar``, 0.90 by default).

Backends: a local Hugging Face causal LM (the embedded SmolLM2 by default) through ``tools.generation``;
other kinds (``openai:MODEL``) are registered from the agent layer with ``register_backend``, because
tools never import langchain.
"""

from __future__ import annotations

import random
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tools.errors import InputError
from tools.generation import Generation
from tools.prompt import decide
from tools.prompt.variants import Variant, build_messages
from tools.scoring import metrics
from tools.types import Example, ProgressCallback, ProgressEvent, emit

Chat = list[dict[str, str]]

COT_INSTRUCTION = ("Think step by step in a few short sentences, then give the final answer on the last line "
                   "as 'Answer: <answer>'.")
ALT_SYSTEMS = (
    "You are a meticulous expert annotator. Read the input carefully and reply with the correct output only, "
    "in exactly the same form as the examples.",
    "You are a precise assistant that follows the output format exactly. Never explain; reply with the answer "
    "and nothing else.",
)
DEFAULT_SYSTEM = "Reply with the expected output only, with no explanation."
REASONING_INSTRUCTION = ("Solve the problem. Work through it step by step, as the examples do, then give the final "
                         "answer on the last line as '{marker}'.")


@dataclass
class PromptEvalConfig:
    """What to measure. Stored verbatim in the run log."""

    test: str
    """Test file (any format ``tools.data`` reads): inputs and the expected outputs."""
    system: str | None = None
    """System message; default: the test file's own system message, else a short generic one."""
    shots: int = 0
    """Few-shot examples put before each input, drawn from ``shots_from``."""
    shots_from: str | None = None
    """File the few-shot examples come from (never the test file: that would leak the answers)."""
    variants: bool = False
    """Also run Step 2: 5 and 10 shots, chain of thought, output-format specification, other system messages."""
    model: str | None = None
    """Model spec: the embedded SmolLM2 (default), a local HF folder, ``run:ID`` or ``openai:MODEL``."""
    metric: str | None = None
    """exact_match, label_accuracy, macro_f1, contains, regex, json_valid, json_schema, json_equal, chrf, rouge_l,
    token_f1, python_syntax, pass_at_1 or module:function (run in a sandboxed child); default: decided once from
    the test set's task profile."""
    schema: str | None = None
    """JSON schema file for ``json_schema`` (and for the output-format variant)."""
    limit: int | None = None
    """Use only the first N test rows."""
    bar: float | None = None
    """Quality bar; default from the knowledge base (``dt.quality_bar``)."""
    max_new_tokens: int | None = None
    """Longest reply generated (chain of thought gets ``cot_max_new_tokens``); default: from the references'
    token lengths (1.5 x their 95th percentile + 16, see ``tools.scoring.metrics.max_new_tokens_for``)."""
    cot_max_new_tokens: int = 192
    batch_size: int = 128
    """Prompts per batch on the fast path."""
    sequential: bool = False
    """Use the one-at-a-time reference path (true single-request latency, much slower)."""
    alt_systems: list[str] = field(default_factory=list)
    """Extra system messages to try under ``variants`` (two generic ones are always tried)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint (``openai:`` models); default ``$OPENAI_BASE_URL``."""
    seed: int = 0
    """Seed of the few-shot selection."""
    choice: bool = True
    """For label tasks on a local model, also score the prompt in choice mode: each allowed label by its
    log-likelihood after the prompt, the best one is the answer (never an invented label)."""
    task_kind: str | None = None
    """The task kind the user gave (``--task-kind``, the advisor's task answer): label, structured, code,
    short_answer, reasoning or text. It outranks the kind read from the rows; without it a test file takes the
    kind of its training data (``shots_from``) when that is given."""
    full: bool = False
    """Score every prompt on every row. Default: rows in a seeded random order, in growing batches, stopping
    once the bar is decisively above or below the interval (``eval.sequential.stop``) and racing the Step 2
    variants (``eval.race.halving``)."""


class Backend(Protocol):
    """What prompt evaluation needs from a model."""

    name: str
    mode: str  # how latency was measured: "batched", "sequential" or "endpoint"

    def generate(self, prompts: Sequence[Chat], *, max_new_tokens: int,
                 on_progress: ProgressCallback | None = None) -> list[Generation]: ...

    def count_tokens(self, messages: Chat) -> int | None: ...


BackendFactory = Callable[[PromptEvalConfig], Backend]
_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(kind: str, factory: BackendFactory) -> None:
    """Make a model kind (e.g. ``openai``) usable by prompt evaluation."""
    _BACKENDS[kind] = factory


class LocalBackend:
    """A local causal LM through ``tools.generation`` (fast batched path unless ``sequential``)."""

    def __init__(self, config: PromptEvalConfig) -> None:
        from tools import models

        self.spec = models.resolve(config.model)
        self.model, self.tokenizer = models.load_cached(self.spec)
        self.name = self.spec.label
        self.threads = None
        if next(self.model.parameters()).device.type == "cpu":  # the free cores, as training picks them
            from tools.train import threads

            self.threads = threads.choose_threads()
            threads.apply(self.threads)
        self.sequential = config.sequential
        self.batch_size = config.batch_size
        self.mode = "sequential" if config.sequential else "batched"

    def generate(self, prompts: Sequence[Chat], *, max_new_tokens: int,
                 on_progress: ProgressCallback | None = None) -> list[Generation]:
        from tools import generation

        if self.sequential:
            return generation.generate_sequential(self.model, self.tokenizer, prompts,
                                                  max_new_tokens=max_new_tokens, on_progress=on_progress)
        return generation.generate(self.model, self.tokenizer, prompts, max_new_tokens=max_new_tokens,
                                   batch_size=self.batch_size, on_progress=on_progress)

    def count_tokens(self, messages: Chat) -> int | None:
        from tools.generation import chat_ids

        return len(chat_ids(self.tokenizer, messages))

    def choose(self, prompts: Sequence[Chat], labels: Sequence[str], *,
               on_progress: ProgressCallback | None = None) -> list[Generation]:
        """Choice mode: the label of highest log-likelihood after each prompt."""
        from tools import generation

        return generation.choose(self.model, self.tokenizer, prompts, labels, on_progress=on_progress)


def make_backend(config: PromptEvalConfig) -> Backend:
    from tools import models

    spec = models.resolve(config.model)
    if spec.kind in _BACKENDS:
        return _BACKENDS[spec.kind](config)
    if spec.kind == "openai":
        raise InputError("the openai: backend is not loaded", where="--model",
                         fix="run through the `tunewise prompt-eval` command or call "
                             "agent.prompt_backends.register() first")
    return LocalBackend(config)


# ---------------------------------------------------------------------------------------------- prompts

def select_shots(pool: Sequence[Example], k: int, *, labels: bool, seed: int = 0,
                 exclude: set[str] | None = None) -> list[Example]:
    """``k`` examples from the pool, seeded; for label tasks, one per label in turn so shots cover the labels."""
    exclude = exclude or set()
    cands = [e for e in pool if e.input_text.strip() and e.output_text.strip()
             and metrics.normalize(e.input_text) not in exclude]
    rng = random.Random(seed)
    rng.shuffle(cands)
    if not labels:
        return cands[:k]
    by_label: dict[str, list[Example]] = {}
    for e in cands:
        by_label.setdefault(metrics.normalize_label(e.output_text), []).append(e)
    out: list[Example] = []
    queues = list(by_label.values())
    while len(out) < k and any(queues):
        for q in queues:
            if q and len(out) < k:
                out.append(q.pop(0))
    return out


def final_answer(text: str) -> str:
    """The answer of a chain-of-thought reply: what follows the last 'Answer:', else its last line."""
    hits = list(re.finditer(r"answer\s*:\s*(.*)", text or "", flags=re.IGNORECASE))
    if hits:
        return hits[-1].group(1).strip()
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def task_profile(test: Sequence[Example], pool: Sequence[Example], task_kind: str | None) -> Any:
    """The profile prompt evaluation scores by: the user's kind first, else the training data's (the shots
    pool) for the test file, else the test rows' own (``tools.scoring.rows.profile_for``). Rows that say they
    are labels (``meta["label"]``) make it a label task even on a few test rows."""
    from dataclasses import replace

    from tools.scoring.rows import profile_for

    profile = profile_for(test, task_kind=task_kind, train=list(pool) or None)
    if task_kind is None and profile.output_kind not in ("label", "structured", "code") and \
            all("label" in e.meta for e in test):
        profile = replace(profile, output_kind="label", labels=(), detected_kind=profile.output_kind,
                          reason="every row comes from a label column")
    return profile


def profile_note(profile: Any) -> dict[str, Any]:
    """The kind used and why, for the result and the advisor: where it came from, and what the rows alone say
    when that differs (shown before anything is trusted)."""
    note = {"output_kind": profile.output_kind, "source": profile.source, "reason": profile.reason,
            "detected_kind": profile.detected_kind}
    if profile.answer_marker:
        note.update(answer_marker=profile.answer_marker, final_answer_share=profile.final_answer_share)
    return note


def reasoning_shots() -> int:
    """Worked examples in a reasoning task's baseline prompt: the seed's 'three to five demonstrations'
    (rule ``dt.step1.few_shot``, its lower end)."""
    import knowledge.loader

    return int(knowledge.loader.rule("dt.step1.few_shot").raw["params"]["min_shots"])


def baseline_system(own: str | None, profile: Any, labels: Sequence[str] | None) -> str | None:
    """The baseline's system message when the user gave none: for a reasoning task, work step by step and end
    with the references' own final-answer marker (chain of thought is this kind's baseline, not a variant);
    for a label task, the label list (a model cannot guess 77 intent names)."""
    from tools.data.answers import MARKER_EXAMPLES

    if labels:
        return _join(own or DEFAULT_SYSTEM, format_spec(labels, None))
    marker = MARKER_EXAMPLES.get(profile.answer_marker or "answer", MARKER_EXAMPLES["answer"])
    return _join(own, REASONING_INSTRUCTION.format(marker=marker))


def format_spec(labels: Sequence[str] | None, schema: dict[str, Any] | None) -> str:
    """An explicit output-format instruction built from the label set or the JSON schema."""
    import json

    if schema is not None:
        return ("Reply with a single JSON value and nothing else (no prose, no code fences). It must validate "
                "against this JSON schema: " + json.dumps(schema, ensure_ascii=False))
    if labels:
        return ("Reply with exactly one of these labels, spelled exactly as written, and nothing else: "
                + ", ".join(labels) + ".")
    return "Reply with the answer only: no explanation, no preamble, no quotes."


def _join(*parts: str | None) -> str | None:
    text = "\n\n".join(p for p in parts if p)
    return text or None


# ---------------------------------------------------------------------------------------------- running

def _load(path: str, what: str) -> list[Example]:
    from tools.data.formats import load_examples

    if not Path(path).exists():
        raise InputError(f"{what} file not found", where=path, fix="check the path")
    exs = load_examples(path)
    exs = [e for e in exs if e.output_text.strip() or what != "test"]
    if not exs:
        raise InputError(f"the {what} file has no examples with an expected output", where=path)
    return exs


def _stats(xs: Sequence[float]) -> dict[str, float]:
    if not xs:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    return {"mean": round(statistics.fmean(xs), 2), "p50": round(metrics.percentile(xs, 50), 2),
            "p95": round(metrics.percentile(xs, 95), 2), "max": round(max(xs), 2)}


@dataclass
class PromptEvalResult:
    """``run_prompt_eval``'s result; ``to_dict()`` is the ``--json`` document and the run's summary (its keys
    are a contract). ``choice`` holds the choice-mode score of the plain prompt for label tasks (both modes
    are reported where both apply); ``share`` says whether ``quality`` is a share of acceptable answers."""

    quality: float
    ci95: list[float]
    metric: str
    share: bool
    n: int
    latency_ms: dict[str, Any]
    prompt_tokens: dict[str, float]
    output_tokens: dict[str, float]
    savings: dict[str, Any]
    variants: list[dict[str, Any]]
    best: str
    best_quality: float
    best_ci95: list[float]
    bar: float
    reaches_bar: bool
    baseline_reaches_bar: bool
    rule: str
    model: str
    labels: int | None
    run_id: str
    max_new_tokens: int
    output_kind: str
    choice: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        if d["choice"] is None:
            d.pop("choice")
        return d


def run_prompt_eval(config: PromptEvalConfig, *, on_progress: ProgressCallback | None = None,
                    backend: Backend | None = None) -> PromptEvalResult:
    """Measure the prompt (and, with ``variants``, its Step 2 improvements); log everything; return the summary.

    The metric and the generation length are decided once from the test set's task profile (free text gets
    chrF with ROUGE-L and token F1 beside it, code with tests gets pass@1 from executed tests, never exact
    match by default). Returns ``quality``, ``ci95``, ``metric``, ``n``, ``latency_ms`` (p50/p95),
    ``prompt_tokens``, ``output_tokens``, ``savings``, ``variants``, ``best``, ``reaches_bar``, ``bar``,
    ``run_id``, and for label tasks ``choice`` (the same prompt in choice mode).
    """
    import json

    from tools.fileio import sha256_file
    from tools.runlog import RunLog
    from tools.scoring.rows import decide_scoring, load_test

    if config.shots < 0 or (config.limit is not None and config.limit <= 0):
        raise InputError("shots must be >= 0 and limit > 0", where="--shots/--limit")
    if config.shots and not config.shots_from:
        raise InputError(f"--shots {config.shots} needs a file to draw the examples from", where="--shots",
                         fix="add --shots-from TRAIN_FILE (never the test file)")
    if not Path(config.test).exists():
        raise InputError("test file not found", where=config.test, fix="check the path")
    test = load_test(config.test)
    if config.limit:
        test = test[: config.limit]
    pool = _load(config.shots_from, "shots") if config.shots_from else []
    schema = None
    if config.schema:
        try:
            schema = json.loads(Path(config.schema).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the JSON schema: {e}", where=config.schema) from e

    profile = task_profile(test, pool, config.task_kind)
    metric = config.metric or ("json_schema" if schema is not None else None)
    scoring = decide_scoring(test, metric=metric, max_new_tokens=config.max_new_tokens, profile=profile)
    metric = scoring.metric
    if metric not in metrics.METRICS:
        metrics.load_user_metric(metric)  # fail early with a clear message (checked in a sandboxed child)
    labels = (sorted({e.output_text.strip() for e in [*test, *pool]})
              if metric in ("label_accuracy", "macro_f1") else None)
    bar = config.bar if config.bar is not None else default_bar()
    max_new = scoring.max_new_tokens

    backend = backend or make_backend(config)
    test_inputs = {metrics.normalize(e.input_text) for e in test}
    max_k = max(config.shots, 10 if config.variants else 0)
    shot_pool = select_shots(pool, max_k, labels=labels is not None, seed=config.seed,
                             exclude=test_inputs) if pool else []
    shots = [(e.input_text, e.output_text) for e in shot_pool]
    base_system = config.system if config.system is not None else (test[0].system_text or DEFAULT_SYSTEM)
    reasoning = metric == "final_answer_accuracy"
    first_system = (baseline_system(test[0].system_text, profile, labels)
                    if config.system is None and (reasoning or labels) else base_system)
    base_shots = shots[: config.shots or (reasoning_shots() if reasoning else 0)]

    def variant(name: str, description: str, system: str | None, k_shots: list[tuple[str, str]], max_tokens: int,
                cot: bool = False) -> Variant:
        return Variant(name, "prompt", None, system, k_shots, description=description, max_new_tokens=max_tokens,
                       chain_of_thought=cot)

    todo = [variant("baseline", f"the prompt as given ({len(base_shots)} shots)"
                    + (", worked steps then the final answer" if reasoning else ""), first_system, base_shots,
                    max_new, cot=reasoning)]
    if config.variants:
        for k in (5, 10):
            if k != config.shots and len(shots) >= k:
                todo.append(variant(f"shots_{k}", f"{k} few-shot examples", first_system, shots[:k], max_new))
        if not reasoning:  # for a reasoning task chain of thought is the baseline itself
            todo.append(variant("chain_of_thought", "think step by step, then 'Answer: ...'",
                                _join(base_system, COT_INSTRUCTION), shots[: config.shots],
                                max(config.cot_max_new_tokens, max_new), cot=True))
        todo.append(variant("format_spec", "explicit output format (" + (
            "JSON schema" if schema is not None else "label set" if labels else "answer only") + ")",
            _join(base_system, format_spec(labels, schema)), shots[: config.shots], max_new))
        for i, alt in enumerate([*ALT_SYSTEMS, *config.alt_systems], 1):
            spec = format_spec(labels, schema) if labels or schema is not None else None
            todo.append(variant(f"system_alt_{i}", f"system message: {alt[:60]}", _join(alt, spec),
                                shots[: config.shots], max_new))

    log = RunLog()
    run_id = log.start_run("prompt_eval", config={**asdict(config), "max_new_tokens": max_new, "metric": metric},
                           model=backend.name,
                           data_hashes={"test": sha256_file(config.test),
                                        **({"shots_from": sha256_file(config.shots_from)}
                                           if config.shots_from else {})})
    try:
        test_sha = sha256_file(config.test)
        arms, step1, raced = _measure(todo, test, backend, scoring, labels, schema, bar, config, on_progress)
        results = []
        for arm in arms:
            res = _arm_result(arm, test, backend.mode, scoring, labels, schema)
            if arm.dropped_at is not None:
                res["dropped_at"] = arm.dropped_at
            res["eval_id"] = _log_variant(log, run_id, arm.variant, res, [test[i] for i in arm.sorted_rows()[0]],
                                          test_sha)
            results.append(res)
        base = results[0]
        choice = None
        if labels and config.choice and hasattr(backend, "choose"):
            emit(on_progress, ProgressEvent("prompt_eval", len(todo), len(todo), message="choice mode"))
            # the rows the plain prompt was scored on: choice mode is reported beside it, it decides nothing
            choice_rows = [test[i] for i in arms[0].sorted_rows()[0]]
            choice = _run_choice(todo[0], choice_rows, backend, labels, on_progress)
            choice["eval_id"] = _log_variant(log, run_id, todo[0], choice, choice_rows, test_sha,
                                             kind="prompt_eval_choice")
            choice = _public(choice)
        if raced is not None and len(step1.looks) > 1:
            best = next(r for r in results if r["name"] == raced.winner)
        else:  # every prompt on every row: the best by quality, then the fewest prompt tokens
            best = max(results, key=lambda r: (r["quality"], -r["prompt_tokens"]["mean"]))
        ft_tokens = [backend.count_tokens(build_messages(None, [], e)) for e in test]
        extra = {k: base[k] for k in base if k not in _VARIANT_KEYS and not k.startswith("_")}
        extra["task_profile"] = profile_note(scoring.profile)
        if getattr(backend, "threads", None) is not None:  # torch threads chosen for the free cores
            extra["threads"] = backend.threads.to_dict()  # type: ignore[attr-defined]
        best_verdict = raced.decision.verdict if raced is not None else step1.verdict
        extra.update(_decision_keys(step1, raced, config, len(test)))
        result = PromptEvalResult(
            quality=base["quality"], ci95=base["ci95"], metric=metric, share=metrics.is_share(metric), n=base["n"],
            latency_ms=base["latency_ms"], prompt_tokens=base["prompt_tokens"], output_tokens=base["output_tokens"],
            savings=_savings(base, ft_tokens), variants=[_public(r) for r in results],
            best=best["name"], best_quality=best["quality"], best_ci95=best["ci95"],
            bar=bar, reaches_bar=_reaches(best_verdict, best["quality"], bar),
            baseline_reaches_bar=_reaches(step1.verdict, base["quality"], bar),
            rule="dt.step2.quality_bar" if config.variants else "dt.step1.quality_bar",
            model=backend.name, labels=len(labels) if labels else None, run_id=run_id, max_new_tokens=max_new,
            output_kind=scoring.profile.output_kind, choice=choice, extra=extra)
        log.update_run(run_id, status="completed", summary=result.to_dict())
        return result
    except BaseException as e:
        log.update_run(run_id, status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                       error=str(e)[:2000])
        raise


_VARIANT_KEYS = ("name", "description", "metric", "quality", "ci95", "n", "shots", "latency_ms", "prompt_tokens",
                 "output_tokens", "system", "few_shot", "eval_id", "share", "mode", "dropped_at")


# ---------------------------------------------------------------------------------------------- deciding early

def _measure(todo: Sequence[Variant], test: Sequence[Example], backend: Backend, scoring: Any,
             labels: Sequence[str] | None, schema: dict[str, Any] | None, bar: float, config: PromptEvalConfig,
             on_progress: ProgressCallback | None) -> tuple[list[decide.Arm], decide.Decision, decide.Race | None]:
    """Step 1 (the plain prompt, scored until the bar is decided) and, with variants, Step 2 (the race).

    Only a share of acceptable answers is compared with the bar; a similarity is scored on every planned look.
    With ``config.full`` there is one look (every row), so every prompt is scored on every row, as before.
    """
    rule = decide.stop_rule()
    order = decide.row_order(len(test), config.seed)
    looks = rule.looks(len(test), full=config.full)
    decide_bar = bar if metrics.is_share(scoring.metric) else None
    scorer = _row_scorer(test, backend, scoring, labels, schema, on_progress)
    arms = [decide.Arm(v) for v in todo]
    stage = {v.name: i for i, v in enumerate(todo)}

    by_name = {a.name: a for a in arms}

    def on_look(name: str, n: int, total: int) -> None:
        # The variant's score so far (plain 95% interval, for the eye; the decision uses its own level), so a
        # live table shows every variant's quality, interval and n as the rows come in.
        arm = by_name[name]
        seen: dict[str, float] = {}
        if arm.items:
            q, (lo, hi) = metrics.mean_ci(arm.items, seed=config.seed)
            seen.update(quality=round(q, 4), ci_low=round(lo, 4), ci_high=round(hi, 4))
        seen.update(n=float(n), of=float(total))
        if arm.items:
            lat = [g.latency_ms for g in arm.gens]
            seen["latency_ms"] = round(metrics.percentile(lat, 50), 1)
            seen["prompt_tokens"] = round(arm.prompt_tokens(), 1)
        emit(on_progress, ProgressEvent("prompt_eval", stage[name], len(todo), metrics=seen,
                                        message=f"{name}: {n}/{total} rows"))

    step1 = decide.measure_sequentially(arms[0], order, looks, decide_bar, rule, scorer, seed=config.seed,
                                        on_look=on_look)
    raced = decide.race(arms, order, looks, decide_bar, rule, scorer, seed=config.seed,
                        on_look=on_look) if len(arms) > 1 else None
    emit(on_progress, ProgressEvent("prompt_eval", len(todo), len(todo), message=(raced or step1).message))
    return arms, step1, raced


def _row_scorer(test: Sequence[Example], backend: Backend, scoring: Any, labels: Sequence[str] | None,
                schema: dict[str, Any] | None, on_progress: ProgressCallback | None) -> decide.RowScorer:
    """Answer and score some rows of the test set under a variant (one batch of a sequential measurement)."""
    from tools.scoring.rows import row_inputs, tests_of

    def score_rows(v: Variant, rows: list[int]) -> tuple[list[Generation], list[str], list[str], list[float]]:
        exs = [test[i] for i in rows]
        gens = backend.generate([build_messages(v.system, v.few_shot, e) for e in exs],
                                max_new_tokens=v.max_new_tokens or scoring.max_new_tokens, on_progress=on_progress)
        raw = [g.text for g in gens]
        # A reasoning task's metric reads the final answer from the whole reply (strict and flexible).
        cot = v.chain_of_thought and scoring.metric != "final_answer_accuracy"
        preds = [final_answer(t) for t in raw] if cot else raw
        items = metrics.per_item_scores(scoring.metric, preds, [e.output_text for e in exs], labels=labels,
                                        schema=schema,
                                        tests=[tests_of(e) for e in exs] if scoring.metric == "pass_at_1" else None,
                                        **row_inputs(exs, scoring.metric))
        return gens, raw, preds, items

    return score_rows


def _arm_result(arm: decide.Arm, test: Sequence[Example], mode: str, scoring: Any, labels: Sequence[str] | None,
                schema: dict[str, Any] | None) -> dict[str, Any]:
    """A measured prompt's summary over the rows it answered (scored with the shared metrics, companions too)."""
    from tools.scoring.rows import tests_of

    rows, gens, raw, preds = arm.sorted_rows()
    exs = [test[i] for i in rows]
    return _scored(arm.variant, exs, gens, raw, preds, scoring.metric, labels, schema,
                   [tests_of(e) for e in exs] if scoring.metric == "pass_at_1" else None, mode, idx=rows)


def _reaches(verdict: str, quality: float, bar: float) -> bool:
    """A decided verdict stands; otherwise (every row scored) the point estimate against the bar, as before."""
    return verdict == "above" if verdict in ("above", "below") else quality >= bar


def _decision_keys(step1: decide.Decision, raced: decide.Race | None, config: PromptEvalConfig,
                   n_total: int) -> dict[str, Any]:
    """The result's keys about how early it decided: ``sequential`` (Step 1), ``race`` (Step 2), ``full``."""
    out: dict[str, Any] = {"sequential": step1.to_dict(), "full": config.full, "n_total": n_total,
                           "decision": (raced or step1).message}
    if raced is not None:
        out["race"] = raced.to_dict()
    return out


def default_bar() -> float:
    """The quality bar of rule ``dt.quality_bar`` (0.90 in the seed)."""
    import knowledge

    return float(knowledge.load().rules.quality_bar.default)


def _run_choice(v: Variant, test: Sequence[Example], backend: Backend, labels: Sequence[str],
                on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """The plain prompt in choice mode: each label scored by log-likelihood, the best is the answer."""
    prompts = [build_messages(v.system, v.few_shot, e) for e in test]
    gens = backend.choose(prompts, labels, on_progress=on_progress)  # type: ignore[attr-defined]
    raw = [g.text for g in gens]
    out = _scored(v, test, gens, raw, raw, "label_accuracy", labels, None, None, "choice")
    out["mode"] = "choice"
    return out


def _scored(v: Variant, test: Sequence[Example], gens: Sequence[Generation], raw: Sequence[str],
            preds: Sequence[str], metric: str, labels: Sequence[str] | None, schema: dict[str, Any] | None,
            tests: Sequence[Sequence[str]] | None, mode: str, *, idx: Sequence[int] | None = None) -> dict[str, Any]:
    from tools.scoring.rows import row_inputs

    refs = [e.output_text for e in test]
    idx = list(idx) if idx is not None else list(range(len(test)))
    scored = metrics.score(list(preds), refs, metric, labels=labels, schema=schema, tests=tests,
                           **row_inputs(test, metric))
    lat = [g.latency_ms for g in gens]
    out: dict[str, Any] = {
        "name": v.name, "description": v.description, "metric": metric, "quality": round(scored.quality, 4),
        "ci95": [round(x, 4) for x in scored.ci95], "n": scored.n, "shots": len(v.few_shot),
        "latency_ms": {"p50": round(metrics.percentile(lat, 50), 1), "p95": round(metrics.percentile(lat, 95), 1),
                       "mode": mode},
        "prompt_tokens": _stats([g.prompt_tokens for g in gens]),
        "output_tokens": _stats([g.output_tokens for g in gens]),
        "system": v.system,
        # The demonstrations themselves, so evaluation and A/B can rebuild this exact prompt from the run log.
        "few_shot": [{"input": q, "output": a} for q, a in v.few_shot],
    }
    for k, x in scored.extra.items():
        out[k] = [round(y, 4) for y in x] if isinstance(x, list) else round(x, 4)
    out["_rows"] = [{"idx": i, "input": e.input_text, "expected": r, "prediction": p, "raw": t,
                     "correct": bool(sc >= 1.0), "score": sc, "latency_ms": g.latency_ms,
                     "prompt_tokens": g.prompt_tokens, "output_tokens": g.output_tokens}
                    for i, e, r, p, t, sc, g in zip(idx, test, refs, preds, raw, scored.per_item, gens,
                                                    strict=True)]
    return out


def _log_variant(log: Any, run_id: str, v: Variant, res: dict[str, Any], test: Sequence[Example],
                 test_sha: str, *, kind: str = "prompt_eval") -> str:
    details = {k: val for k, val in _public(res).items() if k not in ("quality", "ci95", "n", "metric")}
    details["variant"] = v.name
    eval_id: str = log.log_evaluation(run_id, kind, metric=res["metric"],
                                      value=res["quality"], ci=res["ci95"], n=res["n"], test_sha256=test_sha,
                                      details=details)
    log.log_predictions(run_id, eval_id, res["_rows"])
    return eval_id


def _public(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if not k.startswith("_")}


def _savings(base: dict[str, Any], ft_tokens: Sequence[int | None]) -> dict[str, Any]:
    """What a fine-tuned model would save by needing only the bare input (no system message, no shots).

    Rough model: time grows with the tokens processed (prompt + output); prompt tokens are cheaper than
    generated ones in practice, so the latency figure is an upper bound on the saving.
    """
    known = [t for t in ft_tokens if t is not None]
    if not known:
        return {}
    ft = statistics.fmean(known)
    prompt, out = base["prompt_tokens"]["mean"], base["output_tokens"]["mean"]
    if prompt <= 0:
        return {}
    ratio = (ft + out) / (prompt + out) if prompt + out else 1.0
    return {"finetuned_prompt_tokens": round(ft, 1), "prompt_tokens_saved": round(prompt - ft, 1),
            "token_reduction": round(1 - ft / prompt, 3),
            "est_latency_ms_p50": round(base["latency_ms"]["p50"] * ratio, 1),
            "note": "upper bound: assumes every processed token costs the same"}
