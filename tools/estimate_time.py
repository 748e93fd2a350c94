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
    fixed_seconds: float = 0.0  # at the load now: what a job costs whatever its size (fitted from runs of
    # several sizes; 0 until there are some)

    def seconds(self, units: float) -> float:
        """How long ``units`` of work take now."""
        return self.fixed_seconds + self.seconds_per_unit * units

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def note(self) -> str:
        """Where the number comes from, in words, for the line that states the estimate."""
        runs = f"{self.runs} {self.shape + ' ' if self.shape else ''}run{'s' if self.runs != 1 else ''}"
        carried = " (other task shapes, carried over by the cost table's ratio)" if self.carried_over else ""
        where = (f"this machine's last {runs}{carried}" if self.source == "measured"
                 else "the cost table (nothing measured here yet)")
        load = (f", other work on {self.load_1m:.1f} of {self.cpus} cores now" if self.load_1m is not None
                else "")
        fixed = f" + {self.fixed_seconds:.0f} s a job" if self.fixed_seconds >= 1 else ""
        return f"{self.seconds_per_unit:.2g} s a {self.unit}{fixed} from {where}{load}"


SAMPLE_S = 0.5  # how long the machine is watched before an estimate
REUSE_S = 10.0  # a sample this recent is reused (several estimates in a row watch the machine once)
_sampled: list[Any] = []


def load_now(sample_s: float = SAMPLE_S) -> tuple[float | None, int]:
    """How many cores' worth of *other* work the machine runs now, and the CPU count.

    The 1-minute load average alone misleads right after tunewise's own work (the run that just ended is still
    in it for a minute or more), so the CPU time the whole machine spent over ``sample_s`` (``/proc/stat``)
    minus this process's own is measured instead. When the other work fills every core the load average says
    how much more is waiting, and is used. None where neither can be read."""
    import time

    cpus = os.cpu_count() or 1
    if _sampled and time.monotonic() - _sampled[0] < REUSE_S:
        return _sampled[1], cpus
    try:
        avg: float | None = os.getloadavg()[0]
    except (OSError, AttributeError):
        avg = None
    busy = _busy_cores_of_others(sample_s)
    if busy is None:
        return avg, cpus
    load = max(busy, avg) if avg is not None and busy >= 0.9 * cpus else round(busy, 2)
    _sampled[:] = [time.monotonic(), load]
    return load, cpus


def _busy_cores_of_others(sample_s: float) -> float | None:
    def machine_busy() -> float | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [float(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return (sum(fields[:8]) - idle) / (os.sysconf("SC_CLK_TCK") or 100)  # busy seconds, all cores

    def mine() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    import time

    b0, m0, w0 = machine_busy(), mine(), time.monotonic()
    if b0 is None:
        return None
    time.sleep(sample_s)
    b1, m1, w1 = machine_busy(), mine(), time.monotonic()
    if b1 is None:
        return None
    return max(0.0, (b1 - b0) - (m1 - m0)) / max(1e-3, w1 - w0)


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
                done.append((float(r["duration_s"]), units, None))
    return _pace(done, "row x variant", _prompt_table, shape)


@dataclass
class PromptEstimate:
    """The prompt baseline's longest time: every one of ``rows`` rows under every prompt, at ``pace``."""

    seconds: float
    rows: int
    pace: Pace


def prompt_eval_estimate(test_set: str, *, shape: str | None = None, limit: int | None = None,
                         log: Any = None) -> PromptEstimate | None:
    """How long the prompt baseline on ``test_set`` (its first ``limit`` rows) takes at most at this machine's
    pace for ``shape`` and the load now: the plain prompt and the Step 2 variants (``cost.check_run.cpu``
    prompt_variants) on every row. The sequential rule usually stops sooner. None when the file cannot be read."""
    try:
        with open(test_set, encoding="utf-8", errors="replace") as f:
            rows = sum(1 for line in f if line.strip())
    except OSError:
        return None
    rows = min(rows, limit) if limit else rows
    pace = prompt_pace(log, shape=shape)
    return PromptEstimate(round(pace.seconds(rows * int(_table()["prompt_variants"])), 1), rows, pace)


def train_pace(log: Any = None, *, shape: str | None = None) -> Pace:
    """Seconds per optimizer step now, from this machine's last training runs (of ``shape`` first), else the
    cost table."""
    from tools.runlog import RunLog

    log = log or RunLog()
    done = _recorded(log, "train")
    if not done:
        rows = log.query("SELECT train_seconds, steps FROM runs WHERE kind = 'train' AND steps > 0 AND "
                         "train_seconds > 0 ORDER BY started_at DESC LIMIT ?", [LAST_RUNS])
        done = [(float(r["train_seconds"]), int(r["steps"]), None) for r in rows]
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


Done = list[tuple[float, int, str | None]]  # (idle-machine seconds, units, task shape) of finished jobs


def _recorded(log: Any, kind: str) -> Done:
    """The last recorded jobs of ``kind`` per task shape, their seconds brought back to an idle machine."""
    rows = log.query("SELECT actual_s, units, load_1m, cpus, shape, row_number() OVER (PARTITION BY shape "
                     "ORDER BY created_at DESC) AS k FROM time_estimates WHERE kind = ? AND units > 0 AND "
                     "actual_s > 0 QUALIFY k <= ?", [kind, LAST_RUNS])
    return [(float(r["actual_s"]) / load_factor(r.get("load_1m"), int(r.get("cpus") or 1)), int(r["units"]),
             r.get("shape")) for r in rows]


def fit(jobs: list[tuple[float, int]]) -> tuple[float, float]:
    """(fixed seconds, seconds per unit) of jobs of one kind: a straight line through (units, seconds) when they
    differ in size (a job's fixed cost, e.g. the shared prompt prefix and the label set's encoding, is then not
    spread over its rows), else the median seconds per unit and no fixed part. Neither part is negative."""
    sizes = {u for _, u in jobs}
    per_unit = statistics.median(x / u for x, u in jobs)
    if len(sizes) < 2:
        return 0.0, per_unit
    mu = statistics.fmean(u for _, u in jobs)
    mx = statistics.fmean(x for x, _ in jobs)
    slope = (sum((u - mu) * (x - mx) for x, u in jobs) / sum((u - mu) ** 2 for _, u in jobs))
    fixed = mx - slope * mu
    if slope <= 0 or fixed < 0:  # noise larger than the size effect: the plain ratio says more
        return 0.0, per_unit
    return fixed, slope


def _pace(done: Done, unit: str, table: Callable[[str | None], float], shape: str | None) -> Pace:
    load, cpus = load_now()
    factor = load_factor(load, cpus)
    same = [(x, u) for x, u, sh in done if shape is not None and sh == shape]
    if same:
        fixed, base = fit(same)
        return Pace(base * factor, unit, "measured", len(same), load, cpus, shape=shape, idle_seconds_per_unit=base,
                    fixed_seconds=fixed * factor)
    if done:  # other shapes (or unknown ones): how this machine compares with the table, applied to this shape
        speed = statistics.median(x / u / table(sh) for x, u, sh in done)
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
