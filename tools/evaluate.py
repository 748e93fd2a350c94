"""Model evaluation: the held-out test set (once), a side-by-side sample, the forgetting check, offline A/B, ROI.

Every number comes from ``tools.metrics`` (the same code prompt evaluation uses) and every prediction from
``tools.generation.generate``. Each evaluation is written to the run log (``evaluations`` + ``predictions``),
so the report, the checklist and the test-set peeking warning read the same facts.

A *variant* is something that answers prompts: a tuned run (``run:ID``), a base model (``base``, a model
folder, ``smollm2-135m-instruct``) or a prompt configuration (``prompt:RUN_ID`` for a logged prompt
baseline, ``prompt:FILE.json`` for ``{"system": ..., "few_shot": [{"input", "output"}], "model": ...}``).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from tools import metrics as M
from tools.errors import InputError, RunNotFoundError, where
from tools.fileio import sha256_file
from tools.models import EMBEDDED_NAME, ModelSpec
from tools.types import Example, ProgressCallback, ProgressEvent, emit

PROBES_FILE = Path(str(files("knowledge") / "probes" / "general.jsonl"))  # the shipped general probe set
PROBE_CHECKS = ("exact", "contains", "number", "regex", "any_of")
FORGETTING_FIXES = ("diag.catastrophic_forgetting.fix.lower_lr", "diag.catastrophic_forgetting.fix.fewer_epochs",
                    "diag.catastrophic_forgetting.fix.lora", "diag.catastrophic_forgetting.fix.mix_general_data")


@dataclass
class EvalConfig:
    """How a model is evaluated; stored verbatim with every evaluation in the run log."""

    metric: str | None = None  # None: chosen from the references (label accuracy, JSON equality, exact match)
    max_new_tokens: int = 32  # enough for a label or a short answer; raise it for long outputs
    batch_size: int = 8  # passed to generation.generate
    probe_max_new_tokens: int = 40  # answers to general-capability probes are one short sentence
    forgetting_tolerance: float = 0.02  # a drop of at most 2 points on the probes counts as preserved
    bar: float = 0.10  # the ROI rule's minimum quality gain (roi.worth_it), in absolute points
    seed: int = 0
    device: str | None = None


# ---------------------------------------------------------------------------------------------- variants

@dataclass
class Variant:
    """A model plus, for a prompt configuration, the system prompt and demonstrations put before each input."""

    label: str
    kind: str  # "tuned" | "base" | "prompt"
    spec: ModelSpec
    system: str | None = None
    few_shot: list[tuple[str, str]] = field(default_factory=list)
    source_run: str | None = None

    def prompts(self, examples: Sequence[Example]) -> list[list[dict[str, str]]]:
        out = []
        for ex in examples:
            if self.kind != "prompt":
                out.append([m.to_dict() for m in ex.prompt_messages])
                continue
            msgs = [{"role": "system", "content": self.system}] if self.system else []
            for q, a in self.few_shot:
                msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            msgs.append({"role": "user", "content": ex.input_text})
            out.append(msgs)
        return out


def _base_of(spec: ModelSpec) -> ModelSpec:
    """The model under a tuned run's adapter (for a full fine-tune: the model named in the run)."""
    from tools import models

    if spec.adapter is not None:
        return ModelSpec("local" if spec.path else "embedded", spec.name, path=spec.path)
    if spec.kind == "run":
        from tools.runlog import RunLog

        run = RunLog().find_run(spec.run_id or "")
        cfg = run.get("config") or {}
        return models.resolve(cfg.get("model") or cfg.get("base_model") or EMBEDDED_NAME)
    return spec


def tuned_variant(run_id: str) -> Variant:
    from tools import models

    spec = models.resolve_run(run_id.removeprefix("run:"))
    return Variant(f"run:{spec.run_id}", "tuned", spec, source_run=spec.run_id)


def base_variant(run_id: str | None = None, model: str | None = None) -> Variant:
    from tools import models

    if model:
        spec = models.resolve(model)
    elif run_id:
        spec = _base_of(models.resolve_run(run_id.removeprefix("run:")))
    else:
        spec = models.resolve(None)
    return Variant(f"base:{spec.label}", "base", spec)


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) not in (None, "", []):
            return d[k]
    return None


def _shots(raw: Any) -> list[tuple[str, str]]:
    out = []
    for s in raw or []:
        if isinstance(s, dict):
            q = _first(s, "input", "prompt", "user", "question", "text")
            a = _first(s, "output", "completion", "assistant", "answer", "label")
            if q is not None and a is not None:
                out.append((str(q), str(a)))
        elif isinstance(s, list | tuple) and len(s) == 2:
            out.append((str(s[0]), str(s[1])))
    return out


def _prompt_from_dict(d: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]] | None:
    system = _first(d, "system", "system_prompt", "instructions", "prompt")
    shots = _shots(_first(d, "few_shot", "examples", "shots", "demonstrations"))
    if system is None and not shots:
        return None
    return (str(system) if system is not None else None, shots)


def prompt_baseline_run(*, model: str | None = None) -> dict[str, Any] | None:
    """The newest completed prompt-baseline run in the run log (kind ``prompt_eval``), or None."""
    from tools.runlog import RunLog

    rows = RunLog().query("SELECT run_id FROM runs WHERE kind = 'prompt_eval' AND status = 'completed' "
                          "ORDER BY started_at DESC")
    for r in rows:
        run = RunLog().get_run(r["run_id"])
        if run and (model is None or run.get("model") in (None, model)):
            return run
    return None


def _best_prompt(run: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]] | None:
    """The best variant's system prompt and demonstrations, read tolerantly from a prompt_eval run."""
    summary = run.get("summary") or {}
    config = run.get("config") or {}
    variants = summary.get("variants") or config.get("variants") or []
    best = summary.get("best")
    if isinstance(best, dict):
        found = _prompt_from_dict(best)
        if found:
            return found
        best = _first(best, "name", "variant", "id")
    for v in variants if isinstance(variants, list) else []:
        if isinstance(v, dict) and (best is None or _first(v, "name", "variant", "id") == best):
            found = _prompt_from_dict(v)
            if found:
                return found
    return _prompt_from_dict(config)


def prompt_variant(ref: str, *, model: str | None = None) -> Variant:
    """``prompt:RUN_ID`` (a logged prompt baseline) or ``prompt:FILE`` (JSON with system/few_shot/model)."""
    from tools import models
    from tools.runlog import RunLog

    ref = ref.removeprefix("prompt:")
    p = Path(ref).expanduser()
    if p.is_file():
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise InputError(f"not valid JSON: {e}", where=str(p)) from e
        found = _prompt_from_dict(d) if isinstance(d, dict) else None
        if not found:
            raise InputError("a prompt configuration needs 'system' and/or 'few_shot'", where=str(p),
                             fix='write {"system": "...", "few_shot": [{"input": "...", "output": "..."}]}')
        spec = models.resolve(d.get("model") or model)
        return Variant(f"prompt:{p.name}", "prompt", spec, system=found[0], few_shot=found[1])
    run = RunLog().find_run(ref)
    found = _best_prompt(run)
    if not found:
        raise InputError(f"prompt run {run['run_id']} does not record its prompt", where="runs.summary",
                         fix="give the prompt as a JSON file: prompt:FILE.json")
    # The config holds the model spec as the user gave it (a path resolves anywhere); runs.model is a display
    # name ("tiny" for a folder called tiny) and only the fallback.
    spec = models.resolve(model or (run.get("config") or {}).get("model") or run.get("model"))
    return Variant(f"prompt:{run['run_id']}", "prompt", spec, system=found[0], few_shot=found[1],
                   source_run=run["run_id"])


def parse_variant(text: str, *, run_id: str | None = None) -> Variant:
    """A/B spec: ``run:ID`` | a train run id | ``base`` / ``base:MODEL`` | ``prompt:RUN_ID|FILE`` | a model."""
    from tools.runlog import RunLog

    t = text.strip()
    if t.startswith("run:"):
        return tuned_variant(t)
    if t == "base":
        return base_variant(run_id)
    if t.startswith("base:"):
        return base_variant(model=t.removeprefix("base:"))
    if t.startswith("prompt:"):
        return prompt_variant(t)
    if not Path(t).exists() and t.lower() not in {EMBEDDED_NAME, "smollm2", "default", "embedded"} \
            and not t.startswith("openai:"):
        try:
            return tuned_variant(RunLog().find_run(t)["run_id"])  # a run id or a unique prefix of one
        except RunNotFoundError:
            pass
    return base_variant(model=t)


def _pair(a: str, b: str) -> tuple[Variant, Variant]:
    """Parse two A/B specs; a bare ``base`` on one side means the base model of the run on the other side."""
    va = None if a.strip() == "base" else parse_variant(a)
    vb = None if b.strip() == "base" else parse_variant(b)
    run = (vb.source_run if vb else None) or (va.source_run if va else None)
    return va or base_variant(run), vb or base_variant(run)


# ---------------------------------------------------------------------------------------------- predictions

def load_test(path: str | Path) -> list[Example]:
    p = Path(path)
    if not p.exists():
        raise InputError("test file not found", where=str(p), fix="give the test.jsonl written by `tunewise data split`")
    try:
        from tools.data import load as data_load  # type: ignore[attr-defined]  # the full loader (issue 4)

        examples = data_load(p).examples
    except ImportError:
        from tools.data.formats import load_examples

        examples = load_examples(p)
    examples = [e for e in examples if e.output_text.strip() and e.input_text.strip()]
    if not examples:
        raise InputError("no examples with both an input and an expected output", where=str(p))
    return examples


def _check_limit(limit: int | None, where: str) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a whole number of at least 1, got {limit!r}", where=where,
                         fix="leave it out to use every row")


def head(examples: list[Example], limit: int | None) -> list[Example]:
    """The first ``limit`` rows (all of them when ``limit`` is None). Always the first rows, so an evaluation,
    the side-by-side table and the A/B with the same limit score the same examples and can reuse predictions."""
    _check_limit(limit, "limit")
    return examples if limit is None else examples[:limit]


def spread(items: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``limit`` items evenly spaced through the list (the probe file is grouped by category, so every
    category keeps a share); all of them when ``limit`` is None or not smaller than the list."""
    _check_limit(limit, "probes limit")
    if limit is None or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


@dataclass
class Predictions:
    variant: str
    texts: list[str]
    latency_ms: list[float]
    prompt_tokens: list[int]
    output_tokens: list[int]

    def summary(self) -> dict[str, float]:
        n = len(self.texts) or 1
        return {"latency_ms_mean": sum(self.latency_ms) / n, "latency_ms_p50": M.percentile(self.latency_ms, 50),
                "latency_ms_p95": M.percentile(self.latency_ms, 95),
                "prompt_tokens_mean": sum(self.prompt_tokens) / n, "output_tokens_mean": sum(self.output_tokens) / n}


def predict(variant: Variant, prompts: list[list[dict[str, str]]], *, max_new_tokens: int, batch_size: int = 8,
            device: str | None = None, on_progress: ProgressCallback | None = None) -> Predictions:
    from tools import generation, models

    model, tok = models.load_cached(variant.spec, device=device)

    def relay(ev: ProgressEvent) -> None:
        emit(on_progress, ProgressEvent(f"generate {variant.label}", ev.step, ev.total))

    gens = generation.generate(model, tok, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                               on_progress=relay)
    return Predictions(variant.label, [g.text for g in gens], [g.latency_ms for g in gens],
                       [g.prompt_tokens for g in gens], [g.output_tokens for g in gens])


def _labels(refs: Sequence[str], metric: str) -> list[str] | None:
    return sorted(set(refs)) if metric in ("label_accuracy", "macro_f1") else None


def _score(preds: Predictions, refs: list[str], metric: str, seed: int) -> M.MetricResult:
    return M.score(preds.texts, refs, metric, labels=_labels(refs, metric), seed=seed)


def _log_predictions(log: Any, run_id: str | None, eval_id: str, examples: Sequence[Example], preds: Predictions,
                     items: Sequence[float]) -> None:
    log.log_predictions(run_id, eval_id, [
        {"idx": i, "input": ex.input_text, "expected": ex.output_text, "prediction": preds.texts[i],
         "correct": bool(items[i] >= 1.0), "latency_ms": preds.latency_ms[i],
         "prompt_tokens": preds.prompt_tokens[i], "output_tokens": preds.output_tokens[i]}
        for i, ex in enumerate(examples)])


def _logged_predictions(run_id: str | None, kind: str, test_sha: str, n: int) -> Predictions | None:
    """Predictions already logged for this (run, evaluation kind, test file): compare reuses them."""
    from tools.runlog import RunLog

    log = RunLog()
    ev = log.query("SELECT eval_id FROM evaluations WHERE kind = ? AND test_sha256 = ? AND "
                   "run_id IS NOT DISTINCT FROM ? ORDER BY created_at DESC LIMIT 1", [kind, test_sha, run_id])
    if not ev:
        return None
    rows = log.query("SELECT * FROM predictions WHERE eval_id = ? ORDER BY idx", [ev[0]["eval_id"]])
    if len(rows) != n:
        return None
    return Predictions(kind, [r["prediction"] or "" for r in rows], [r["latency_ms"] or 0.0 for r in rows],
                       [int(r["prompt_tokens"] or 0) for r in rows], [int(r["output_tokens"] or 0) for r in rows])


def _paired(a: Sequence[float], b: Sequence[float], seed: int) -> dict[str, Any]:
    diff, ci = M.paired_bootstrap_diff(a, b, seed=seed)
    out: dict[str, Any] = {"diff": diff, "diff_ci95": list(ci)}
    if all(x in (0.0, 1.0) for x in [*a, *b]):
        out["mcnemar"] = M.mcnemar([x >= 1 for x in a], [x >= 1 for x in b])
    return out


# ---------------------------------------------------------------------------------------------- test set, once

def test_evaluations(test_sha: str) -> list[dict[str, Any]]:
    """Earlier scorings of this exact test file (kind ``test``), oldest first."""
    from tools.runlog import RunLog

    return RunLog().query("SELECT eval_id, run_id, value, created_at FROM evaluations WHERE kind = 'test' AND "
                          "test_sha256 = ? ORDER BY created_at", [test_sha])


def evaluate_test(run_id: str, test: str | Path, *, metric: str | None = None, config: EvalConfig | None = None,
                  on_progress: ProgressCallback | None = None, limit: int | None = None) -> dict[str, Any]:
    """Score a tuned run on the held-out test set, beside the base model and the best prompt baseline.

    The evaluation is logged; scoring the same test file again warns about test-set peeking (rule
    ``eval.test_once``): choose between runs on the validation split and report the test number once.
    ``limit`` scores only the first N rows (a quick check); the result says ``n`` of ``test_rows``.
    """
    from tools.runlog import RunLog

    cfg = replace(config or EvalConfig(), metric=metric or (config.metric if config else None))
    tuned = tuned_variant(run_id)
    rid = tuned.source_run
    all_examples = load_test(test)
    examples = head(all_examples, limit)
    test_sha = sha256_file(test)
    refs = [e.output_text for e in examples]
    metric_name = cfg.metric or M.choose_metric(refs)
    earlier = test_evaluations(test_sha)

    variants: list[tuple[str, Variant]] = [("tuned", tuned), ("base", base_variant(rid))]
    prompt_run = prompt_baseline_run()
    prompt_note = None
    if prompt_run is not None:
        try:
            variants.append(("prompt_baseline", prompt_variant(prompt_run["run_id"])))
        except InputError as e:
            prompt_note = e.what
    else:
        prompt_note = "no prompt baseline in the run log (run `tunewise prompt-eval` first)"

    log = RunLog()
    results: dict[str, dict[str, Any]] = {}
    items: dict[str, list[float]] = {}
    for step, (role, var) in enumerate(variants):
        emit(on_progress, ProgressEvent("evaluate_test", step, len(variants), message=var.label))
        preds = predict(var, var.prompts(examples), max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                        device=cfg.device, on_progress=on_progress)
        res = _score(preds, refs, metric_name, cfg.seed)
        items[role] = res.per_item
        results[role] = {**res.to_dict(), "variant": var.label, **preds.summary()}
        kind = "test" if role == "tuned" else f"test_{role}"
        eval_id = log.log_evaluation(rid, kind, metric=metric_name, value=res.quality, ci=res.ci95, n=res.n,
                                     test_sha256=test_sha, details={"variant": var.label, "config": asdict(cfg),
                                                                    "test": str(test), "limit": limit,
                                                                    "test_rows": len(all_examples),
                                                                    **preds.summary()})
        _log_predictions(log, rid, eval_id, examples, preds, res.per_item)
        results[role]["eval_id"] = eval_id
    emit(on_progress, ProgressEvent("evaluate_test", len(variants), len(variants), message="done"))

    t = results["tuned"]
    vs: dict[str, Any] = {"base": None, "prompt_baseline": None}
    for role in ("base", "prompt_baseline"):
        if role in results:
            vs[role] = {**{k: results[role][k] for k in ("quality", "ci95", "n", "metric", "variant")},
                        **_paired(items[role], items["tuned"], cfg.seed)}
    warnings = []
    if earlier:
        runs = sorted({e["run_id"] for e in earlier if e["run_id"]})
        warnings.append(
            f"test-set peeking: this test file was already evaluated {len(earlier)} time(s) "
            f"(runs: {', '.join(runs)}). Choosing between runs on it overfits the test set; choose on the "
            "validation split and report the test score once (eval.test_once).")
    if prompt_note:
        warnings.append(prompt_note)
    if len(examples) < len(all_examples):
        warnings.append(f"scored the first {len(examples)} of the {len(all_examples)} test rows (limit={limit}): "
                        "a quick check with a wide confidence interval, not the test-set result")
    return {"quality": t["quality"], "ci95": t["ci95"], "n": t["n"], "metric": metric_name, "vs": vs,
            "limit": limit, "test_rows": len(all_examples),
            "run_id": rid, "eval_id": t["eval_id"], "test": str(test), "test_sha256": test_sha,
            "test_evaluations": len(earlier) + 1, "peeking": bool(earlier), "warnings": warnings,
            "latency_ms_mean": t["latency_ms_mean"], "prompt_tokens_mean": t["prompt_tokens_mean"],
            "details": results, "rule_ids": ["eval.test_once"]}


# ---------------------------------------------------------------------------------------------- side by side

def _pick_sample(examples: Sequence[Example], ok: dict[str, list[float]], n: int, seed: int) -> dict[int, list[str]]:
    """Indices to show, each with why: edge cases first (longest inputs, rarest labels, flips), then random."""
    picked: dict[int, list[str]] = {}
    quota = max(1, n // 6)

    def take(idxs: Sequence[int], why: str, k: int) -> None:
        for i in idxs[:k]:
            if len(picked) >= n and i not in picked:
                return
            picked.setdefault(i, []).append(why)

    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_text))
    take(order, "longest input", quota)
    counts = Counter(e.output_text for e in examples)
    rare = sorted(counts, key=lambda lab: (counts[lab], lab))
    first_of: dict[str, int] = {}
    for i, e in enumerate(examples):
        first_of.setdefault(e.output_text, i)
    if len(counts) > 1:
        take([first_of[lab] for lab in rare], "rare label", quota)
    if "base" in ok:
        b, t = ok["base"], ok["tuned"]
        take([i for i in range(len(examples)) if b[i] < 1 <= t[i]], "base wrong, tuned right", quota)
        take([i for i in range(len(examples)) if t[i] < 1 <= b[i]], "base right, tuned wrong", quota)
    rest = [i for i in range(len(examples)) if i not in picked]
    random.Random(seed).shuffle(rest)
    take(rest, "random", max(0, n - len(picked)))
    return picked


def compare(run_id: str, test: str | Path, *, n: int = 30, config: EvalConfig | None = None,
            on_progress: ProgressCallback | None = None, limit: int | None = None) -> dict[str, Any]:
    """A side-by-side sample: input, expected, base, prompt baseline and tuned answers, with match marks.

    Reuses the predictions of ``evaluate_test`` when the test file was already scored (with the same ``limit``:
    the first N rows); otherwise generates.
    """
    from tools.runlog import RunLog

    cfg = config or EvalConfig()
    tuned = tuned_variant(run_id)
    rid = tuned.source_run
    all_examples = load_test(test)
    examples = head(all_examples, limit)
    test_sha = sha256_file(test)
    refs = [e.output_text for e in examples]
    metric_name = cfg.metric or M.choose_metric(refs)
    variants: list[tuple[str, str, Variant | None]] = [("tuned", "test", tuned), ("base", "test_base", None)]
    prompt_run = prompt_baseline_run()
    if prompt_run is not None:
        variants.append(("prompt_baseline", "test_prompt_baseline", None))
    texts: dict[str, list[str]] = {}
    ok: dict[str, list[float]] = {}
    for role, kind, var in variants:
        preds = _logged_predictions(rid, kind, test_sha, len(examples))
        if preds is None:
            try:
                var = var or (base_variant(rid) if role == "base" else prompt_variant(prompt_run["run_id"]))  # type: ignore[index]
            except InputError:
                continue
            preds = predict(var, var.prompts(examples), max_new_tokens=cfg.max_new_tokens,
                            batch_size=cfg.batch_size, device=cfg.device, on_progress=on_progress)
        texts[role] = preds.texts
        ok[role] = _score(preds, refs, metric_name, cfg.seed).per_item
    picked = _pick_sample(examples, ok, n, cfg.seed)
    rows = []
    for i in sorted(picked):
        row: dict[str, Any] = {"idx": i, "input": examples[i].input_text, "expected": refs[i], "why": picked[i]}
        for role in ("base", "prompt_baseline", "tuned"):
            row[role] = texts[role][i] if role in texts else None
            row[f"{role}_ok"] = bool(ok[role][i] >= 1) if role in ok else None
        rows.append(row)
    result = {"run_id": rid, "test": str(test), "metric": metric_name, "n": len(rows), "rows": rows,
              "sampled_from": len(examples), "test_rows": len(all_examples), "limit": limit,
              "columns": [r for r in ("base", "prompt_baseline", "tuned") if r in texts],
              "rule_ids": ["eval.manual"]}
    RunLog().log_evaluation(rid, "compare", metric=metric_name, value=None, n=len(rows), test_sha256=test_sha,
                            details=result)
    return result


# ---------------------------------------------------------------------------------------------- forgetting

def load_probes(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Probe items ``{"id", "category", "question", "answer", "check"}``; errors name file:line:field."""
    p = Path(path) if path else PROBES_FILE
    if not p.exists():
        raise InputError("probe file not found", where=str(p))
    items, seen = [], set()
    for lineno, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
        except ValueError as e:
            raise InputError(f"not valid JSON: {e}", where=where(p, lineno)) from e
        for key in ("question", "answer"):
            if key not in d or d[key] in (None, "", []):
                raise InputError(f"missing '{key}'", where=where(p, lineno, key),
                                 fix='each line needs {"question": ..., "answer": ..., "check": "contains"}')
        d.setdefault("id", f"line{lineno}")
        d.setdefault("category", "general")
        d.setdefault("check", "any_of" if isinstance(d["answer"], list) else "contains")
        if d["check"] not in PROBE_CHECKS:
            raise InputError(f"unknown check {d['check']!r}", where=where(p, lineno, "check"),
                             fix=f"use one of {', '.join(PROBE_CHECKS)}")
        if d["id"] in seen:
            raise InputError(f"duplicate id {d['id']!r}", where=where(p, lineno, "id"))
        seen.add(d["id"])
        items.append(d)
    if not items:
        raise InputError("no probes in the file", where=str(p))
    return items


def check_probe(answer: str, item: dict[str, Any]) -> bool:
    """Does a model's answer pass the probe's check? (Scoring lives in tools.metrics.)"""
    ref, check = item["answer"], item.get("check", "contains")
    refs = ref if isinstance(ref, list) else [ref]
    if check == "exact":
        return any(M.exact_match(answer, r) for r in refs)
    if check == "number":
        return any(M.number_match(answer, str(r)) for r in refs)
    if check == "regex":
        return any(M.regex_match(answer, r) for r in refs)
    return bool(M.any_of(answer, [str(r) for r in refs]))


def forgetting(run_id: str, *, probes: str | Path | None = None, base: str | None = None,
               config: EvalConfig | None = None, on_progress: ProgressCallback | None = None,
               limit: int | None = None) -> dict[str, Any]:
    """Ask the base and the tuned model the same general questions; did the tuned one keep its skills?

    ``run_id`` is a run (``run:ID`` or its id) or any model spec; ``base`` overrides the model compared against
    (default: the run's base model). A drop above ``forgetting_tolerance`` is "degraded", with the fixes.
    ``limit`` asks only N probes, evenly spaced through the file; the result says ``probes`` of ``probes_total``.
    """
    import knowledge
    from tools.runlog import RunLog

    cfg = config or EvalConfig()
    tuned = parse_variant(run_id)
    base_var = base_variant(model=base) if base else (
        base_variant(tuned.source_run) if tuned.kind == "tuned" else replace(tuned, label=f"base:{tuned.spec.label}"))
    all_items = load_probes(probes)
    items = spread(all_items, limit)
    prompts = [[*([{"role": "system", "content": it["system"]}] if it.get("system") else []),
                {"role": "user", "content": it["question"]}] for it in items]
    answers = {}
    for role, var in (("base", base_var), ("tuned", tuned)):
        emit(on_progress, ProgressEvent("forgetting", 0 if role == "base" else 1, 2, message=var.label))
        answers[role] = predict(var, prompts, max_new_tokens=cfg.probe_max_new_tokens, batch_size=cfg.batch_size,
                                device=cfg.device, on_progress=on_progress).texts
    emit(on_progress, ProgressEvent("forgetting", 2, 2, message="scoring"))
    ok = {role: [check_probe(a, it) for a, it in zip(answers[role], items, strict=True)] for role in answers}
    n = len(items)
    base_score, tuned_score = sum(ok["base"]) / n, sum(ok["tuned"]) / n
    drop = base_score - tuned_score
    test = M.mcnemar(ok["base"], ok["tuned"])
    rows: list[dict[str, Any]] = []
    by_cat: dict[str, dict[str, int]] = {}
    for i, it in enumerate(items):
        b, t = ok["base"][i], ok["tuned"][i]
        status = "kept" if b and t else "lost" if b else "gained" if t else "both_wrong"
        rows.append({"id": it["id"], "category": it["category"], "question": it["question"], "answer": it["answer"],
                     "base": answers["base"][i], "tuned": answers["tuned"][i], "base_ok": b, "tuned_ok": t,
                     "status": status, "preserved": status != "lost",
                     "changed": answers["base"][i].strip() != answers["tuned"][i].strip()})
        c = by_cat.setdefault(it["category"], {"n": 0, "base": 0, "tuned": 0})
        c["n"] += 1
        c["base"] += int(b)
        c["tuned"] += int(t)
    degraded = drop > cfg.forgetting_tolerance + 1e-9  # 1 - 0.98 is 0.020000000000000018 in floats
    verdict = f"degraded by {drop * 100:.1f} points" if degraded else "preserved"
    fixes = []
    if degraded:
        k = knowledge.load()
        fixes = [{"rule": rid, "text": k.rule(rid).text} for rid in FORGETTING_FIXES]
    result = {
        "probes": n, "probes_total": len(all_items), "limit": limit,
        "base_score": base_score, "tuned_score": tuned_score, "drop": drop, "verdict": verdict,
        "degraded": degraded, "base_ci95": list(M.wilson_ci(sum(ok["base"]), n)),
        "tuned_ci95": list(M.wilson_ci(sum(ok["tuned"]), n)), "mcnemar": test,
        "lost": sum(r["status"] == "lost" for r in rows), "gained": sum(r["status"] == "gained" for r in rows),
        "changed": sum(r["changed"] for r in rows), "tolerance": cfg.forgetting_tolerance,
        "categories": {c: {**v, "base_score": v["base"] / v["n"], "tuned_score": v["tuned"] / v["n"]}
                       for c, v in sorted(by_cat.items())},
        "base": base_var.label, "tuned": tuned.label, "fixes": fixes, "items": rows,
        "probe_file": str(Path(probes) if probes else PROBES_FILE),
        "rule_ids": ["eval.forgetting_check", "diag.catastrophic_forgetting"],
    }
    RunLog().log_evaluation(tuned.source_run, "forgetting", metric="probe_accuracy", value=tuned_score,
                            ci=result["tuned_ci95"], n=n, details=result)
    return result


# ---------------------------------------------------------------------------------------------- offline A/B

def _roi_verdict(diff: float, ci: Sequence[float], bar: float) -> str:
    if ci[0] > bar:
        return "worth_it"
    if ci[1] < bar:
        return "not_worth_it"
    return "uncertain"


def _same_weights(a: ModelSpec, b: ModelSpec) -> bool:
    """Do two base-model specs load the same weights? (The embedded name and its converted folder do.)"""
    from tools import models

    if a.adapter is not None or b.adapter is not None or "openai" in (a.kind, b.kind):
        return False
    try:
        return models.base_path(a).resolve() == models.base_path(b).resolve()
    except Exception:  # noqa: BLE001 - unresolvable: not provably the same, so generate
        return False


def _reusable(var: Variant, other: Variant, test_sha: str, n: int, cfg: EvalConfig) -> Predictions | None:
    """Predictions ``evaluate_test`` logged for this variant on the same test rows with the same generation
    settings: a tuned run's own (``test``), or the base model under the run on the other side (``test_base``)."""
    from tools.runlog import RunLog

    if var.kind == "tuned" and var.source_run:
        run, kind = var.source_run, "test"
    elif var.kind == "base" and other.kind == "tuned" and other.source_run \
            and _same_weights(base_variant(other.source_run).spec, var.spec):
        run, kind = other.source_run, "test_base"
    else:
        return None
    ev = RunLog().query("SELECT details FROM evaluations WHERE kind = ? AND test_sha256 = ? AND run_id = ? "
                        "ORDER BY created_at DESC LIMIT 1", [kind, test_sha, run])
    if not ev:
        return None
    details = ev[0]["details"]
    details = json.loads(details) if isinstance(details, str) else (details or {})
    logged = details.get("config") or {}
    if (logged.get("max_new_tokens"), logged.get("device")) != (cfg.max_new_tokens, cfg.device):
        return None
    preds = _logged_predictions(run, kind, test_sha, n)
    if preds is not None:
        preds.variant = var.label
    return preds


def ab(a: str, b: str, test: str | Path, *, bar: float = 0.10, metric: str | None = None,
       cost_per_1k_tokens: float | None = None, config: EvalConfig | None = None,
       on_progress: ProgressCallback | None = None, limit: int | None = None, reuse: bool = True) -> dict[str, Any]:
    """Offline A/B on the same examples: B minus A with a paired bootstrap CI and McNemar's test, the latency
    and tokens of each, and the ROI rule: is B better by more than ``bar`` (absolute points) with confidence?

    ``limit`` compares on the first N test rows only. With ``reuse`` (the default), a side that
    ``evaluate_test`` already scored on the same rows (a run, or the base model under it) is not generated
    again; ``reused`` in the result names those sides."""
    from tools.runlog import RunLog

    cfg = config or EvalConfig()
    va, vb = _pair(a, b)
    all_examples = load_test(test)
    examples = head(all_examples, limit)
    test_sha = sha256_file(test)
    refs = [e.output_text for e in examples]
    metric_name = metric or cfg.metric or M.choose_metric(refs)
    sides: dict[str, Any] = {}
    per_item = {}
    reused: list[str] = []
    for name, var, other in (("a", va, vb), ("b", vb, va)):
        preds = _reusable(var, other, test_sha, len(examples), cfg) if reuse else None
        if preds is not None:
            reused.append(name)
        else:
            preds = predict(var, var.prompts(examples), max_new_tokens=cfg.max_new_tokens,
                            batch_size=cfg.batch_size, device=cfg.device, on_progress=on_progress)
        res = _score(preds, refs, metric_name, cfg.seed)
        per_item[name] = res.per_item
        s = preds.summary()
        tokens = s["prompt_tokens_mean"] + s["output_tokens_mean"]
        sides[name] = {"spec": a if name == "a" else b, "variant": var.label, **res.to_dict(), **s,
                       "tokens_per_request": tokens,
                       "cost_per_request": tokens / 1000 * cost_per_1k_tokens if cost_per_1k_tokens else None}
    paired = _paired(per_item["a"], per_item["b"], cfg.seed)
    verdict = _roi_verdict(paired["diff"], paired["diff_ci95"], bar)
    lat = sides["b"]["latency_ms_mean"] / sides["a"]["latency_ms_mean"] if sides["a"]["latency_ms_mean"] else None
    tok = (sides["b"]["tokens_per_request"] / sides["a"]["tokens_per_request"]
           if sides["a"]["tokens_per_request"] else None)
    lo, hi = paired["diff_ci95"]
    reason = {
        "worth_it": f"B beats A by {paired['diff'] * 100:.1f} points and even the low end of the 95% CI "
                    f"({lo * 100:.1f}) clears the {bar * 100:.0f}-point bar",
        "not_worth_it": f"the whole 95% CI of the gain ({lo * 100:.1f} to {hi * 100:.1f} points) is below "
                        f"the {bar * 100:.0f}-point bar",
        "uncertain": f"the 95% CI of the gain ({lo * 100:.1f} to {hi * 100:.1f} points) straddles the "
                     f"{bar * 100:.0f}-point bar; more test examples would settle it",
    }[verdict]
    result = {"a": sides["a"], "b": sides["b"], "n": len(examples), "test_rows": len(all_examples), "limit": limit,
              "reused": reused, "metric": metric_name, **paired,
              "bar": bar, "roi": {"verdict": verdict, "worth_it": verdict == "worth_it", "reason": reason,
                                   "latency_ratio_b_over_a": lat, "tokens_ratio_b_over_a": tok},
              "test": str(test), "rule_ids": ["roi.worth_it", "eval.ab_test"]}
    run_id = vb.source_run or va.source_run
    RunLog().log_evaluation(run_id, "ab", metric=metric_name, value=paired["diff"], ci=paired["diff_ci95"],
                            n=len(examples), test_sha256=test_sha, details=result)
    return result


# ---------------------------------------------------------------------------------------------- ROI

def roi(prompt_dev_hours: float, hourly_rate: float, data_prep_hours: float, training_cost: float | None = None, *,
        run_id: str | None = None, gpu_hour_cost: float | None = None, quality_gain: float | None = None,
        bar: float | None = None) -> dict[str, Any]:
    """The seed's ROI formula (knowledge rule ``roi.formula``) on the user's numbers.

    With ``run_id``: training cost is filled from the run's measured training time x ``gpu_hour_cost`` when not
    given, and the quality gain from its logged test evaluation (tuned minus the best of prompt baseline and
    base) when not given.
    """
    import knowledge
    from tools.runlog import RunLog

    filled: dict[str, Any] = {}
    if run_id:
        log = RunLog()
        run = log.find_run(run_id.removeprefix("run:"))
        if training_cost is None and gpu_hour_cost is not None and run.get("train_seconds"):
            training_cost = run["train_seconds"] / 3600 * gpu_hour_cost
            filled["training_cost"] = f"{run['train_seconds']:.0f} s of training x ${gpu_hour_cost}/h"
        if quality_gain is None:
            q = _latest_test_qualities(run["run_id"])
            if "tuned" in q and len(q) > 1:
                ref_role = "prompt_baseline" if "prompt_baseline" in q else "base"
                quality_gain = q["tuned"] - q[ref_role]
                filled["quality_gain"] = f"test: tuned {q['tuned']:.3f} - {ref_role} {q[ref_role]:.3f}"
    if training_cost is None:
        training_cost = 0.0
        filled.setdefault("training_cost", "unknown; counted as $0 (give --training-cost or --gpu-hour-cost)")
    try:
        r = knowledge.roi(prompt_dev_hours, hourly_rate, data_prep_hours, training_cost)
    except ValueError as e:
        raise InputError(str(e), where="roi", fix="give non-negative hours and costs") from e
    need = r.min_quality_improvement if bar is None else bar
    worth = None if quality_gain is None else quality_gain > need
    ratio = r.ratio if r.ratio != float("inf") else None
    return {"prompt_cost": r.prompt_cost, "fine_tune_cost": r.fine_tune_cost, "ratio": ratio,
            "min_quality_improvement": need, "quality_gain": quality_gain, "worth_it": worth,
            "inputs": {"prompt_dev_hours": prompt_dev_hours, "hourly_rate": hourly_rate,
                       "data_prep_hours": data_prep_hours, "training_cost": training_cost},
            "filled": filled, "rule_ids": list(r.rule_ids)}


def _latest_test_qualities(run_id: str) -> dict[str, float]:
    from tools.runlog import RunLog

    out: dict[str, float] = {}
    rows = RunLog().query("SELECT kind, value FROM evaluations WHERE run_id = ? AND kind IN ('test', 'test_base', "
                          "'test_prompt_baseline') ORDER BY created_at DESC", [run_id])
    for r in rows:
        role = {"test": "tuned", "test_base": "base", "test_prompt_baseline": "prompt_baseline"}[r["kind"]]
        out.setdefault(role, r["value"])
    return out

