"""The forgetting check: the base and the tuned model answer the same general questions; did the tune keep them?"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from tools.errors import InputError, where
from tools.evaluate import predictions as P
from tools.evaluate.config import EvalConfig
from tools.prompt.variants import base_variant, parse_variant
from tools.scoring import metrics as M
from tools.scoring.rows import spread
from tools.types import ProgressCallback, ProgressEvent, emit

PROBES_FILE = Path(str(files("knowledge") / "probes" / "general.jsonl"))  # the shipped general probe set
PROBE_CHECKS = ("exact", "contains", "number", "regex", "any_of")
FORGETTING_FIXES = ("diag.catastrophic_forgetting.fix.lower_lr", "diag.catastrophic_forgetting.fix.fewer_epochs",
                    "diag.catastrophic_forgetting.fix.lora", "diag.catastrophic_forgetting.fix.mix_general_data")


@dataclass
class ForgettingResult:
    """``forgetting``'s result: base and tuned scores on the same probes with CIs, the drop, McNemar's test,
    per-category scores, the probes lost, and the fixes when degraded. ``to_dict()`` keeps the JSON keys."""

    probes: int
    probes_total: int
    limit: int | None
    base_score: float
    tuned_score: float
    drop: float
    verdict: str
    degraded: bool
    base_ci95: list[float]
    tuned_ci95: list[float]
    mcnemar: dict[str, float]
    lost: int
    gained: int
    changed: int
    tolerance: float
    categories: dict[str, dict[str, Any]]
    base: str
    tuned: str
    fixes: list[dict[str, str]]
    probe_file: str
    rule_ids: list[str] = field(default_factory=lambda: ["eval.forgetting_check", "diag.catastrophic_forgetting"])
    items: list[dict[str, Any]] = field(default_factory=list)  # last: the JSON document's key order

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """Does a model's answer pass the probe's check? (Scoring lives in tools.scoring.metrics.)"""
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
               limit: int | None = None) -> ForgettingResult:
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
        base_variant(tuned.source_run) if tuned.kind == "tuned" else replace(tuned, label=f"base:{tuned.spec.label if tuned.spec else tuned.label}"))
    all_items = load_probes(probes)
    items = spread(all_items, limit)
    prompts = [[*([{"role": "system", "content": it["system"]}] if it.get("system") else []),
                {"role": "user", "content": it["question"]}] for it in items]
    answers = {}
    for role, var in (("base", base_var), ("tuned", tuned)):
        emit(on_progress, ProgressEvent("forgetting", 0 if role == "base" else 1, 2, message=var.label))
        answers[role] = P.predict(var, prompts, max_new_tokens=cfg.probe_max_new_tokens, batch_size=cfg.batch_size,
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
    result = ForgettingResult(**{
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
    })
    RunLog().log_evaluation(tuned.source_run, "forgetting", metric="probe_accuracy", value=tuned_score,
                            ci=result.tuned_ci95, n=n, details=result.to_dict())
    return result

