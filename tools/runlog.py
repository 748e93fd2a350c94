"""The run log: one DuckDB file that records every session, tool call, dataset, run, metric and evaluation.

DuckDB lets one process write a file at a time, and the TUI, a CLI command and a training child process may
all want to log at once. So no connection is held across a long job: each write opens a short-lived
connection, and an open that meets another process's lock waits and retries (with jitter) until it gets in.
The schema grows through named migrations recorded in ``_migrations``, in the manner of simonw/llm.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools import paths
from tools.errors import InputError, TunewiseError
from tools.redaction import masker, redact

# ---------------------------------------------------------------------------------------------- migrations
# The schema grows through numbered migrations, applied once each, in order, in a transaction; the name of
# each applied one is recorded in ``_migrations``. To change the schema, append a function named
# ``m<next number, 3 digits>_<what it does>`` at the END of this section with ``@migration``; never edit,
# reorder or renumber one that has shipped (a database that recorded it will not run it again). The
# decorator refuses a number out of sequence, so two branches that both append m003 clash at import time
# (renumber the later one when merging). ``schema_version`` is the number of migrations applied.

Migration = Callable[[Any], None]
MIGRATIONS: list[tuple[str, Migration]] = []

# Names under which a database may have recorded a migration before the numbers were made sequential: the
# change is already in that database, so only the recorded name is updated (nothing runs twice).
RENAMED: dict[str, str] = {"m140_ab_request_ids": "m002_ab_request_ids"}


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration; its name must carry the next number (m001_, m002_, ...)."""
    expected = f"m{len(MIGRATIONS) + 1:03d}_"
    if not fn.__name__.startswith(expected):
        raise RuntimeError(f"migration {fn.__name__} is out of sequence: the next one must be named {expected}...")
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_core(db: Any) -> None:
    db.execute("""
        CREATE TABLE sessions (
            session_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, updated_at TIMESTAMP,
            status VARCHAR, source VARCHAR, answers VARCHAR, recommendation VARCHAR)""")
    db.execute("""
        CREATE TABLE answers (
            session_id VARCHAR, question_id VARCHAR, value VARCHAR, created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE decisions (
            session_id VARCHAR, node VARCHAR, rule_id VARCHAR, text VARCHAR, evidence VARCHAR, created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE tool_calls (
            call_id VARCHAR PRIMARY KEY, session_id VARCHAR, run_id VARCHAR, name VARCHAR,
            arguments VARCHAR, status VARCHAR, started_at TIMESTAMP, duration_s DOUBLE,
            error VARCHAR, result VARCHAR)""")
    db.execute("""
        CREATE TABLE datasets (
            dataset_id VARCHAR PRIMARY KEY, path VARCHAR, sha256 VARCHAR, format VARCHAR, rows BIGINT,
            kind VARCHAR, report VARCHAR, created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, kind VARCHAR, status VARCHAR, method VARCHAR, model VARCHAR,
            config VARCHAR, data_hashes VARCHAR, versions VARCHAR, git_rev VARCHAR,
            started_at TIMESTAMP, ended_at TIMESTAMP, train_seconds DOUBLE, peak_memory_mb DOUBLE,
            best_val_loss DOUBLE, steps BIGINT, artifacts VARCHAR, error VARCHAR, summary VARCHAR,
            session_id VARCHAR)""")
    db.execute("""
        CREATE TABLE metrics (
            run_id VARCHAR, step BIGINT, split VARCHAR, name VARCHAR, value DOUBLE, created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE evaluations (
            eval_id VARCHAR PRIMARY KEY, run_id VARCHAR, kind VARCHAR, test_sha256 VARCHAR, metric VARCHAR,
            value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, n BIGINT, details VARCHAR, created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE predictions (
            run_id VARCHAR, eval_id VARCHAR, idx BIGINT, input VARCHAR, expected VARCHAR, prediction VARCHAR,
            correct BOOLEAN, latency_ms DOUBLE, prompt_tokens BIGINT, output_tokens BIGINT)""")
    db.execute("""
        CREATE TABLE spotchecks (
            dataset_sha256 VARCHAR, example_key VARCHAR, position BIGINT, verdict VARCHAR, reason VARCHAR,
            created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE ab_requests (
            experiment VARCHAR, variant VARCHAR, outcome DOUBLE, latency_ms DOUBLE, cost DOUBLE,
            created_at TIMESTAMP)""")


@migration
def m002_ab_request_ids(db: Any) -> None:
    """A/B requests get an id, so an outcome known later (a thumbs-up) can be attached to its request."""
    db.execute("ALTER TABLE ab_requests ADD COLUMN request_id VARCHAR")


# -- training liveness (issue 18.3) ----------------------------------------------------------------------------
@migration
def m003_run_liveness(db: Any) -> None:
    """A run records the process doing the work and a heartbeat, so a killed run reads as crashed."""
    db.execute("ALTER TABLE runs ADD COLUMN pid BIGINT")
    db.execute("ALTER TABLE runs ADD COLUMN host VARCHAR")
    db.execute("ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMP")


# -- evaluation (issue 14): the user's side-by-side votes and a judge's verdicts ----------------------------------
@migration
def m004_votes_and_judge_verdicts(db: Any) -> None:
    """Side-by-side votes (A / B / tie per row, resumable) and model-judge verdicts, each row keyed by test file."""
    db.execute("""
        CREATE TABLE votes (
            vote_id VARCHAR, run_id VARCHAR, test_sha256 VARCHAR, idx BIGINT, a_variant VARCHAR, b_variant VARCHAR,
            vote VARCHAR, input VARCHAR, a_text VARCHAR, b_text VARCHAR, created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE judge_verdicts (
            eval_id VARCHAR, run_id VARCHAR, judge VARCHAR, mode VARCHAR, idx BIGINT, verdict VARCHAR,
            swapped_verdict VARCHAR, raw VARCHAR, created_at TIMESTAMP)""")


# -- people's grades (issue 22): good / bad / skip per output, the quality of free text ---------------------------
@migration
def m005_grades(db: Any) -> None:
    """A person's (or a grades file's) verdict on one logged output: keyed by the run, the evaluation whose
    predictions were graded, the variant and the test row, so grading resumes and the tuned model's outputs
    are graded on the same rows as the prompt's."""
    db.execute("""
        CREATE TABLE grades (
            grade_id VARCHAR, run_id VARCHAR, eval_id VARCHAR, variant VARCHAR, test_sha256 VARCHAR, idx BIGINT,
            grade VARCHAR, grader VARCHAR, created_at TIMESTAMP)""")


# -- liveness by pid and start time (issue 23.3) ---------------------------------------------------------------
@migration
def m006_run_process_start(db: Any) -> None:
    """A run records its worker's start time with its pid, so a later process given the same pid is not taken
    for the run's worker."""
    db.execute("ALTER TABLE runs ADD COLUMN pid_start BIGINT")


@migration
def m007_time_estimates(db: Any) -> None:
    """Each long job's time estimate beside the time it took (issue 26), so the estimates can be checked."""
    db.execute("""
        CREATE TABLE time_estimates (
            kind VARCHAR, session_id VARCHAR, run_id VARCHAR, units BIGINT, estimate_s DOUBLE, actual_s DOUBLE,
            source VARCHAR, load_1m DOUBLE, cpus BIGINT, created_at TIMESTAMP)""")


@migration
def m008_time_estimate_shape(db: Any) -> None:
    """The task shape of each timed job (labels and code run at very different paces)."""
    db.execute("ALTER TABLE time_estimates ADD COLUMN shape VARCHAR")


# ---------------------------------------------------------------------------------------------- helpers

def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id(prefix: str = "") -> str:
    """Sortable, readable ids: ``<prefix>20261128-180501-3fa2``."""
    return f"{prefix}{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def to_json(obj: Any) -> str | None:
    if obj is None:
        return None
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    return json.dumps(obj, default=str, ensure_ascii=False)


def insert_sql(table: str, columns: Iterable[str]) -> str:
    """``INSERT INTO table (c1, c2, ...) VALUES (?, ?, ...)``: every insert names its columns, so adding a
    column in a migration never shifts the values of an existing write."""
    cols = list(columns)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


def _is_lock_error(e: Exception) -> bool:
    msg = str(e).lower()
    return "lock" in msg or "conflicting" in msg


class RunLogError(TunewiseError):
    """The run log could not be opened (another process holds it too long, or the file is unreadable)."""


class RunLogQueryError(InputError):
    """A query typed by a person that the run log cannot or will not run."""


def log_warning(message: str) -> None:
    """A problem worth a line in the bug log that must not stop the work (e.g. a write the log refused)."""
    from tools.errors import log_line

    log_line("WARNING", message)


def _masked(params: Iterable[Any] | None, mask: Callable[[str], str] = redact) -> list[Any] | None:
    """Query parameters with every string masked (tools.redaction): no secret is ever stored."""
    return None if params is None else [mask(p) if isinstance(p, str) else p for p in params]


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


class RunLog:
    """A handle on one run-log file. Cheap to create; holds no connection."""

    def __init__(self, path: str | Path | None = None, *, lock_timeout_s: float = 60.0) -> None:
        self.path = Path(path) if path else paths.runlog_path()
        self.lock_timeout_s = lock_timeout_s

    # -- connections ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[Any]:
        """A short-lived connection; waits for another process's lock instead of failing."""
        import duckdb

        self._ensure_schema()
        con = self._open(duckdb, read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    def _open(self, duckdb: Any, *, read_only: bool = False) -> Any:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.005
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only and self.path.exists())
            except duckdb.IOException as e:
                if not _is_lock_error(e) or time.monotonic() > deadline:
                    raise RunLogError(
                        f"could not open the run log: {e}", where=str(self.path),
                        fix="another tunewise process may be stuck holding it; close it and try again",
                    ) from e
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)

    def _ensure_schema(self) -> None:
        key = str(self.path.resolve())
        if key in _migrated:
            return
        with _migrate_lock:
            if key in _migrated:
                return
            import duckdb

            con = self._open(duckdb)
            try:
                migrate(con)
            finally:
                con.close()
            _migrated.add(key)

    # -- generic ------------------------------------------------------------------------------------
    # Every write goes through execute/executemany, which mask secrets in every string they store.
    def execute(self, sql: str, params: Iterable[Any] | None = None) -> None:
        with self.connect() as con:
            con.execute(sql, _masked(params))

    def executemany(self, sql: str, rows: list[list[Any]]) -> None:
        if not rows:
            return
        with self.connect() as con:
            con.execute("BEGIN")
            mask = masker()
            con.executemany(sql, [_masked(r, mask) for r in rows])
            con.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] | None = None) -> list[dict[str, Any]]:
        with self.connect() as con:
            cur = con.execute(sql, list(params) if params is not None else None)
            if cur.description is None:
                return []
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def read_query(self, sql: str) -> list[dict[str, Any]]:
        """A query a person typed (``tunewise runs sql``): reads only, since every write belongs to a method here."""
        import duckdb

        try:
            kinds = [s.type for s in duckdb.extract_statements(sql)]
        except duckdb.Error as e:
            raise RunLogQueryError(f"the query failed: {e}", where="sql") from e
        readable = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
        if not kinds or any(k not in readable for k in kinds):
            raise RunLogQueryError("the run log is read-only here: give SELECT queries",
                                   where="sql", fix='e.g. tunewise runs sql "SELECT run_id, status FROM runs"')
        try:
            return self.query(sql)
        except duckdb.Error as e:
            raise RunLogQueryError(f"the query failed: {e}", where="sql") from e

    def schema_version(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM _migrations")[0]["n"])

    # -- sessions ----------------------------------------------------------------------------------
    def upsert_session(self, session_id: str, *, status: str, source: str = "advise",
                       answers: dict[str, Any] | None = None,
                       recommendation: dict[str, Any] | None = None) -> None:
        t = now()
        self.execute(
            insert_sql("sessions", ("session_id", "created_at", "updated_at", "status", "source", "answers",
                                    "recommendation"))
            + """ ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at,
               status = excluded.status, answers = coalesce(excluded.answers, sessions.answers),
               recommendation = coalesce(excluded.recommendation, sessions.recommendation)""",
            [session_id, t, t, status, source, to_json(answers), to_json(recommendation)],
        )

    def log_answers(self, session_id: str, answers: dict[str, Any]) -> None:
        """The advisor's answers (question id -> value), one row each, in one write."""
        t = now()
        self.executemany(insert_sql("answers", ("session_id", "question_id", "value", "created_at")),
                         [[session_id, qid, to_json(v), t] for qid, v in answers.items()])

    def log_decisions(self, session_id: str, by_node: dict[str, list[dict[str, Any]]]) -> None:
        """The reasons of a session (graph node -> reasons with rule, text, evidence), in one write."""
        t = now()
        self.executemany(
            insert_sql("decisions", ("session_id", "node", "rule_id", "text", "evidence", "created_at")),
            [[session_id, node, r.get("rule"), r.get("text"), to_json(r.get("evidence")), t]
             for node, reasons in by_node.items() for r in reasons],
        )

    # -- spot-checks -------------------------------------------------------------------------------
    def log_spotcheck(self, dataset_sha256: str, example_key: str, position: int, verdict: str,
                      reason: str | None = None) -> None:
        """One spot-check verdict (good / bad / skip) on one example of a data set."""
        self.execute(insert_sql("spotchecks", ("dataset_sha256", "example_key", "position", "verdict", "reason",
                                               "created_at")),
                     [dataset_sha256, example_key, position, verdict, reason, now()])

    # -- A/B requests ----------------------------------------------------------------------------
    def log_ab_request(self, experiment: str, variant: str, request_id: str, *, outcome: float | None = None,
                       latency_ms: float | None = None, cost: float | None = None) -> None:
        """One request routed to variant ``a`` or ``b`` of an online A/B experiment."""
        self.execute(insert_sql("ab_requests", ("experiment", "variant", "outcome", "latency_ms", "cost",
                                                "created_at", "request_id")),
                     [experiment, variant, outcome, latency_ms, cost, now(), request_id])

    def set_ab_outcome(self, experiment: str, request_id: str, outcome: float) -> None:
        """Attach an outcome learnt later (a thumbs-up, a resolved ticket) to an earlier A/B request."""
        self.execute("UPDATE ab_requests SET outcome = ? WHERE experiment = ? AND request_id = ?",
                     [outcome, experiment, request_id])

    # -- tool calls --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def tool_call(self, name: str, arguments: dict[str, Any] | None = None, *,
                  session_id: str | None = None, run_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Record a tool call: yields a dict; put the result under ``"result"`` to store it."""
        call_id, started, t0 = new_id("call-"), now(), time.perf_counter()
        record: dict[str, Any] = {"call_id": call_id}
        status, error = "ok", None
        try:
            yield record
        except TunewiseError as e:
            status, error = "error", e.render()
            raise
        except BaseException as e:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "crashed"
            error = "".join(traceback.format_exception(e))[-4000:]
            raise
        finally:
            try:
                self.execute(
                    insert_sql("tool_calls", ("call_id", "session_id", "run_id", "name", "arguments", "status",
                                              "started_at", "duration_s", "error", "result")),
                    [call_id, session_id, run_id or record.get("run_id"), name, to_json(arguments), status,
                     started, time.perf_counter() - t0, error, to_json(record.get("result"))],
                )
            except RunLogError as e:
                # a locked or unreadable log must not undo the tool's work; anything else is a bug and raises
                log_warning(f"tool call {name} ({call_id}) was not recorded: {e.what}")

    # -- datasets ----------------------------------------------------------------------------------
    def log_dataset(self, path: str | Path, *, sha256: str, fmt: str, rows: int, kind: str,
                    report: dict[str, Any] | None = None) -> str:
        dataset_id = new_id("ds-")
        self.execute(insert_sql("datasets", ("dataset_id", "path", "sha256", "format", "rows", "kind", "report",
                                             "created_at")),
                     [dataset_id, str(path), sha256, fmt, rows, kind, to_json(report), now()])
        return dataset_id

    # -- runs ----------------------------------------------------------------------------------------
    def start_run(self, kind: str, *, config: Any = None, method: str | None = None,
                  model: str | None = None, data_hashes: dict[str, str] | None = None,
                  run_id: str | None = None, session_id: str | None = None) -> str:
        from tools.processes import identity

        run_id = run_id or new_id(f"{kind}-")
        me = identity()  # the process doing the work: a run whose process is gone reads as crashed
        self.execute(
            """INSERT INTO runs (run_id, kind, status, method, model, config, data_hashes, versions, git_rev,
                                 started_at, session_id, pid, pid_start, host)
               VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [run_id, kind, method, model, to_json(config), to_json(data_hashes), to_json(library_versions()),
             git_revision(), now(), session_id, me["pid"], me["start"], me["host"]],
        )
        return run_id

    _RUN_FIELDS = frozenset({"status", "method", "model", "config", "data_hashes", "ended_at", "train_seconds",
                             "peak_memory_mb", "best_val_loss", "steps", "artifacts", "error", "summary"})
    _JSON_FIELDS = frozenset({"config", "data_hashes", "artifacts", "summary"})

    def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - self._RUN_FIELDS
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        if fields.get("status") in {"completed", "failed", "interrupted"} and "ended_at" not in fields:
            fields["ended_at"] = now()
        cols = ", ".join(f"{k} = ?" for k in fields)
        vals = [to_json(v) if k in self._JSON_FIELDS else v for k, v in fields.items()]
        self.execute(f"UPDATE runs SET {cols} WHERE run_id = ?", [*vals, run_id])

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if not rows:
            return None
        row = rows[0]
        row["status"] = self.live_status(row)
        for k in self._JSON_FIELDS | {"versions"}:
            if row.get(k):
                row[k] = json.loads(row[k])
        return row

    # -- liveness (issue 18.3) ------------------------------------------------------------------------
    def heartbeat(self, run_id: str, *, pid: int | None = None, host: str | None = None,
                  train_seconds: float | None = None, pid_start: int | None = None) -> None:
        """The run is alive: stamp ``heartbeat_at``; record the worker's pid, its start time and host, and the
        training time so far when given (so a run killed later keeps them)."""
        if pid is not None and pid_start is None:
            from tools.processes import start_time

            pid_start = start_time(pid)
        self.execute(
            """UPDATE runs SET heartbeat_at = ?, pid = coalesce(?, pid), host = coalesce(?, host),
                   pid_start = CASE WHEN ? IS NULL THEN pid_start ELSE ? END,
                   train_seconds = coalesce(?, train_seconds) WHERE run_id = ?""",
            [now(), pid, host, pid, pid_start, train_seconds, run_id])

    @staticmethod
    def live_status(row: dict[str, Any]) -> str | None:
        """A row's status as it really is: a ``running`` run whose process is gone reads as ``crashed``.

        On this host the pid and its start time decide (a pid the kernel gave to a later process does not keep
        the run alive); from another host, a heartbeat older than ``train.heartbeat``'s ``stale_after_s`` does
        (that host may be down)."""
        status = row.get("status")
        if status != "running" or not (row.get("pid") or row.get("heartbeat_at")):
            return status
        import socket

        if row.get("host") == socket.gethostname() and row.get("pid"):
            from tools.processes import alive

            start = row.get("pid_start")
            return status if alive(int(row["pid"]), None if start is None else int(start)) else "crashed"
        beat = row.get("heartbeat_at")
        if beat is not None and (now() - beat).total_seconds() > _heartbeat_stale_after_s():
            return "crashed"
        return status

    def find_run(self, prefix: str) -> dict[str, Any]:
        """A run by id or unique id prefix, or a clear error."""
        from tools.errors import RunNotFoundError

        rows = self.query("SELECT run_id FROM runs WHERE run_id = ? OR run_id LIKE ? ORDER BY started_at",
                          [prefix, prefix + "%"])
        exact = [r for r in rows if r["run_id"] == prefix]
        if exact or len(rows) == 1:
            run = self.get_run((exact or rows)[0]["run_id"])
            assert run is not None
            return run
        if not rows:
            raise RunNotFoundError(f"no run with id {prefix!r}", where=str(self.path),
                                   fix="list runs with `tunewise runs list`")
        raise RunNotFoundError(f"{len(rows)} runs start with {prefix!r}", fix="give more of the id")

    def log_metrics(self, run_id: str, step: int, split: str, values: dict[str, float]) -> None:
        t = now()
        self.executemany(insert_sql("metrics", ("run_id", "step", "split", "name", "value", "created_at")),
                         [[run_id, step, split, k, float(v), t] for k, v in values.items() if v is not None])

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT step, split, name, value FROM metrics WHERE run_id = ? ORDER BY step, created_at",
                          [run_id])

    # -- evaluations -------------------------------------------------------------------------------
    def log_evaluation(self, run_id: str | None, kind: str, *, metric: str, value: float | None,
                       ci: tuple[float, float] | list[float] | None = None, n: int | None = None,
                       test_sha256: str | None = None, details: Any = None) -> str:
        eval_id = new_id("eval-")
        lo, hi = (ci[0], ci[1]) if ci else (None, None)
        self.execute(insert_sql("evaluations", ("eval_id", "run_id", "kind", "test_sha256", "metric", "value",
                                                "ci_low", "ci_high", "n", "details", "created_at")),
                     [eval_id, run_id, kind, test_sha256, metric, value, lo, hi, n, to_json(details), now()])
        return eval_id

    def log_time_estimate(self, kind: str, *, estimate_s: float | None, actual_s: float, units: int | None = None,
                          source: str | None = None, session_id: str | None = None, run_id: str | None = None,
                          load_1m: float | None = None, cpus: int | None = None, shape: str | None = None) -> None:
        """A long job's estimated and actual seconds (``units``: the rows x variants, or steps, it covered;
        ``load_1m``: the load when it started; ``shape``: the task's output kind)."""
        self.execute(insert_sql("time_estimates", ("kind", "session_id", "run_id", "units", "estimate_s", "actual_s",
                                                   "source", "load_1m", "cpus", "shape", "created_at")),
                     [kind, session_id, run_id, units, estimate_s, actual_s, source, load_1m, cpus, shape, now()])

    def log_predictions(self, run_id: str | None, eval_id: str | None, rows: list[dict[str, Any]]) -> None:
        self.executemany(
            insert_sql("predictions", ("run_id", "eval_id", "idx", "input", "expected", "prediction", "correct",
                                       "latency_ms", "prompt_tokens", "output_tokens")),
            [[run_id, eval_id, r.get("idx", i), r.get("input"), r.get("expected"), r.get("prediction"),
              r.get("correct"), r.get("latency_ms"), r.get("prompt_tokens"), r.get("output_tokens")]
             for i, r in enumerate(rows)],
        )

    def log_vote(self, *, run_id: str | None, test_sha256: str, idx: int, a_variant: str, b_variant: str,
                 vote: str, input: str = "", a_text: str = "", b_text: str = "") -> str:
        """One side-by-side vote ("a", "b" or "tie"); a later vote on the same pair replaces it on read."""
        vote_id = new_id("vote-")
        self.execute("INSERT INTO votes (vote_id, run_id, test_sha256, idx, a_variant, b_variant, vote, input, "
                     "a_text, b_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [vote_id, run_id, test_sha256, idx, a_variant, b_variant, vote, input, a_text, b_text, now()])
        return vote_id

    def log_judge_verdicts(self, eval_id: str | None, run_id: str | None, judge: str, mode: str,
                           rows: list[dict[str, Any]]) -> None:
        """A judge's verdict per row (``idx``, ``verdict``, ``swapped_verdict`` for pairwise, ``raw`` reply)."""
        self.executemany(
            "INSERT INTO judge_verdicts (eval_id, run_id, judge, mode, idx, verdict, swapped_verdict, raw, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[eval_id, run_id, judge, mode, r.get("idx", i), r.get("verdict"), r.get("swapped_verdict"),
              r.get("raw"), now()] for i, r in enumerate(rows)])

    def log_grade(self, *, run_id: str, eval_id: str | None, variant: str, test_sha256: str | None, idx: int,
                  grade: str, grader: str = "user") -> str:
        """One grade ("good", "bad" or "skip") of a logged output; a later grade of the same row replaces it on
        read (``grades``)."""
        grade_id = new_id("grade-")
        self.execute(insert_sql("grades", ("grade_id", "run_id", "eval_id", "variant", "test_sha256", "idx", "grade",
                                           "grader", "created_at")),
                     [grade_id, run_id, eval_id, variant, test_sha256, idx, grade, grader, now()])
        return grade_id

    def grades(self, run_id: str, variant: str) -> list[dict[str, Any]]:
        """The latest grade per row of one run's variant: ``idx``, ``grade``, ``grader``, ``eval_id``."""
        return self.query(
            "SELECT idx, grade, grader, eval_id, test_sha256 FROM (SELECT *, row_number() OVER (PARTITION BY idx "
            "ORDER BY created_at DESC) AS k FROM grades WHERE run_id = ? AND variant = ?) "
            "WHERE k = 1 ORDER BY idx", [run_id, variant])


def _heartbeat_stale_after_s() -> float:
    from importlib.resources import files

    import yaml

    raw = yaml.safe_load(files("knowledge").joinpath("training.yaml").read_text(encoding="utf-8"))
    return float(raw["heartbeat"]["stale_after_s"])


def migrate(con: Any) -> int:
    """Apply every migration not yet recorded, in order; return the schema version.

    A migration that fails rolls back and raises: the run log must never run on a half-built schema.
    """
    con.execute("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    done = {r[0] for r in con.execute("SELECT name FROM _migrations").fetchall()}
    for old, new in RENAMED.items():
        if old in done and new not in done:
            con.execute("UPDATE _migrations SET name = ? WHERE name = ?", [new, old])
            done = (done - {old}) | {new}
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        con.execute("BEGIN")
        try:
            fn(con)
            con.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, now()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return int(con.execute("SELECT count(*) FROM _migrations").fetchone()[0])


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a result, without importing them."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("tunewise", "torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def git_revision() -> str | None:
    """The git revision of the tunewise checkout, if it is one (read from files; no subprocess)."""
    root = Path(__file__).resolve().parent.parent
    head = root / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = root / ".git" / ref[5:]
            if ref_path.exists():
                return ref_path.read_text().strip()
            packed = root / ".git" / "packed-refs"
            for line in packed.read_text().splitlines() if packed.exists() else []:
                if line.endswith(ref[5:]):
                    return line.split()[0]
            return None
        return ref
    except OSError:
        return None

