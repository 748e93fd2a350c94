"""Offline A/B: two variants on the same test rows, B minus A with a paired CI, and the ROI rule's verdict."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.evaluate import predictions as P
from tools.evaluate.config import EvalConfig
from tools.evaluate.test_set import paired
from tools.fileio import sha256_file
from tools.models import ModelSpec
from tools.prompt.variants import Variant, base_variant, pair_variants
from tools.scoring.rows import decide_scoring, head, load_test, score_texts
from tools.types import ProgressCallback


@dataclass
class ABResult:
    """``ab``'s result: each side's score and costs, B minus A on the same rows with its CI, the ROI verdict.
    ``to_dict()`` keeps the JSON keys (the paired difference's ``diff``/``diff_ci95``/``mcnemar`` at the top)."""

    a: dict[str, Any]
    b: dict[str, Any]
    n: int
    test_rows: int
    limit: int | None
    reused: list[str]
    metric: str
    share: bool
    diff: float
    diff_ci95: list[float]
    bar: float
    roi: dict[str, Any]
    test: str
    mcnemar: dict[str, float] | None = None
    rule_ids: list[str] = field(default_factory=lambda: ["roi.worth_it", "eval.ab_test"])

    @property
    def verdict(self) -> str:
        return str(self.roi["verdict"])

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        if d["mcnemar"] is None:
            d.pop("mcnemar")
        return d


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


def _reusable(var: Variant, other: Variant, test_sha: str, n: int, cfg: EvalConfig,
              max_new_tokens: int) -> P.Predictions | None:
    """Predictions ``evaluate_test`` logged for this variant on the same test rows with the same generation
    settings: a tuned run's own (``test``), or the base model under the run on the other side (``test_base``)."""
    from tools.runlog import RunLog

    if var.kind == "tuned" and var.source_run:
        run, kind = var.source_run, "test"
    elif var.kind == "base" and other.kind == "tuned" and other.source_run and var.spec is not None \
            and (other_spec := base_variant(other.source_run).spec) is not None \
            and _same_weights(other_spec, var.spec):
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
    if (logged.get("max_new_tokens"), logged.get("device")) != (max_new_tokens, cfg.device):
        return None
    preds = P.logged_predictions(run, kind, test_sha, n)
    if preds is not None:
        preds.variant = var.label
    return preds


def ab(a: str, b: str, test: str | Path, *, bar: float | None = None, metric: str | None = None,
       cost_per_1k_tokens: float | None = None, config: EvalConfig | None = None,
       on_progress: ProgressCallback | None = None, limit: int | None = None, reuse: bool = True) -> ABResult:
    """Offline A/B on the same examples: B minus A with a paired bootstrap CI and McNemar's test, the latency
    and tokens of each, and the ROI rule: is B better by more than ``bar`` (absolute points) with confidence?

    ``limit`` compares on the first N test rows only. With ``reuse`` (the default), a side that
    ``evaluate_test`` already scored on the same rows (a run, or the base model under it) is not generated
    again; ``reused`` in the result names those sides. ``bar`` defaults to rule ``roi.worth_it``."""
    import knowledge
    from tools.runlog import RunLog

    if bar is None:
        bar = knowledge.load().rules.roi.worth_it.min_quality_improvement

    cfg = config or EvalConfig()
    va, vb = pair_variants(a, b)
    all_examples = load_test(test)
    examples = head(all_examples, limit)
    test_sha = sha256_file(test)
    scoring = decide_scoring(all_examples, metric=metric or cfg.metric, max_new_tokens=cfg.max_new_tokens)
    metric_name = scoring.metric
    sides: dict[str, Any] = {}
    per_item = {}
    reused: list[str] = []
    for name, var, other in (("a", va, vb), ("b", vb, va)):
        preds = _reusable(var, other, test_sha, len(examples), cfg, scoring.max_new_tokens) if reuse else None
        if preds is not None:
            reused.append(name)
        else:
            preds = P.predict(var, var.prompts(examples), max_new_tokens=scoring.max_new_tokens,
                              batch_size=cfg.batch_size, device=cfg.device, on_progress=on_progress)
        res = score_texts(preds.texts, examples, scoring, seed=cfg.seed)
        per_item[name] = res.per_item
        s = preds.summary()
        tokens = s["prompt_tokens_mean"] + s["output_tokens_mean"]
        sides[name] = {"spec": a if name == "a" else b, "variant": var.label, **res.to_dict(), **s,
                       "tokens_per_request": tokens,
                       "cost_per_request": tokens / 1000 * cost_per_1k_tokens if cost_per_1k_tokens else None}
    paired_d = paired(per_item["a"], per_item["b"], cfg.seed)
    verdict = _roi_verdict(paired_d["diff"], paired_d["diff_ci95"], bar)
    lat = sides["b"]["latency_ms_mean"] / sides["a"]["latency_ms_mean"] if sides["a"]["latency_ms_mean"] else None
    tok = (sides["b"]["tokens_per_request"] / sides["a"]["tokens_per_request"]
           if sides["a"]["tokens_per_request"] else None)
    lo, hi = paired_d["diff_ci95"]
    reason = {
        "worth_it": f"B beats A by {paired_d['diff'] * 100:.1f} points and even the low end of the 95% CI "
                    f"({lo * 100:.1f}) clears the {bar * 100:.0f}-point bar",
        "not_worth_it": f"the whole 95% CI of the gain ({lo * 100:.1f} to {hi * 100:.1f} points) is below "
                        f"the {bar * 100:.0f}-point bar",
        "uncertain": f"the 95% CI of the gain ({lo * 100:.1f} to {hi * 100:.1f} points) straddles the "
                     f"{bar * 100:.0f}-point bar; more test examples would settle it",
    }[verdict]
    result = ABResult(a=sides["a"], b=sides["b"], n=len(examples), test_rows=len(all_examples), limit=limit,
                      reused=reused, metric=metric_name, share=scoring.share, diff=paired_d["diff"],
                      diff_ci95=paired_d["diff_ci95"], mcnemar=paired_d.get("mcnemar"), bar=bar,
                      roi={"verdict": verdict, "worth_it": verdict == "worth_it", "reason": reason,
                           "latency_ratio_b_over_a": lat, "tokens_ratio_b_over_a": tok}, test=str(test))
    run_id = vb.source_run or va.source_run
    RunLog().log_evaluation(run_id, "ab", metric=metric_name, value=paired_d["diff"], ci=paired_d["diff_ci95"],
                            n=len(examples), test_sha256=test_sha, details=result.to_dict())
    return result

