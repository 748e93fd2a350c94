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
from tools.errors import TunewiseError

# ---------------------------------------------------------------------------------------------- migrations
# Append new migrations at the end; never edit one that has shipped. Each runs once, in order, in a
# transaction, and its name is recorded. ``schema_version`` is the number applied.

Migration = Callable[[Any], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
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


# -- evaluation (issue 7): migrations m140-m149 ---------------------------------------------------------------
@migration
def m140_ab_request_ids(db: Any) -> None:
    """A/B requests get an id, so an outcome known later (a thumbs-up) can be attached to its request."""
    db.execute("ALTER TABLE ab_requests ADD COLUMN request_id VARCHAR")


# -- evaluation (issue 14): the user's side-by-side votes and a judge's verdicts ----------------------------------
@migration
def m141_votes_and_judge_verdicts(db: Any) -> None:
    """Side-by-side votes (A / B / tie per row, resumable) and model-judge verdicts, each row keyed by test file."""
    db.execute("""
        CREATE TABLE votes (
            vote_id VARCHAR, run_id VARCHAR, test_sha256 VARCHAR, idx BIGINT, a_variant VARCHAR, b_variant VARCHAR,
            vote VARCHAR, input VARCHAR, a_text VARCHAR, b_text VARCHAR, created_at TIMESTAMP)""")
    db.execute("""
        CREATE TABLE judge_verdicts (
            eval_id VARCHAR, run_id VARCHAR, judge VARCHAR, mode VARCHAR, idx BIGINT, verdict VARCHAR,
            swapped_verdict VARCHAR, raw VARCHAR, created_at TIMESTAMP)""")


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


def _is_lock_error(e: Exception) -> bool:
    msg = str(e).lower()
    return "lock" in msg or "conflicting" in msg


class RunLogError(TunewiseError):
    pass


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
    def execute(self, sql: str, params: Iterable[Any] | None = None) -> None:
        with self.connect() as con:
            con.execute(sql, list(params) if params is not None else None)

    def executemany(self, sql: str, rows: list[list[Any]]) -> None:
        if not rows:
            return
        with self.connect() as con:
            con.execute("BEGIN")
            con.executemany(sql, rows)
            con.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] | None = None) -> list[dict[str, Any]]:
        with self.connect() as con:
            cur = con.execute(sql, list(params) if params is not None else None)
            if cur.description is None:
                return []
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def schema_version(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM _migrations")[0]["n"])

    # -- sessions ----------------------------------------------------------------------------------
    def upsert_session(self, session_id: str, *, status: str, source: str = "advise",
                       answers: dict[str, Any] | None = None,
                       recommendation: dict[str, Any] | None = None) -> None:
        t = now()
        with self.connect() as con:
            con.execute(
                """INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at,
                   status = excluded.status, answers = coalesce(excluded.answers, sessions.answers),
                   recommendation = coalesce(excluded.recommendation, sessions.recommendation)""",
                [session_id, t, t, status, source, to_json(answers), to_json(recommendation)],
            )

    def log_answer(self, session_id: str, question_id: str, value: Any) -> None:
        self.execute("INSERT INTO answers VALUES (?, ?, ?, ?)", [session_id, question_id, to_json(value), now()])

    def log_decisions(self, session_id: str, node: str, reasons: list[dict[str, Any]]) -> None:
        t = now()
        self.executemany(
            "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
            [[session_id, node, r.get("rule"), r.get("text"), to_json(r.get("evidence")), t] for r in reasons],
        )

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
            with contextlib.suppress(Exception):
                self.execute(
                    "INSERT INTO tool_calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [call_id, session_id, run_id or record.get("run_id"), name, to_json(arguments), status,
                     started, time.perf_counter() - t0, error, to_json(record.get("result"))],
                )

    # -- datasets ----------------------------------------------------------------------------------
    def log_dataset(self, path: str | Path, *, sha256: str, fmt: str, rows: int, kind: str,
                    report: dict[str, Any] | None = None) -> str:
        dataset_id = new_id("ds-")
        self.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [dataset_id, str(path), sha256, fmt, rows, kind, to_json(report), now()])
        return dataset_id

    # -- runs ----------------------------------------------------------------------------------------
    def start_run(self, kind: str, *, config: Any = None, method: str | None = None,
                  model: str | None = None, data_hashes: dict[str, str] | None = None,
                  run_id: str | None = None, session_id: str | None = None) -> str:
        run_id = run_id or new_id(f"{kind}-")
        self.execute(
            """INSERT INTO runs (run_id, kind, status, method, model, config, data_hashes, versions, git_rev,
                                 started_at, session_id)
               VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)""",
            [run_id, kind, method, model, to_json(config), to_json(data_hashes), to_json(library_versions()),
             git_revision(), now(), session_id],
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
        for k in self._JSON_FIELDS | {"versions"}:
            if row.get(k):
                row[k] = json.loads(row[k])
        return row

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
        self.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
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
        self.execute("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [eval_id, run_id, kind, test_sha256, metric, value, lo, hi, n, to_json(details), now()])
        return eval_id

    def log_predictions(self, run_id: str | None, eval_id: str | None, rows: list[dict[str, Any]]) -> None:
        self.executemany(
            "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


def migrate(con: Any) -> int:
    """Apply every migration not yet recorded; return the schema version."""
    con.execute("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    done = {r[0] for r in con.execute("SELECT name FROM _migrations").fetchall()}
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        con.execute("BEGIN")
        try:
            fn(con)
            con.execute("INSERT INTO _migrations VALUES (?, ?)", [name, now()])
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

