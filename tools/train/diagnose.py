"""Read a run's loss curves and name what went wrong, with the seed's fixes as a concrete next config.

Signs (knowledge/diagnosis.yaml ``warning_signs`` and ``epoch_signs``) map to the seed's five common
issues: overfitting (train falls while validation rises), a learning rate that is too high (oscillation,
divergence, NaN; the first fix for forgetting is a lower rate), too low (a flat curve; poor quality),
not converged (both curves still falling: too few epochs), out of memory, or healthy. Thresholds live in
knowledge/training.yaml (``train.curves``). The out-of-memory fixes the trainer suggests and retries are
built here, from the ``diag.out_of_memory`` row, so the knowledge and the trainer cannot drift apart.

Every result is a ``Diagnosis`` (``to_dict()`` is the ``--json`` document); each issue names the knowledge
``rule`` that fired.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from statistics import mean
from typing import Any

import yaml


@dataclass
class DiagnosisFix:
    """One knowledge-base fix (``diag.*.fix.*``) with the parameters it sets."""

    id: str
    text: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class DiagnosisIssue:
    """A problem found in a run: the knowledge issue ``id``, the ``rule`` (sign) that fired, its evidence and
    the ordered fixes."""

    id: str
    rule: str
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fixes: list[DiagnosisFix] = field(default_factory=list)
    rule_ids: list[str] = field(default_factory=list)

    @property
    def sign(self) -> str:
        return self.rule

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sign"] = self.rule  # the key older documents used for the rule
        return d


@dataclass
class Diagnosis:
    """What a run's curves (or its failure) say: a ``verdict``, the issues, a ``next_config`` of TrainConfig
    fields to change, the evidence and every rule id cited."""

    verdict: str
    summary: str
    issues: list[DiagnosisIssue] = field(default_factory=list)
    next_config: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    rule_ids: list[str] = field(default_factory=list)
    run_id: str | None = None
    status: str | None = None
    next_command: str | None = None
    fix: str | None = None  # one sentence, for a run that failed (NaN)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["issues"] = [i.to_dict() for i in self.issues]
        return d


@functools.cache
def _training_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load(files("knowledge").joinpath("training.yaml").read_text(encoding="utf-8")))


def knowledge_row(key: str) -> dict[str, Any]:
    """A row of knowledge/training.yaml (``curve_analysis``, ``heartbeat``)."""
    return dict(_training_yaml()[key])


def thresholds() -> dict[str, Any]:
    """The curve-reading thresholds (``train.curves``)."""
    return knowledge_row("curve_analysis")


def _fix(issue_id: str, fix_suffix: str, params: dict[str, Any] | None = None) -> DiagnosisFix:
    """A fix row from diagnosis.yaml; ``params`` (the values worked out for this run) replace the row's."""
    from knowledge import load

    for issue in load().diagnosis.issues:
        if issue.id == issue_id:
            for f in issue.fixes:
                if f.id.endswith(fix_suffix):
                    return DiagnosisFix(f.id, f.text, dict(f.params or {}) if params is None else params)
    return DiagnosisFix(f"{issue_id}.fix.{fix_suffix}", fix_suffix, params or {})


def _issue_text(issue_id: str) -> str:
    from knowledge import rule

    try:
        return rule(issue_id).text
    except Exception:  # noqa: BLE001
        return issue_id


def _lr_range(config: Mapping[str, Any]) -> tuple[float, float] | None:
    from knowledge import lookup

    try:
        adv = lookup.lr_for(float(config.get("_params_b") or 0.135), config.get("method") or "lora")
        return adv.lr_min, adv.lr_max
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------- out of memory

def _cheaper(current: Any, target: Any) -> bool:
    """Does setting ``target`` where the config has ``current`` save memory? (Booleans switch a saving on;
    numbers go down; anything else, a method name, just has to change.)"""
    if isinstance(target, bool):
        return target and not current
    if isinstance(target, int | float):
        return current is None or current > target
    return bool(current != target)


def oom_fixes(config: Mapping[str, Any]) -> list[DiagnosisFix]:
    """The ``diag.out_of_memory`` fixes, in the knowledge base's order, that would make this run cheaper.

    ``config`` is a TrainConfig's ``to_dict()``. A fix applies when its method list (if any) names the run's
    method and its first parameter (the memory lever: method, batch, checkpointing, sequence length) would
    lower the cost; only parameters that are config fields are kept (not ``expected_memory_reduction``)."""
    from knowledge import load

    issue = next(i for i in load().diagnosis.issues if i.id == "diag.out_of_memory")
    out: list[DiagnosisFix] = []
    for f in issue.fixes:
        if f.applies_to_methods and config.get("method") not in f.applies_to_methods:
            continue
        params = {k: v for k, v in (f.params or {}).items() if k in config}
        if not params:
            continue
        lever = next(iter(params))
        if _cheaper(config.get(lever), params[lever]):
            out.append(DiagnosisFix(f.id, f.text, params))
    return out


def oom_fix_text(config: Mapping[str, Any]) -> str:
    """What to do after an out-of-memory failure, as one sentence naming each fix and its rule."""
    fixes = oom_fixes(config)
    if not fixes:
        return "use a smaller model (diag.out_of_memory.fix.smaller_model)"
    words = [", ".join(f"{k}={v}" for k, v in f.params.items()) + f" ({f.id})" for f in fixes]
    return "try, in order: " + "; ".join(words) + "; or rerun with --auto-retry"


def oom_diagnosis(config: Mapping[str, Any], error: str) -> Diagnosis:
    """The diagnosis of a run that ran out of memory: the first applicable fix is the next config."""
    fixes = oom_fixes(config)
    nxt = dict(fixes[0].params) if fixes else {}
    issue = DiagnosisIssue("diag.out_of_memory", "diag.out_of_memory.sym.cuda_oom", _issue_text("diag.out_of_memory"),
                           {"error": error.splitlines()[0] if error else ""}, fixes)
    return _result("out_of_memory", [issue], nxt, {})


def analyse(train: list[tuple[int, float]], val: list[tuple[int, float]], *,
            config: Mapping[str, Any] | None = None, status: str | None = None, error: str | None = None,
            failure: str | None = None) -> Diagnosis:
    """Diagnose from (step, loss) series and, for a failed run, its failure (``out_of_memory``) or error text."""
    th = thresholds()
    config = dict(config or {})
    lr = float(config.get("learning_rate") or 2e-4)
    epochs = float(config.get("num_train_epochs") or 3)
    nxt: dict[str, Any] = {}
    evidence: dict[str, Any] = {"train_points": len(train), "val_points": len(val)}

    if failure == "out_of_memory" or (status == "failed" and error and "out of memory" in error.lower()):
        d = oom_diagnosis(config, error or "")
        d.evidence = evidence | d.evidence
        return d

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
        issue = _lr_high(lr, config, {"train_relative_drop": round(drop, 4), "up_share": round(up_share, 3)}, nxt)
        return _result("lr_too_high", [issue], nxt, evidence)

    if drop < th["flat_relative_drop"]:
        rng = _lr_range(config)
        new_lr = lr * th["lr_step_up"]
        if rng and config.get("method") in ("lora", "qlora"):
            new_lr = min(new_lr, rng[1])
        nxt["learning_rate"] = new_lr if new_lr > lr else lr
        issue = DiagnosisIssue("diag.poor_quality", "diag.sign.not_decreasing", _issue_text("diag.sign.not_decreasing"),
                               {"train_relative_drop": round(drop, 4)},
                               [_fix("diag.poor_quality", "higher_lr", {"learning_rate": nxt["learning_rate"]}),
                                _fix("diag.poor_quality", "check_data")], ["hp.lr.too_low"])
        return _result("lr_too_low", [issue], nxt, evidence)

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
            issue = DiagnosisIssue(
                "diag.overfitting", "diag.sign.overfitting", _issue_text("diag.sign.overfitting"),
                {"val_best": round(best, 4), "val_best_step": val[best_i][0], "val_last": round(end, 4)},
                [_fix("diag.overfitting", "fewer_epochs", {"num_train_epochs": nxt["num_train_epochs"]}),
                 _fix("diag.overfitting", "weight_decay"), _fix("diag.overfitting", "early_stopping")],
                ["diag.epochs.too_many"])
            return _result("overfitting", [issue], nxt, evidence)
        k = min(3, len(vals) - 1)
        still = vals[-1 - k] - end
        if best_i == len(vals) - 1 and still >= th["unfinished_min_drop"]:
            from knowledge import lookup

            cap = None
            with contextlib.suppress(Exception):
                cap = lookup.epochs_for(int(config.get("_n_train") or 0)).max_epochs
            more = epochs * 2 if cap is None else min(max(epochs * 2, epochs + 1), max(cap, epochs + 1))
            nxt["num_train_epochs"] = more
            issue = DiagnosisIssue("diag.poor_quality", "diag.epochs.too_few", _issue_text("diag.epochs.too_few"),
                                   {"val_drop_last_evals": round(still, 4)},
                                   [_fix("diag.poor_quality", "more_epochs", {"num_train_epochs": more})],
                                   ["diag.epochs.too_few"])
            return _result("not_converged", [issue], nxt, evidence)
    return _result("healthy", [], {}, evidence)


def _lr_high(lr: float, config: Mapping[str, Any], ev: dict[str, Any], nxt: dict[str, Any]) -> DiagnosisIssue:
    th = thresholds()
    new_lr = lr * th["lr_step_down"]
    rng = _lr_range(config)
    if rng and config.get("method") in ("lora", "qlora"):
        new_lr = max(min(new_lr, rng[0]), rng[0] * th["lr_step_down"]) if lr <= rng[0] else max(new_lr, rng[0])
    nxt["learning_rate"] = float(f"{new_lr:.3g}")
    return DiagnosisIssue("diag.catastrophic_forgetting", "diag.sign.oscillating",
                          _issue_text("diag.sign.oscillating"), ev,
                          [_fix("diag.catastrophic_forgetting", "lower_lr", {"learning_rate": nxt["learning_rate"]})],
                          ["hp.lr.too_high"])


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


def _result(verdict: str, issues: list[DiagnosisIssue], nxt: dict[str, Any], evidence: dict[str, Any]) -> Diagnosis:
    ids = ["train.curves"]
    for i in issues:
        ids += [i.id, i.rule, *i.rule_ids, *(f.id for f in i.fixes)]
    if verdict == "healthy":
        ids.append("diag.healthy")
    return Diagnosis(verdict, _VERDICT_TEXT.get(verdict, verdict), issues, nxt, evidence,
                     list(dict.fromkeys(x for x in ids if x)))


def diagnose(run_id: str) -> Diagnosis:
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
    out = analyse(train, val, config=cfg | facts, status=run.get("status"), error=run.get("error"),
                  failure=summary.get("failure"))
    out.run_id = run["run_id"]
    out.status = run.get("status")
    if out.next_config:
        import shlex

        from tools.train.config import cli_args  # option names live on TrainConfig's fields

        keep = {k: cfg.get(k) for k in ("train", "val", "method", "model")}
        out.next_command = shlex.join(["tunewise", "train", *cli_args(keep | out.next_config)])
    return out


def nan_diagnosis(nan: Mapping[str, Any], config: Mapping[str, Any]) -> Diagnosis:
    """What to do after the loss became NaN/inf: a lower learning rate (hp.lr.too_high)."""
    nxt: dict[str, Any] = {}
    issue = _lr_high(float(config.get("learning_rate") or 2e-4), config,
                     {"non_finite_at_step": nan.get("step"), "loss": nan.get("loss")}, nxt)
    res = _result("diverged", [issue], nxt, {"step": nan.get("step")})
    res.fix = (f"lower the learning rate to {nxt['learning_rate']:g} (hp.lr.too_high); check the data for broken "
               f"rows; keep max_grad_norm at 1.0")
    return res
