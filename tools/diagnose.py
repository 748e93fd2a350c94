"""Read a run's loss curves and name what went wrong, with the seed's fixes as a concrete next config.

Signs (knowledge/diagnosis.yaml ``warning_signs`` and ``epoch_signs``) map to the seed's five common
issues: overfitting (train falls while validation rises), a learning rate that is too high (oscillation,
divergence, NaN; the first fix for forgetting is a lower rate), too low (a flat curve; poor quality),
not converged (both curves still falling: too few epochs), out of memory, or healthy. Thresholds live in
knowledge/training.yaml (``train.curves``).
"""

from __future__ import annotations

import contextlib
import functools
import math
from importlib.resources import files
from statistics import mean
from typing import Any

import yaml


@functools.cache
def thresholds() -> dict[str, Any]:
    raw = yaml.safe_load(files("knowledge").joinpath("training.yaml").read_text(encoding="utf-8"))
    return dict(raw["curve_analysis"])


def _fix(issue_id: str, fix_suffix: str) -> dict[str, Any]:
    """A fix row from diagnosis.yaml as a plain dict (id, text, params)."""
    from knowledge import load

    for issue in load().diagnosis.issues:
        if issue.id == issue_id:
            for f in issue.fixes:
                if f.id.endswith(fix_suffix):
                    return {"id": f.id, "text": f.text, "params": dict(f.params or {})}
    return {"id": f"{issue_id}.fix.{fix_suffix}", "text": fix_suffix, "params": {}}


def _issue_text(issue_id: str) -> str:
    from knowledge import rule

    try:
        return rule(issue_id).text
    except Exception:  # noqa: BLE001
        return issue_id


def _lr_range(config: dict[str, Any]) -> tuple[float, float] | None:
    from knowledge import lookup

    try:
        adv = lookup.lr_for(float(config.get("_params_b") or 0.135), config.get("method") or "lora")
        return adv.lr_min, adv.lr_max
    except Exception:  # noqa: BLE001
        return None


def analyse(train: list[tuple[int, float]], val: list[tuple[int, float]], *, config: dict[str, Any] | None = None,
            status: str | None = None, error: str | None = None) -> dict[str, Any]:
    """Diagnose from (step, loss) series. Returns ``verdict``, ``issues``, ``next_config``, ``rule_ids``."""
    th = thresholds()
    config = config or {}
    lr = float(config.get("learning_rate") or 2e-4)
    epochs = float(config.get("num_train_epochs") or 3)
    issues: list[dict[str, Any]] = []
    nxt: dict[str, Any] = {}
    evidence: dict[str, Any] = {"train_points": len(train), "val_points": len(val)}

    if status == "failed" and error and "out of memory" in error.lower():
        from tools.train.config import TrainConfig
        from tools.train.core import oom_fixes

        fixes = oom_fixes(TrainConfig.from_dict(config))
        for _, params in fixes[:1]:
            nxt.update(params)
        issues.append({"id": "diag.out_of_memory", "sign": "diag.out_of_memory.sym.cuda_oom",
                       "text": _issue_text("diag.out_of_memory"), "evidence": {"error": error.splitlines()[0]},
                       "fixes": [{"id": rid, "params": p} for rid, p in fixes]})
        return _result("out_of_memory", issues, nxt, evidence)

    losses = [v for _, v in train]
    if any(not math.isfinite(v) for v in losses):
        bad = next(s for s, v in train if not math.isfinite(v))
        return _result("diverged", [_lr_high(lr, config, {"non_finite_at_step": bad}, nxt)], nxt, evidence)
    if len(losses) < th["min_train_points"]:
        return _result("too_short", [], {}, evidence | {"note": f"fewer than {th['min_train_points']} logged steps"})

    w = max(2, int(len(losses) * th["window_fraction"]))
    first, last = mean(losses[:w]), mean(losses[-w:])
    drop = (first - last) / max(abs(first), 1e-9)
    diffs = [b - a for a, b in zip(losses, losses[1:], strict=False)]
    moved = sum(abs(d) for d in diffs) or 1e-9
    up_share = sum(d for d in diffs if d > 0) / moved
    amplitude = mean(abs(d) for d in diffs) / max(mean(losses), 1e-9)
    evidence.update(train_first=round(first, 4), train_last=round(last, 4), train_relative_drop=round(drop, 4),
                    up_share=round(up_share, 3), amplitude=round(amplitude, 4))

    if -drop >= th["diverge_relative_rise"] or (up_share >= th["oscillation_up_share"]
                                                and amplitude >= th["oscillation_amplitude"]):
        verdict = "lr_too_high"
        issues.append(_lr_high(lr, config, {"train_relative_drop": round(drop, 4), "up_share": round(up_share, 3)},
                               nxt))
        return _result(verdict, issues, nxt, evidence)

    if drop < th["flat_relative_drop"]:
        rng = _lr_range(config)
        new_lr = lr * th["lr_step_up"]
        if rng and config.get("method") in ("lora", "qlora"):
            new_lr = min(new_lr, rng[1])
        fix = _fix("diag.poor_quality", "higher_lr")
        nxt["learning_rate"] = new_lr if new_lr > lr else lr
        issues.append({"id": "diag.poor_quality", "sign": "diag.sign.not_decreasing", "rule_ids": ["hp.lr.too_low"],
                       "text": _issue_text("diag.sign.not_decreasing"),
                       "evidence": {"train_relative_drop": round(drop, 4)},
                       "fixes": [fix | {"params": {"learning_rate": nxt["learning_rate"]}},
                                 _fix("diag.poor_quality", "check_data")]})
        return _result("lr_too_low", issues, nxt, evidence)

    if len(val) >= th["min_val_points"]:
        vals = [v for _, v in val]
        best_i = min(range(len(vals)), key=vals.__getitem__)
        best, end = vals[best_i], vals[-1]
        rise = end - best
        evidence.update(val_best=round(best, 4), val_best_step=val[best_i][0], val_last=round(end, 4))
        if best_i < len(vals) - 1 and rise >= th["overfit_min_rise"] and rise >= th["overfit_relative_rise"] * best:
            frac = val[best_i][0] / max(val[-1][0], 1)
            nxt["num_train_epochs"] = max(1, math.ceil(epochs * frac))
            nxt["weight_decay"] = 0.1
            nxt["early_stopping_patience"] = 3
            issues.append({"id": "diag.overfitting", "sign": "diag.sign.overfitting",
                           "rule_ids": ["diag.epochs.too_many"], "text": _issue_text("diag.sign.overfitting"),
                           "evidence": {"val_best": round(best, 4), "val_best_step": val[best_i][0],
                                        "val_last": round(end, 4)},
                           "fixes": [_fix("diag.overfitting", "fewer_epochs") | {"params": {
                               "num_train_epochs": nxt["num_train_epochs"]}},
                               _fix("diag.overfitting", "weight_decay"), _fix("diag.overfitting", "early_stopping")]})
            return _result("overfitting", issues, nxt, evidence)
        k = min(3, len(vals) - 1)
        still = vals[-1 - k] - end
        if best_i == len(vals) - 1 and still >= th["unfinished_min_drop"]:
            from knowledge import lookup

            cap = None
            with contextlib.suppress(Exception):
                cap = lookup.epochs_for(int(config.get("_n_train") or 0)).max_epochs
            more = epochs * 2 if cap is None else min(max(epochs * 2, epochs + 1), max(cap, epochs + 1))
            nxt["num_train_epochs"] = more
            issues.append({"id": "diag.poor_quality", "sign": "diag.epochs.too_few", "rule_ids": ["diag.epochs.too_few"],
                           "text": _issue_text("diag.epochs.too_few"),
                           "evidence": {"val_drop_last_evals": round(still, 4)},
                           "fixes": [_fix("diag.poor_quality", "more_epochs") | {"params": {"num_train_epochs": more}}]})
            return _result("not_converged", issues, nxt, evidence)
    return _result("healthy", [], {}, evidence)


def _lr_high(lr: float, config: dict[str, Any], ev: dict[str, Any], nxt: dict[str, Any]) -> dict[str, Any]:
    th = thresholds()
    new_lr = lr * th["lr_step_down"]
    rng = _lr_range(config)
    if rng and config.get("method") in ("lora", "qlora"):
        new_lr = max(min(new_lr, rng[0]), rng[0] * th["lr_step_down"]) if lr <= rng[0] else max(new_lr, rng[0])
    nxt["learning_rate"] = float(f"{new_lr:.3g}")
    return {"id": "diag.catastrophic_forgetting", "sign": "diag.sign.oscillating", "rule_ids": ["hp.lr.too_high"],
            "text": _issue_text("diag.sign.oscillating"), "evidence": ev,
            "fixes": [_fix("diag.catastrophic_forgetting", "lower_lr") | {"params": {"learning_rate": nxt["learning_rate"]}}]}


_VERDICT_TEXT = {
    "healthy": "Training loss fell steadily and validation loss fell then levelled off.",
    "overfitting": "Validation loss rose after its best point while training loss kept falling: overfitting.",
    "lr_too_high": "The training loss oscillates or climbs: the learning rate is too high.",
    "diverged": "The loss became NaN or infinite: the learning rate is too high (or the data has a broken row).",
    "lr_too_low": "The training loss hardly fell: the learning rate is too low, or the data is faulty.",
    "not_converged": "Both losses were still falling at the end: train longer.",
    "out_of_memory": "The run ran out of memory.",
    "too_short": "Too few logged steps to judge the curves.",
}


def _result(verdict: str, issues: list[dict[str, Any]], nxt: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
    ids = ["train.curves"]
    for i in issues:
        ids += [i["id"], i.get("sign", "")] + list(i.get("rule_ids", [])) + [f["id"] for f in i.get("fixes", [])]
    if verdict == "healthy":
        ids.append("diag.healthy")
    return {"verdict": verdict, "summary": _VERDICT_TEXT.get(verdict, verdict), "issues": issues,
            "next_config": nxt, "evidence": evidence, "rule_ids": list(dict.fromkeys(x for x in ids if x))}


def diagnose(run_id: str) -> dict[str, Any]:
    """Diagnose a training run from the run log (``tunewise diagnose RUN_ID``)."""
    from tools.runlog import RunLog

    log = RunLog()
    run = log.find_run(run_id)
    rows = log.metrics(run["run_id"])
    train = [(int(r["step"]), float(r["value"])) for r in rows if r["split"] == "train" and r["name"] == "loss"]
    val = [(int(r["step"]), float(r["value"])) for r in rows if r["split"] == "val" and r["name"] == "loss"]
    cfg = run.get("config") or {}
    summary = run.get("summary") or {}
    facts = {"_n_train": summary.get("train_examples"), "_params_b": (summary.get("estimate") or {}).get("params_b")}
    out = analyse(train, val, config=cfg | facts, status=run.get("status"), error=run.get("error"))
    out["run_id"] = run["run_id"]
    out["status"] = run.get("status")
    if out["next_config"]:
        out["next_command"] = "tunewise train " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in
            ({"train": cfg.get("train"), "val": cfg.get("val"), "method": cfg.get("method"),
              "model": cfg.get("model")} | out["next_config"]).items() if v is not None)
    return out


def nan_diagnosis(nan: dict[str, Any], config: Any) -> dict[str, Any]:
    """What to do after the loss became NaN/inf: a lower learning rate (hp.lr.too_high)."""
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    nxt: dict[str, Any] = {}
    issue = _lr_high(float(cfg.get("learning_rate") or 2e-4), cfg, {"non_finite_at_step": nan.get("step"),
                                                                    "loss": nan.get("loss")}, nxt)
    res = _result("diverged", [issue], nxt, {"step": nan.get("step")})
    res["fix"] = (f"lower the learning rate to {nxt['learning_rate']:g} (hp.lr.too_high); check the data for broken "
                  f"rows; keep max_grad_norm at 1.0")
    return res
