"""Time estimates from this machine's measured pace (issue 26): the run log's last prompt baselines and training
runs, the cost table when nothing was measured, and the estimate recorded beside the actual time."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tools import estimate_time
from tools.runlog import RunLog, now

LOAD = {"now": 0.0}


@pytest.fixture(autouse=True)
def machine_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, float]]:
    """A 2-core machine whose 1-minute load the test sets (idle unless it says otherwise)."""
    LOAD["now"] = 0.0
    monkeypatch.setattr(estimate_time, "load_now", lambda: (LOAD["now"], 2))
    yield LOAD


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


def _timed(kind: str, actual_s: float, units: int, *, load: float, shape: str | None) -> None:
    RunLog().log_time_estimate(kind, estimate_s=None, actual_s=actual_s, units=units, load_1m=load, cpus=2,
                               shape=shape)


def test_the_pace_is_scaled_by_the_load_then_and_now() -> None:
    # 100 row-variants in 200 s while another job kept both cores busy (load 2): 1 s each on an idle machine
    _timed("prompt_eval", 200.0, 100, load=2.0, shape="label")
    pace = estimate_time.prompt_pace(shape="label")
    assert pace.idle_seconds_per_unit == pytest.approx(1.0) and pace.seconds_per_unit == pytest.approx(1.0)
    LOAD["now"] = 4.0  # twice as much other work now: (2 + 4) / 2 = 3 x the idle pace
    assert estimate_time.prompt_pace(shape="label").seconds_per_unit == pytest.approx(3.0)
    assert "other work on 4.0 of 2 cores now" in estimate_time.prompt_pace(shape="label").note()


def test_a_shape_is_estimated_from_its_own_runs_first() -> None:
    import knowledge

    _timed("prompt_eval", 50.0, 100, load=0.0, shape="label")  # 0.5 s a row-variant
    _timed("prompt_eval", 400.0, 100, load=0.0, shape="code")  # 4 s: code replies are long
    assert estimate_time.prompt_pace(shape="code").seconds_per_unit == pytest.approx(4.0)
    assert estimate_time.prompt_pace(shape="label").seconds_per_unit == pytest.approx(0.5)
    assert "last 1 code run" in estimate_time.prompt_pace(shape="code").note()
    # a shape not measured here: the table's number for it, times how this machine compares with the table
    cost = knowledge.rule("cost.check_run.cpu").raw
    table = cost.get("seconds_per_prompt_row_variant_by_shape") or {}
    general = cost["seconds_per_prompt_row_variant"]
    speed = sorted([0.5 / table.get("label", general), 4.0 / table.get("code", general)])
    pace = estimate_time.prompt_pace(shape="reasoning")
    assert pace.carried_over and "other task shapes" in pace.note()
    assert pace.seconds_per_unit == pytest.approx(table.get("reasoning", general) * sum(speed) / 2)


def test_the_training_pace_comes_from_recorded_steps() -> None:
    _timed("train", 30.0, 10, load=0.0, shape=None)
    assert estimate_time.train_pace().seconds_per_unit == pytest.approx(3.0)


def test_the_load_is_other_work_not_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A core kept busy by this process is not other work; one kept busy by another process is."""
    import subprocess
    import sys
    import threading

    monkeypatch.undo()  # the real load_now

    def sample() -> float:
        estimate_time._sampled.clear()
        load, _ = estimate_time.load_now(sample_s=1.0)
        assert load is not None
        return load

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    t = threading.Thread(target=spin)
    t.start()
    try:
        ours = sample()
    finally:
        stop.set()
        t.join()
    other = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        theirs = sample()
    finally:
        other.kill()
        other.wait()
    assert theirs - ours > 0.5, (ours, theirs)


def test_jobs_of_several_sizes_give_a_fixed_part_and_a_pace() -> None:
    # 30 s whatever the size (the label set's encoding, the shared prefix) + 1 s a row-variant
    for units in (30, 60, 120):
        _timed("prompt_eval", 30.0 + units, units, load=0.0, shape="label")
    pace = estimate_time.prompt_pace(shape="label")
    assert pace.fixed_seconds == pytest.approx(30.0) and pace.seconds_per_unit == pytest.approx(1.0)
    assert pace.seconds(300) == pytest.approx(330.0)  # a per-unit median alone would say 300 x 1.5 = 450
    assert "+ 30 s a job" in pace.note()
    # one size only: no fixed part can be told apart, the ratio stands
    assert estimate_time.fit([(60.0, 30), (62.0, 30)]) == (0.0, pytest.approx(61.0 / 30))


def test_the_prompt_baseline_estimate_prices_every_row_under_every_prompt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import knowledge

    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"input": f"q{i}", "output": "a"}) + "\n" for i in range(200)) + "\n\n")
    _timed("prompt_eval", 100.0, 100, load=0.0, shape="code")  # 1 s a row-variant for code here
    variants = knowledge.rule("cost.check_run.cpu").raw["prompt_variants"]
    est = estimate_time.prompt_eval_estimate(str(test), shape="code")
    assert est is not None and est.rows == 200 and est.seconds == pytest.approx(200 * variants)
    limited = estimate_time.prompt_eval_estimate(str(test), shape="code", limit=40)
    assert limited is not None and limited.rows == 40 and limited.seconds == pytest.approx(40 * variants)
    assert estimate_time.prompt_eval_estimate(str(tmp_path / "missing.jsonl")) is None
