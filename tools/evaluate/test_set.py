"""The held-out test set: read it (with per-row tests), decide its metric once, score a tuned run on it once.

The metric and the generation length are decided ONCE for a test file, from its task profile (issue 14):
every variant, subset and comparison on that file is then scored the same way, so numbers can be paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tools.errors import InputError
from tools.evaluate import predictions as P
from tools.evaluate.config import EvalConfig
from tools.fileio import sha256_file
from tools.prompt.variants import Variant, base_variant, prompt_baseline_run, prompt_variant, tuned_variant
from tools.scoring import metrics as M
from tools.scoring.rows import (
    Scoring,
    decide_scoring,
    head,
    load_test,
    profile_for,
    score_texts,
    training_rows,
)
from tools.types import Example, ProgressCallback, ProgressEvent, emit

# ---------------------------------------------------------------------------------------------- test set, once

def test_evaluations(test_sha: str) -> list[dict[str, Any]]:
    """Earlier scorings of this exact test file (kind ``test``), oldest first."""
    from tools.runlog import RunLog

    return RunLog().query("SELECT eval_id, run_id, value, created_at FROM evaluations WHERE kind = 'test' AND "
                          "test_sha256 = ? ORDER BY created_at", [test_sha])


def paired(a: Sequence[float], b: Sequence[float], seed: int) -> dict[str, Any]:
    """B minus A on the same rows (``metrics.paired_difference``), as the ``diff``/``diff_ci95``/``mcnemar`` keys."""
    d = M.paired_difference(a, b, seed=seed)
    out: dict[str, Any] = {"diff": d.diff, "diff_ci95": list(d.diff_ci95)}
    if d.mcnemar is not None:
        out["mcnemar"] = d.mcnemar
    return out


@dataclass
class EvalResult:
    """``evaluate_test``'s result. ``to_dict()`` is the ``--json`` document (keys kept from before the types).

    ``metric`` decided the number; ``share`` says whether ``quality`` is a share of acceptable answers (label
    accuracy, JSON equality, tests passed...) or a similarity such as chrF, which a quality bar in "share"
    units cannot be compared with. ``vs`` holds the base model and the prompt baseline, each scored on the
    same rows with the same metric, with the paired difference (tuned minus it) and its CI.
    """

    quality: float
    ci95: list[float]
    n: int
    metric: str
    share: bool
    vs: dict[str, Any]
    run_id: str | None
    eval_id: str
    test: str
    test_sha256: str
    test_rows: int
    limit: int | None
    test_evaluations: int
    peeking: bool
    warnings: list[str]
    latency_ms_mean: float
    prompt_tokens_mean: float
    scoring: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    rule_ids: list[str] = field(default_factory=lambda: ["eval.test_once"])
    choice: dict[str, Any] | None = None
    """Label tasks on a local model: the same rows in choice mode (``mode: "choice"``; ``quality``/``ci95``
    of the tuned model, ``vs`` with the paired differences). Free generation (``quality``) decides."""

    @property
    def vs_prompt(self) -> dict[str, Any] | None:
        """The paired comparison with the best prompt on the same rows, when a prompt baseline exists."""
        return self.vs.get("prompt_baseline")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


def evaluate_test(run_id: str, test: str | Path, *, metric: str | None = None, config: EvalConfig | None = None,
                  on_progress: ProgressCallback | None = None, limit: int | None = None) -> EvalResult:
    """Score a tuned run on the held-out test set, beside the base model and the best prompt baseline, all on
    the same rows with the same metric (decided once from the test file's profile).

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
    scoring = decide_scoring(all_examples, metric=cfg.metric, max_new_tokens=cfg.max_new_tokens,
                             profile=profile_for(all_examples, train=training_rows(rid)))
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
    logged_cfg = {**asdict(cfg), "max_new_tokens": scoring.max_new_tokens, "metric": scoring.metric}
    for step, (role, var) in enumerate(variants):
        emit(on_progress, ProgressEvent("evaluate_test", step, len(variants), message=var.label))
        preds = P.predict(var, var.prompts(examples), max_new_tokens=scoring.max_new_tokens,
                          batch_size=cfg.batch_size, device=cfg.device, on_progress=on_progress)
        res = score_texts(preds.texts, examples, scoring, seed=cfg.seed, on_progress=on_progress)
        items[role] = res.per_item
        results[role] = {**res.to_dict(), "variant": var.label, **preds.summary()}
        kind = "test" if role == "tuned" else f"test_{role}"
        eval_id = log.log_evaluation(rid, kind, metric=scoring.metric, value=res.quality, ci=res.ci95, n=res.n,
                                     test_sha256=test_sha, details={"variant": var.label, "config": logged_cfg,
                                                                    "scoring": scoring.to_dict(),
                                                                    "test": str(test), "limit": limit,
                                                                    "test_rows": len(all_examples),
                                                                    **preds.summary()})
        P.log_predictions(log, rid, eval_id, examples, preds, res.per_item)
        results[role]["eval_id"] = eval_id
    choice = None
    if cfg.choice and scoring.labels and scoring.metric in ("label_accuracy", "macro_f1"):
        choice = _choice_mode(variants, examples, all_examples, scoring, cfg, log, rid, test, test_sha, limit,
                              on_progress)
    emit(on_progress, ProgressEvent("evaluate_test", len(variants), len(variants), message="done"))

    t = results["tuned"]
    vs: dict[str, Any] = {"base": None, "prompt_baseline": None}
    for role in ("base", "prompt_baseline"):
        if role in results:
            vs[role] = {**{k: results[role][k] for k in ("quality", "ci95", "n", "metric", "variant")},
                        **paired(items[role], items["tuned"], cfg.seed)}
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
    if not scoring.share:
        warnings.append(f"{scoring.metric} is a similarity to the reference, not a share of acceptable answers: "
                        "compare it with the prompt baseline head to head (vs), or set a bar in its own units")
    companions = {k: t[k] for k in t if k not in ("quality", "ci95", "n", "metric", "share", "variant", "eval_id")
                  and not k.startswith(("latency", "prompt_tokens", "output_tokens"))}
    return EvalResult(quality=t["quality"], ci95=t["ci95"], n=t["n"], metric=scoring.metric, share=scoring.share,
                      vs=vs, run_id=rid, eval_id=t["eval_id"], test=str(test), test_sha256=test_sha,
                      test_rows=len(all_examples), limit=limit, test_evaluations=len(earlier) + 1,
                      peeking=bool(earlier), warnings=warnings, latency_ms_mean=t["latency_ms_mean"],
                      prompt_tokens_mean=t["prompt_tokens_mean"], scoring=scoring.to_dict(), details=results,
                      extra=companions, choice=choice)


def _choice_mode(variants: list[tuple[str, Variant]], examples: list[Example], all_examples: list[Example],
                 scoring: Scoring, cfg: EvalConfig, log: Any, rid: str | None, test: str | Path, test_sha: str,
                 limit: int | None, on_progress: ProgressCallback | None) -> dict[str, Any] | None:
    """Every variant on the same rows in choice mode, scored by label accuracy, logged as ``test_choice`` /
    ``test_<role>_choice`` (never ``test``: a choice scoring does not count as a look at the test set); the
    paired differences are tuned minus each other variant. None when the tuned model cannot be read."""
    labels = list(scoring.labels or ())
    choice_scoring = replace(scoring, metric="label_accuracy")
    items: dict[str, list[float]] = {}
    scored: dict[str, dict[str, Any]] = {}
    for role, var in variants:
        emit(on_progress, ProgressEvent("evaluate_test", 0, 1, message=f"choice mode: {var.label}"))
        preds = P.choose(var, var.prompts(examples), labels, device=cfg.device, on_progress=on_progress)
        if preds is None:
            continue
        res = score_texts(preds.texts, examples, choice_scoring, seed=cfg.seed)
        kind = "test_choice" if role == "tuned" else f"test_{role}_choice"
        eval_id = log.log_evaluation(rid, kind, metric="label_accuracy", value=res.quality, ci=res.ci95, n=res.n,
                                     test_sha256=test_sha, details={"variant": var.label, "mode": "choice",
                                                                    "test": str(test), "limit": limit,
                                                                    "test_rows": len(all_examples),
                                                                    "labels": len(labels), **preds.summary()})
        P.log_predictions(log, rid, eval_id, examples, preds, res.per_item)
        items[role] = res.per_item
        scored[role] = {"quality": res.quality, "ci95": list(res.ci95), "n": res.n, "variant": var.label,
                        "eval_id": eval_id}
    if "tuned" not in scored:
        return None
    vs = {role: {**scored[role], **paired(items[role], items["tuned"], cfg.seed)}
          for role in ("base", "prompt_baseline") if role in scored}
    return {"mode": "choice", "metric": "label_accuracy", "labels": len(labels), **scored["tuned"], "vs": vs,
            "decides": False,
            "note": "each allowed label scored by its log-likelihood (never an invented label); free generation, "
                    "as the model will be served, decides"}
