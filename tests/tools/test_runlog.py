from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from tools.runlog import MIGRATIONS, RunLog


def test_migrations_recorded_and_idempotent(tunewise_home: Path) -> None:
    log = RunLog()
    assert log.path == tunewise_home / "runlog.duckdb"
    assert log.schema_version() == len(MIGRATIONS)
    # A second handle (as another process would) finds the schema in place and applies nothing twice.
    assert RunLog(log.path).schema_version() == len(MIGRATIONS)
    names = [r["name"] for r in log.query("SELECT name FROM _migrations ORDER BY applied_at")]
    assert names == [n for n, _ in MIGRATIONS]


def test_run_lifecycle_and_json_fields() -> None:
    log = RunLog()
    rid = log.start_run("train", config={"lr": 1e-4, "r": 8}, method="lora", model="tiny",
                        data_hashes={"train": "abc"})
    log.log_metrics(rid, 10, "train", {"loss": 2.5, "lr": 1e-4})
    log.update_run(rid, status="completed", best_val_loss=1.25, artifacts={"adapter": "/x"})
    run = log.get_run(rid)
    assert run is not None
    assert run["status"] == "completed" and run["ended_at"] is not None
    assert run["config"] == {"lr": 1e-4, "r": 8}
    assert run["artifacts"] == {"adapter": "/x"}
    assert run["versions"]["torch"]
    assert {(m["name"], m["value"]) for m in log.metrics(rid)} == {("loss", 2.5), ("lr", 1e-4)}
    assert log.find_run(rid[:-3])["run_id"] == rid
    with pytest.raises(ValueError):
        log.update_run(rid, no_such_field=1)


def test_tool_call_records_errors() -> None:
    from tools.errors import InputError

    log = RunLog()
    with pytest.raises(InputError), log.tool_call("data.clean", {"path": "x.jsonl"}):
        raise InputError("broken", where="x.jsonl:3:messages")
    with log.tool_call("data.inspect", {"path": "y"}) as rec:
        rec["result"] = {"rows": 3}
    rows = log.query("SELECT name, status, error, result FROM tool_calls ORDER BY started_at")
    assert [(r["name"], r["status"]) for r in rows] == [("data.clean", "error"), ("data.inspect", "ok")]
    assert "x.jsonl:3:messages" in rows[0]["error"]
    assert json.loads(rows[1]["result"]) == {"rows": 3}


def _writer(path: str, tag: str, n: int, hold_s: float) -> None:
    import time

    log = RunLog(path)
    for i in range(n):
        with log.connect() as con:
            con.execute("INSERT INTO metrics VALUES (?, ?, 'train', 'loss', ?, now())", [tag, i, float(i)])
            time.sleep(hold_s)  # hold the file's lock a moment, as a real write batch does


def test_two_writer_processes_lose_nothing(tmp_path: Path) -> None:
    """DuckDB allows one writing process per file; two at once must both succeed without losing a row."""
    path = str(tmp_path / "shared.duckdb")
    RunLog(path).schema_version()
    ctx = mp.get_context("spawn")  # a fresh interpreter, as a second CLI command would be
    procs = [ctx.Process(target=_writer, args=(path, tag, 40, 0.002)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    counts = {r["run_id"]: r["n"] for r in
              RunLog(path).query("SELECT run_id, count(*) AS n FROM metrics GROUP BY run_id")}
    assert counts == {"a": 40, "b": 40}
