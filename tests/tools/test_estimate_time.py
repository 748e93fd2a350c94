"""Time estimates from this machine's measured pace (issue 26): the run log's last prompt baselines and training
runs, the cost table when nothing was measured, and the estimate recorded beside the actual time."""

from __future__ import annotations

import json

from tools import estimate_time
from tools.runlog import RunLog, now


def _prompt_call(log: RunLog, i: int, duration_s: float, result: dict[str, object]) -> None:
    log.execute("INSERT INTO tool_calls (call_id, name, status, started_at, duration_s, result) VALUES (?, ?, ?, ?, ?, ?)",
                [f"call-{i}", "prompt_eval", "ok", now(), duration_s, json.dumps(result)])


def test_the_pace_is_the_table_until_this_machine_measured_one() -> None:
    import knowledge

    cost = knowledge.rule("cost.check_run.cpu").raw
    pace = estimate_time.prompt_pace()
    assert pace.source == "table" and pace.seconds_per_unit == cost["seconds_per_prompt_row_variant"]
    assert "cost table" in pace.note()
    assert estimate_time.train_pace().seconds_per_unit == cost["seconds_per_step"]


def test_the_pace_comes_from_the_last_measured_runs() -> None:
    log = RunLog()
    # 40 rows: the plain prompt and two variants on all of them, a third stopped early at 20 rows -> 140 units
    _prompt_call(log, 1, 280.0, {"n": 40, "variants": [{"n": 40}, {"n": 40}, {"n": 40}, {"n": 20}]})
    _prompt_call(log, 2, 100.0, {"n": 25, "variants": []})  # no per-variant counts: n x 1
    _prompt_call(log, 3, 1.0, {"error": "no result"})  # unusable: skipped
    pace = estimate_time.prompt_pace(log)
    assert pace.source == "measured" and pace.runs == 2
    assert pace.seconds_per_unit == 3.0  # median of 2.0 and 4.0
    assert "last 2 runs" in pace.note()
    log.start_run("train", config={}, method="lora", model="m", run_id="train-a")
    log.update_run("train-a", status="completed", steps=20, train_seconds=50.0)
    assert estimate_time.train_pace(log).seconds_per_unit == 2.5


def test_an_estimate_is_recorded_beside_the_time_it_took() -> None:
    estimate_time.record("prompt_eval", estimate_s=420.0, actual_s=1820.0, units=1115, session_id="adv-1")
    rows = RunLog().query("SELECT kind, estimate_s, actual_s, units, session_id, cpus FROM time_estimates")
    assert rows == [{"kind": "prompt_eval", "estimate_s": 420.0, "actual_s": 1820.0, "units": 1115,
                     "session_id": "adv-1", "cpus": rows[0]["cpus"]}] and rows[0]["cpus"] >= 1
