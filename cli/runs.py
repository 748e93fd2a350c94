"""``tunewise runs list|show|sql``: read the run log."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import JsonOpt, human, print_json

runs_app = typer.Typer(help="Browse the run log (DuckDB): runs, metrics, evaluations.", no_args_is_help=True)

_LIST_COLS = ("run_id", "kind", "status", "method", "model", "started_at", "best_val_loss", "steps")


def _table(rows: list[dict[str, Any]], title: str, cols: tuple[str, ...] | None = None) -> Any:
    from rich.table import Table

    t = Table(title=title)
    cols = cols or (tuple(rows[0].keys()) if rows else ())
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c))[:60] for c in cols))
    return t


@runs_app.command("list")
def list_runs(kind: str = typer.Option(None, help="Only runs of this kind (train, prompt_eval, eval, ...)."),
              status: str = typer.Option(None, help="Only runs with this status."),
              limit: int = typer.Option(50, help="At most this many, newest first."),
              json_out: bool = JsonOpt) -> None:
    """List runs, newest first."""
    from tools.runlog import RunLog

    where, params = [], []
    if kind:
        where.append("kind = ?")
        params.append(kind)
    if status:  # a crashed run is stored as running until something rewrites it (RunLog.live_status)
        where.append("status = ?")
        params.append("running" if status == "crashed" else status)
    sql = f"SELECT {', '.join(_LIST_COLS)}, pid, host, heartbeat_at FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = RunLog().query(sql + f" ORDER BY started_at DESC LIMIT {int(limit)}", params)
    for r in rows:
        r["status"] = RunLog.live_status(r)
        for k in ("pid", "host", "heartbeat_at"):
            r.pop(k)
    if status:
        rows = [r for r in rows if r["status"] == status]
    if json_out:
        print_json({"runs": rows})
    else:
        human(False).print(_table(rows, "runs", _LIST_COLS) if rows else "No runs yet.")


@runs_app.command("show")
def show(run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."), json_out: bool = JsonOpt) -> None:
    """Show one run: its config, status, artifacts, last metrics and evaluations."""
    from tools.runlog import RunLog

    log = RunLog()
    run = log.find_run(run_id)
    rid = run["run_id"]
    last = log.query("""SELECT split, name, arg_max(value, step) AS value, max(step) AS step FROM metrics
                        WHERE run_id = ? GROUP BY split, name ORDER BY split, name""", [rid])
    evals = log.query("SELECT kind, metric, value, ci_low, ci_high, n, created_at FROM evaluations WHERE run_id = ? "
                      "ORDER BY created_at", [rid])
    if json_out:
        print_json({"run": run, "last_metrics": last, "evaluations": evals})
        return
    from rich.pretty import Pretty

    con = human(False)
    con.print(_table([{k: v for k, v in run.items() if k not in ("config", "versions", "artifacts", "summary")}],
                     f"run {rid}"))
    con.print("[bold]config[/]", Pretty(run.get("config")))
    if run.get("artifacts"):
        con.print("[bold]artifacts[/]", Pretty(run["artifacts"]))
    if last:
        con.print(_table(last, "last metrics"))
    if evals:
        con.print(_table(evals, "evaluations"))


@runs_app.command("sql")
def sql(query: str = typer.Argument(..., help="A SQL query over the run log's tables."),
        json_out: bool = JsonOpt) -> None:
    """Run a SELECT query on the run log (tables: runs, metrics, evaluations, predictions, datasets, sessions,
    answers, decisions, tool_calls, spotchecks, ab_requests)."""
    from tools.runlog import RunLog

    rows = RunLog().read_query(query)
    if json_out:
        print_json({"rows": rows})
    else:
        human(False).print(_table(rows, f"{len(rows)} rows") if rows else "No rows.")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
