"""How long a long job will take on this machine, from what this machine measured (issue 26).

The pace of the last prompt baselines (seconds per scored row and prompt variant) and of the last training runs
(seconds per optimizer step) is read from the run log; the cost table (``knowledge`` ``cost.check_run.cpu``,
measured once on a 2-core CPU) is the fallback when nothing was measured here yet. The load average now is
reported beside every estimate (a machine shared with other work runs slower than its last runs did). After a
job, ``record`` stores the estimate beside the time it took (run-log table ``time_estimates``), which
``benchmarks/estimate_error.py`` reads back as the estimate's error.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass
from typing import Any

LAST_RUNS = 5  # the pace is the median of this many latest measured runs


@dataclass
class Pace:
    """Seconds per unit of work (``unit``: "row x variant" or "step"), where it comes from, and the load now."""

    seconds_per_unit: float
    unit: str
    source: str  # "measured" (this machine's run log) or "table" (the cost table)
    runs: int  # measured runs it is the median of (0 for the table)
    load_1m: float | None
    cpus: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def note(self) -> str:
        """Where the number comes from, in words, for the line that states the estimate."""
        where = (f"this machine's last {self.runs} run{'s' if self.runs != 1 else ''}" if self.source == "measured"
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


def prompt_pace(log: Any = None) -> Pace:
    """Seconds per scored row and variant, from the last prompt baselines in the run log (else the table)."""
    from tools.runlog import RunLog

    log = log or RunLog()
    rows = log.query("SELECT duration_s, result FROM tool_calls WHERE name = 'prompt_eval' AND status = 'ok' "
                     "AND duration_s > 0 ORDER BY started_at DESC LIMIT ?", [LAST_RUNS])
    per = []
    for r in rows:
        result = _decoded(r.get("result"))
        units = row_variants(result) if isinstance(result, dict) else 0
        if units:
            per.append(float(r["duration_s"]) / units)
    return _pace(per, "row x variant", "seconds_per_prompt_row_variant")


def train_pace(log: Any = None) -> Pace:
    """Seconds per optimizer step, from the last training runs in the run log (else the table)."""
    from tools.runlog import RunLog

    log = log or RunLog()
    rows = log.query("SELECT train_seconds, steps FROM runs WHERE kind = 'train' AND steps > 0 AND train_seconds > 0 "
                     "ORDER BY started_at DESC LIMIT ?", [LAST_RUNS])
    return _pace([float(r["train_seconds"]) / int(r["steps"]) for r in rows], "step", "seconds_per_step")


def _pace(measured: list[float], unit: str, table_key: str) -> Pace:
    import knowledge

    load, cpus = load_now()
    if measured:
        return Pace(statistics.median(measured), unit, "measured", len(measured), load, cpus)
    table = float(knowledge.rule("cost.check_run.cpu").raw[table_key])
    return Pace(table, unit, "table", 0, load, cpus)


def record(kind: str, *, estimate_s: float | None, actual_s: float, units: int | None, pace: Pace | None = None,
           session_id: str | None = None, run_id: str | None = None) -> None:
    """Store a job's estimate beside the time it took; a run log that cannot be written only loses the record."""
    from tools.runlog import RunLog, RunLogError, log_warning

    load, cpus = load_now()
    try:
        RunLog().log_time_estimate(kind, estimate_s=estimate_s, actual_s=actual_s, units=units,
                                   source=pace.source if pace else None, session_id=session_id, run_id=run_id,
                                   load_1m=load, cpus=cpus)
    except RunLogError as e:
        log_warning(f"the time estimate was not recorded: {e.what}")
