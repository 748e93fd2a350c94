"""People's grades in the advisor: the graded share that Steps 1 and 2 compare with the bar on free text.

A prompt measured by a similarity (chrF, ROUGE-L, token F1) has no number for the bar. This module finds
the grades given for its outputs, from the ``grades`` answer (a JSONL/CSV file: row or input, and good/bad/
skip; ``variant`` says whose outputs, default the plain prompt) and from the run log (``tunewise eval
grade`` and the TUI's grading pane), and attaches the share as ``measured["graded"]``; a judge calibrated
on those grades (``tunewise eval grade --judge``) stands in on the other rows only when it passed the
agreement floor. ``agent.routing.bar_quality`` then decides which number meets the bar.
"""

from __future__ import annotations

from typing import Any

from agent import routing


def needs_grades(measured: dict[str, Any] | None) -> bool:
    """A measurement whose metric is a similarity and whose outputs nobody graded."""
    return bool(measured) and routing.bar_quality(measured)[1] == "similarity"


def file_grades(path: str, test_set: str) -> dict[str, dict[int, str]]:
    """The ``grades`` answer read against the test set's rows: ``{variant: {row: grade}}``. A bad line raises
    ``InputError`` naming file:line:field."""
    from tools.scoring.grades import read_grades_file
    from tools.scoring.rows import load_test

    return read_grades_file(path, [e.input_text for e in load_test(test_set)])


def with_grades(measured: dict[str, Any] | None, *, from_file: dict[str, dict[int, str]] | None = None,
                variant: str = "baseline") -> dict[str, Any] | None:
    """``measured`` with ``graded`` (the share of the outputs people graded good) when its metric is a
    similarity and grades exist: the file's grades over the run log's for the same rows. Unchanged otherwise."""
    if not needs_grades(measured):
        return measured
    assert measured is not None
    from tools.scoring import grades as G

    name = str(measured.get("variant") or variant)
    run_id = measured.get("run_id")
    logged = G.grades_for_outputs(str(run_id), name) if run_id else {}
    given = {**logged, **((from_file or {}).get(name) or {})}
    if not given:
        return measured
    graders = (["user"] if logged else []) + (["file"] if (from_file or {}).get(name) else [])
    share = G.graded_share(given, variant=name, run_id=str(run_id) if run_id else None, graders=graders)
    if share.share is None:  # every graded row skipped: still nothing to compare
        return measured
    judged = _judged(str(run_id), name, given) if run_id else None
    graded = (judged or share).to_dict()
    return {**measured, "graded": graded}


def _judged(run_id: str, variant: str, grades: dict[int, str]) -> Any:
    """A judge calibrated on these grades (logged by ``tunewise eval grade --judge``): its verdicts stand in on
    the rows nobody graded when it passed the agreement floor; otherwise the person's grades alone, and the
    calibration says why."""
    from tools.scoring import grades as G

    found = G.logged_judge(run_id, variant)
    if found is None:
        return None
    verdicts, total = found
    calibration = G.calibrate_judge(verdicts, grades)
    return G.judged_share(grades, verdicts, calibration, total_rows=total, variant=variant, run_id=run_id)
