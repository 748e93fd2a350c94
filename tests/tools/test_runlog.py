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
            con.execute("INSERT INTO metrics (run_id, step, split, name, value, created_at) "
                        "VALUES (?, ?, 'train', 'loss', ?, now())", [tag, i, float(i)])
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


# ------------------------------------------------------------------------------------------ migrations

def test_migrations_are_numbered_in_sequence() -> None:
    from tools import runlog

    assert [n[:5] for n, _ in MIGRATIONS] == [f"m{i:03d}_" for i in range(1, len(MIGRATIONS) + 1)]
    with pytest.raises(RuntimeError, match="out of sequence"):
        runlog.migration(lambda db: None)  # a lambda's name carries no number
    assert len(runlog.MIGRATIONS) == len(MIGRATIONS)


def _old_schema_db(path: Path) -> None:
    """A run log as the first releases left it: m001 + the A/B column recorded as m140."""
    import duckdb

    from tools import runlog

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    runlog.m001_core(con)
    con.execute("ALTER TABLE ab_requests ADD COLUMN request_id VARCHAR")
    con.execute("INSERT INTO _migrations VALUES ('m001_core', now()), ('m140_ab_request_ids', now())")
    con.execute("INSERT INTO sessions (session_id, status) VALUES ('adv-old', 'done')")
    con.close()


def test_an_old_schema_upgrades_without_rerunning_a_migration(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import runlog

    ran: list[str] = []

    def test_column(db: object) -> None:
        ran.append("test")
        db.execute("ALTER TABLE sessions ADD COLUMN test_note VARCHAR")  # type: ignore[attr-defined]

    # a migration appended after the last shipped one, with the next number
    new_name = f"m{len(MIGRATIONS) + 1:03d}_test_column"
    monkeypatch.setattr(runlog, "MIGRATIONS", [*MIGRATIONS, (new_name, test_column)])
    path = tmp_path / "old.duckdb"
    _old_schema_db(path)
    log = RunLog(path)
    # m002 (the ALTER of m140) would fail if it ran again on this database
    assert log.schema_version() == len(MIGRATIONS) + 1 and ran == ["test"]
    names = [r["name"] for r in log.query("SELECT name FROM _migrations ORDER BY name")]
    assert names == sorted([name for name, _ in MIGRATIONS] + [new_name])
    assert "m140_ab_request_ids" not in names and "m002_ab_request_ids" in names
    assert log.query("SELECT session_id, test_note FROM sessions") == [{"session_id": "adv-old", "test_note": None}]
    runlog._migrated.clear()
    assert RunLog(path).schema_version() == len(MIGRATIONS) + 1 and ran == ["test"]  # applied once only


def test_a_failing_migration_rolls_back_and_is_never_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    from tools import runlog

    def m003_broken(db: object) -> None:
        db.execute("ALTER TABLE sessions ADD COLUMN half_done VARCHAR")  # type: ignore[attr-defined]
        db.execute("ALTER TABLE no_such_table ADD COLUMN x VARCHAR")  # type: ignore[attr-defined]

    monkeypatch.setattr(runlog, "MIGRATIONS", [*MIGRATIONS, ("m003_broken", m003_broken)])
    log = RunLog(tmp_path / "broken.duckdb")
    # the tool-call record is the write that meets the migration first: it must raise, not swallow it
    with pytest.raises(duckdb.Error), log.tool_call("data.inspect", {"path": "x"}):
        pass
    monkeypatch.setattr(runlog, "MIGRATIONS", list(MIGRATIONS))
    cols = {r["column_name"] for r in RunLog(tmp_path / "broken.duckdb").query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'sessions'")}
    assert "half_done" not in cols  # rolled back whole


def test_session_writes_name_their_columns() -> None:
    log = RunLog()
    log.upsert_session("adv-1", status="asking", answers={"task": "classification"})
    log.log_answers("adv-1", {"task": "classification", "n_examples": 2000})
    log.log_decisions("adv-1", {"prompt_baseline": [{"rule": "dt.step1", "text": "prompts first", "evidence": {"q": 0.5}}],
                                "data": []})
    log.log_spotcheck("sha", "key-1", 0, "bad", "too short")
    assert [(r["question_id"], r["value"]) for r in
            log.query("SELECT question_id, value FROM answers ORDER BY question_id")] == [
        ("n_examples", "2000"), ("task", '"classification"')]
    (d,) = log.query("SELECT node, rule_id, text, evidence FROM decisions")
    assert d == {"node": "prompt_baseline", "rule_id": "dt.step1", "text": "prompts first", "evidence": '{"q": 0.5}'}
    assert log.query("SELECT verdict, reason FROM spotchecks") == [{"verdict": "bad", "reason": "too short"}]


def test_a_typed_query_only_reads() -> None:
    from tools.runlog import RunLogQueryError

    log = RunLog()
    rid = log.start_run("train")
    assert log.read_query("SELECT run_id FROM runs") == [{"run_id": rid}]
    for sql in ("DELETE FROM runs", "SELECT 1; DROP TABLE runs", "UPDATE runs SET status = 'x'", "SELEC nonsense"):
        with pytest.raises(RunLogQueryError):
            log.read_query(sql)
    assert log.query("SELECT count(*) AS n FROM runs") == [{"n": 1}]
