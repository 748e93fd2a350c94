"""``tunewise report ID``: one page for a team. An advisor session id (``adv-...``) gives the session report
(recommendation, decision path with rule ids, measurements with CIs, learning curve, what would change the
decision); a run id gives the run report of ``tools.report.build_report``, as before."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import JsonOpt, human, print_json


def report(
    ref: str = typer.Argument(..., metavar="SESSION_ID|RUN_ID",
                              help="An advisor session (adv-..., shown at the end of `tunewise advise`) or a run."),
    out: str = typer.Option(None, "--out", "-o", help="Output file: .html (default) or .md (Markdown)."),
    json_out: bool = JsonOpt,
) -> None:
    """One page for your team. For an advisor session: the recommendation, the decision path with rule ids,
    the measurements with CIs, the learning-curve chart and what would change the decision (user text escaped).
    For a run: data, prompt baseline, training curves, test results, side by side, forgetting, A/B, checklist."""
    from tools.report import build_session_report, is_session

    if not is_session(ref):
        from cli.evaluate import report_cmd

        report_cmd(ref, Path(out or "report.html"), json_out)
        return
    path = build_session_report(ref, out or f"{ref}.html")
    if json_out:
        print_json({"report": str(path), "format": "markdown" if path.suffix == ".md" else "html",
                    "session_id": ref})
    else:
        human(False).print(f"report written to {path}")


def register(app: typer.Typer) -> None:
    """Add ``report``: it takes over the run report's command name and keeps its behaviour for run ids."""
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "report"]
    app.command("report")(report)
