"""The seed's ROI formula (knowledge rule ``roi.formula``) on the user's numbers, filled from a run's log."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tools.errors import InputError


@dataclass
class RoiResult:
    """``roi``'s result: both costs, their ratio (None when prompting cost nothing), the gain needed and, when
    known, the measured gain and whether it clears the need. ``filled`` says which numbers came from a run."""

    prompt_cost: float
    fine_tune_cost: float
    ratio: float | None
    min_quality_improvement: float
    quality_gain: float | None
    worth_it: bool | None
    inputs: dict[str, float]
    filled: dict[str, str] = field(default_factory=dict)
    rule_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def roi(prompt_dev_hours: float, hourly_rate: float, data_prep_hours: float, training_cost: float | None = None, *,
        run_id: str | None = None, gpu_hour_cost: float | None = None, quality_gain: float | None = None,
        bar: float | None = None) -> RoiResult:
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
    return RoiResult(prompt_cost=r.prompt_cost, fine_tune_cost=r.fine_tune_cost, ratio=ratio,
                     min_quality_improvement=need, quality_gain=quality_gain, worth_it=worth,
                     inputs={"prompt_dev_hours": prompt_dev_hours, "hourly_rate": hourly_rate,
                             "data_prep_hours": data_prep_hours, "training_cost": training_cost},
                     filled=filled, rule_ids=list(r.rule_ids))


def _latest_test_qualities(run_id: str) -> dict[str, float]:
    from tools.runlog import RunLog

    out: dict[str, float] = {}
    rows = RunLog().query("SELECT kind, value FROM evaluations WHERE run_id = ? AND kind IN ('test', 'test_base', "
                          "'test_prompt_baseline') ORDER BY created_at DESC", [run_id])
    for r in rows:
        role = {"test": "tuned", "test_base": "base", "test_prompt_baseline": "prompt_baseline"}[r["kind"]]
        out.setdefault(role, r["value"])
    return out

