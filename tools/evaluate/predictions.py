"""Predictions: generate a variant's answers (``tools.generation``), log them, and find logged ones to reuse."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tools.prompt.variants import Variant
from tools.scoring import metrics as M
from tools.types import Example, ProgressCallback, ProgressEvent, emit


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

    spec = variant.spec if variant.spec is not None else models.resolve(None)  # a prompt without a model: default
    model, tok = models.load_cached(spec, device=device)

    def relay(ev: ProgressEvent) -> None:
        emit(on_progress, ProgressEvent(f"generate {variant.label}", ev.step, ev.total))

    gens = generation.generate(model, tok, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                               on_progress=relay)
    return Predictions(variant.label, [g.text for g in gens], [g.latency_ms for g in gens],
                       [g.prompt_tokens for g in gens], [g.output_tokens for g in gens])


def choose(variant: Variant, prompts: list[list[dict[str, str]]], labels: list[str], *, device: str | None = None,
           on_progress: ProgressCallback | None = None) -> Predictions | None:
    """Choice-mode answers (the allowed label of highest log-likelihood), or None for a model tunewise cannot
    read log-likelihoods from (an OpenAI-compatible endpoint)."""
    from tools import generation, models

    spec = variant.spec if variant.spec is not None else models.resolve(None)
    if spec.kind == "openai":
        return None
    model, tok = models.load_cached(spec, device=device)

    def relay(ev: ProgressEvent) -> None:
        emit(on_progress, ProgressEvent(f"choose {variant.label}", ev.step, ev.total))

    gens = generation.choose(model, tok, prompts, labels, on_progress=relay)
    return Predictions(variant.label, [g.text for g in gens], [g.latency_ms for g in gens],
                       [g.prompt_tokens for g in gens], [g.output_tokens for g in gens])


def log_predictions(log: Any, run_id: str | None, eval_id: str, examples: Sequence[Example], preds: Predictions,
                     items: Sequence[float]) -> None:
    log.log_predictions(run_id, eval_id, [
        {"idx": i, "input": ex.input_text, "expected": ex.output_text, "prediction": preds.texts[i],
         "correct": bool(items[i] >= 1.0), "latency_ms": preds.latency_ms[i],
         "prompt_tokens": preds.prompt_tokens[i], "output_tokens": preds.output_tokens[i]}
        for i, ex in enumerate(examples)])


def logged_predictions(run_id: str | None, kind: str, test_sha: str, n: int) -> Predictions | None:
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


