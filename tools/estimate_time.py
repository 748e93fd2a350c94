"""How long a long job will take on this machine, from what this machine measured (issue 26).

The pace of the last prompt baselines (seconds per scored row and prompt variant) and of the last training runs
(seconds per optimizer step) is read from the run log, from runs of the same task shape first (a code task's
replies are ten times a label's, so its pace is too); the cost table (``knowledge`` ``cost.check_run.cpu``,
measured once on a 2-core CPU) is the fallback when nothing was measured here yet.

The load matters: a job on a 2-core machine that something else keeps busy gets about half of it. Each pace
is stored with the load when its job started, brought back to an idle machine by ``load_factor`` (cores plus
load, over cores) and scaled by the factor of the load now. After a job, ``record`` stores the estimate beside
the time it took (run-log table ``time_estimates``), which the next estimate reads and
``benchmarks/estimate_error.py`` reports as the estimate's error.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

LAST_RUNS = 5  # the pace is the median of this many latest measured runs


@dataclass
class Pace:
    """Seconds per unit of work (``unit``: "row x variant" or "step"), where it comes from, and the load now."""

    seconds_per_unit: float  # at the load now
    unit: str
    source: str  # "measured" (this machine's run log) or "table" (the cost table)
    runs: int  # measured runs it is the median of (0 for the table)
    load_1m: float | None
    cpus: int
    shape: str | None = None  # the task shape the measured runs had (None: any shape)
    idle_seconds_per_unit: float | None = None  # the same pace on an idle machine
    carried_over: bool = False  # measured on other task shapes, carried over by the cost table's ratio

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def note(self) -> str:
        """Where the number comes from, in words, for the line that states the estimate."""
        runs = f"{self.runs} {self.shape + ' ' if self.shape else ''}run{'s' if self.runs != 1 else ''}"
        carried = " (other task shapes, carried over by the cost table's ratio)" if self.carried_over else ""
        where = (f"this machine's last {runs}{carried}" if self.source == "measured"
                 else "the cost table (nothing measured here yet)")
        load = f", load {self.load_1m:.1f} on {self.cpus} cores" if self.load_1m is not None else ""
        return f"{self.seconds_per_unit:.2g} s a {self.unit} from {where}{load}"


def load_now() -> tuple[float | None, int]:
    """The 1-minute load average (None where the OS has none) and the CPU count."""
    try:
        load: float | None = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    return load, os.cpu_count() or 1


def load_factor(load: float | None, cpus: int) -> float:
    """How much slower a job runs than on an idle machine when ``load`` other work wants the ``cpus`` cores:
    (cores + load) / cores, so 1 when idle and 2 when another job keeps every core busy."""
    return (cpus + max(0.0, load or 0.0)) / max(1, cpus)


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def row_variants(result: dict[str, Any]) -> int:
    """Rows x prompt variants a prompt-baseline result scored (each variant's own ``n`` when it stopped early)."""
    variants = [v for v in (result.get("variants") or []) if isinstance(v, dict)]
    counted = sum(int(v.get("n") or 0) for v in variants)
    if counted:
        return counted
    return int(result.get("n") or 0) * max(1, len(variants))


def prompt_pace(log: Any = None, *, shape: str | None = None) -> Pace:
    """Seconds per scored row and variant now, from this machine's last prompt baselines: of ``shape`` when
    there are some; else of other shapes, carried over by the cost table's ratio between the shapes; else the
    cost table itself."""
    from tools.runlog import RunLog

    log = log or RunLog()
    done = _recorded(log, "prompt_eval")
    if not done:  # older logs: prompt baselines in tool_calls, no load or shape recorded (taken as idle)
        rows = log.query("SELECT duration_s, result FROM tool_calls WHERE name = 'prompt_eval' AND status = 'ok' "
                         "AND duration_s > 0 ORDER BY started_at DESC LIMIT ?", [LAST_RUNS])
        for r in rows:
            result = _decoded(r.get("result"))
            units = row_variants(result) if isinstance(result, dict) else 0
            if units:
                done.append((float(r["duration_s"]) / units, None))
    return _pace(done, "row x variant", _prompt_table, shape)


def train_pace(log: Any = None, *, shape: str | None = None) -> Pace:
    """Seconds per optimizer step now, from this machine's last training runs (of ``shape`` first), else the
    cost table."""
    from tools.runlog import RunLog

    log = log or RunLog()
    done = _recorded(log, "train")
    if not done:
        rows = log.query("SELECT train_seconds, steps FROM runs WHERE kind = 'train' AND steps > 0 AND "
                         "train_seconds > 0 ORDER BY started_at DESC LIMIT ?", [LAST_RUNS])
        done = [(float(r["train_seconds"]) / int(r["steps"]), None) for r in rows]
    return _pace(done, "step", lambda _shape: _table()["seconds_per_step"], shape)


def _table() -> dict[str, Any]:
    import knowledge

    return dict(knowledge.rule("cost.check_run.cpu").raw)


def _prompt_table(shape: str | None) -> float:
    """The cost table's seconds per row and variant for ``shape`` (its own number when measured, else the
    general one)."""
    table = _table()
    by_shape = table.get("seconds_per_prompt_row_variant_by_shape") or {}
    return float(by_shape.get(shape or "", table["seconds_per_prompt_row_variant"]))


def _recorded(log: Any, kind: str) -> list[tuple[float, str | None]]:
    """(idle-machine seconds per unit, task shape) of the jobs of ``kind`` recorded last, per shape."""
    rows = log.query("SELECT actual_s, units, load_1m, cpus, shape, row_number() OVER (PARTITION BY shape "
                     "ORDER BY created_at DESC) AS k FROM time_estimates WHERE kind = ? AND units > 0 AND "
                     "actual_s > 0 QUALIFY k <= ?", [kind, LAST_RUNS])
    return [(float(r["actual_s"]) / int(r["units"]) / load_factor(r.get("load_1m"), int(r.get("cpus") or 1)),
             r.get("shape")) for r in rows]


def _pace(done: list[tuple[float, str | None]], unit: str, table: Callable[[str | None], float],
          shape: str | None) -> Pace:
    load, cpus = load_now()
    factor = load_factor(load, cpus)
    same = [x for x, sh in done if shape is not None and sh == shape]
    if same:
        base = statistics.median(same)
        return Pace(base * factor, unit, "measured", len(same), load, cpus, shape=shape, idle_seconds_per_unit=base)
    if done:  # other shapes (or unknown ones): how this machine compares with the table, applied to this shape
        speed = statistics.median(x / table(sh) for x, sh in done)
        base = table(shape) * speed
        return Pace(base * factor, unit, "measured", len(done), load, cpus, idle_seconds_per_unit=base,
                    carried_over=shape is not None)
    return Pace(table(shape) * factor, unit, "table", 0, load, cpus, shape=shape, idle_seconds_per_unit=table(shape))


def record(kind: str, *, estimate_s: float | None, actual_s: float, units: int | None, pace: Pace | None = None,
           shape: str | None = None, session_id: str | None = None, run_id: str | None = None) -> None:
    """Store a job's estimate beside the time it took, with its units (rows x variants, steps), task shape and
    the load when it started (``pace``'s, taken before the job); a run log that cannot be written only loses
    the record."""
    from tools.runlog import RunLog, RunLogError, log_warning

    load, cpus = (pace.load_1m, pace.cpus) if pace is not None else load_now()
    try:
        RunLog().log_time_estimate(kind, estimate_s=estimate_s, actual_s=actual_s, units=units,
                                   source=pace.source if pace else None, session_id=session_id, run_id=run_id,
                                   load_1m=load, cpus=cpus, shape=shape)
    except RunLogError as e:
        log_warning(f"the time estimate was not recorded: {e.what}")
