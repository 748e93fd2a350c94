"""People's grades: the share of acceptable answers for free text, the number the quality bar needs.

A similarity (chrF, ROUGE-L, token F1) ranks prompt variants but says nothing about how many answers a user
would accept. Here a person marks a seeded sample of logged outputs (``eval.grades``: 30 by default) good,
bad or skip, beside the input and the reference; the share is good / (good + bad) with a Wilson 95% interval.

- **What is graded**: the predictions a run logged: a prompt-evaluation run's variants (Steps 1 and 2:
  ``baseline``, ``shots_5``, ...) or a training run's test evaluation (``tuned``, ``base``,
  ``prompt_baseline``). The sample depends only on the test file's row count and the seed, so the tuned
  model's outputs are graded on the same rows as the prompt's and the paired difference uses one measure.
- **Resumable**: every grade is a run-log row (``RunLog.log_grade``); the latest per row counts.
- **Scripted**: ``read_grades_file`` reads JSONL or CSV (row index or input text, and a grade); a bad line is
  an ``InputError`` naming file:line:field.
- **A judge calibrated on the grades**: ``calibrate_judge`` compares a judge's PASS/FAIL on the graded rows
  with the person's grades (``judge.agreement``: %, Cohen's kappa, n). Only above the agreement floor
  (``eval.judge.agreement_floor``) does its verdict stand in for the person's on the rows nobody graded.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import InputError, where
from tools.scoring import metrics as M
from tools.scoring.judge import Agreement, agreement

GRADES = ("good", "bad", "skip")
KEYS = {"g": "good", "b": "bad", "s": "skip"}  # the single keys of the CLI and the TUI pane
RULE_ID = "eval.grades"
_SPELLINGS = {"good": "good", "g": "good", "bad": "bad", "b": "bad", "skip": "skip", "s": "skip",
              "accept": "good", "accepted": "good", "reject": "bad", "rejected": "bad", "pass": "good",
              "fail": "bad", "1": "good", "0": "bad", "true": "good", "false": "bad", "yes": "good", "no": "bad"}
_ROW_FIELDS = ("row", "idx", "index")


# ---------------------------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class GradingPlan:
    """How many outputs to grade, the sample's seed, and the time one grade takes (``eval.grades``)."""

    sample_size: int
    seed: int
    seconds_per_grade: float
    rule_id: str = RULE_ID

    def seconds(self, n: int | None = None) -> float:
        return (self.sample_size if n is None else n) * self.seconds_per_grade

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds()}


def grading_plan() -> GradingPlan:
    """The sample size, seed and seconds per grade of knowledge rule ``eval.grades``."""
    import knowledge

    raw = knowledge.load().rule(RULE_ID).raw
    return GradingPlan(int(raw["sample_size"]), int(raw["seed"]), float(raw["seconds_per_grade"]))


def sample_rows(n_rows: int, size: int, seed: int) -> list[int]:
    """A seeded sample of ``size`` row indexes out of ``n_rows`` (all of them when fewer), in test order.

    It depends on nothing but these three numbers, so two runs scored on the same test file are graded on
    the same rows."""
    if n_rows <= size:
        return list(range(n_rows))
    return sorted(random.Random(seed).sample(range(n_rows), size))


def normalize_grade(raw: Any) -> str | None:
    """``good``/``bad``/``skip`` from the spellings people use (g, b, s, pass, fail, 1, 0, ...), else None."""
    return _SPELLINGS.get(str(raw).strip().lower()) if raw is not None else None


# ---------------------------------------------------------------------------------------------- the share

@dataclass
class GradedShare:
    """Good / (good + bad) over the graded rows of one variant's outputs, with a Wilson 95% interval.

    ``share`` is None while nothing is graded good or bad. ``judge`` holds the calibration of a judge on
    these rows when one was run; ``judged_share`` is then the share over the whole test set with the judge's
    verdicts standing in on the rows nobody graded (only when the judge is trusted)."""

    variant: str
    good: int
    bad: int
    skipped: int
    share: float | None
    ci95: tuple[float, float]
    sample_size: int = 0
    run_id: str | None = None
    graders: list[str] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    metric: str = "graded_share"
    rule_id: str = RULE_ID

    @property
    def n(self) -> int:
        """Rows graded good or bad (skips count for neither side)."""
        return self.good + self.bad

    @property
    def pending(self) -> int:
        return max(0, self.sample_size - self.good - self.bad - self.skipped)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(n=self.n, pending=self.pending, ci95=list(self.ci95), share_metric=True)
        return d


def graded_share(grades: Mapping[int, str], *, variant: str = "baseline", sample_size: int | None = None,
                 run_id: str | None = None, graders: Sequence[str] = ()) -> GradedShare:
    """The acceptance share of ``grades`` (row index -> good/bad/skip) with its Wilson 95% interval."""
    good = sum(1 for g in grades.values() if g == "good")
    bad = sum(1 for g in grades.values() if g == "bad")
    skipped = sum(1 for g in grades.values() if g == "skip")
    n = good + bad
    return GradedShare(variant, good, bad, skipped, good / n if n else None, M.wilson_ci(good, n),
                       sample_size if sample_size is not None else len(grades), run_id, sorted(set(graders)))


def paired_grades(a: Mapping[int, str], b: Mapping[int, str], *, metric: str = "graded_share"
                  ) -> M.PairedDifference | None:
    """B minus A on the rows both have graded good or bad (e.g. the prompt's and the tuned model's outputs
    on the same test rows), with a paired CI and McNemar's test; None when no row pairs up."""
    rows = sorted(i for i in a if i in b and a[i] != "skip" and b[i] != "skip")
    if not rows:
        return None
    return M.paired_difference([1.0 if a[i] == "good" else 0.0 for i in rows],
                               [1.0 if b[i] == "good" else 0.0 for i in rows], metric=metric)


# ---------------------------------------------------------------------------------------------- a grades file

def read_grades_file(path: str | Path, inputs: Sequence[str], *, variant: str | None = None
                     ) -> dict[str, dict[int, str]]:
    """Grades from a JSONL or CSV file -> ``{variant: {row index: grade}}``.

    Each line names a row by ``row`` (or ``idx``/``index``: the 0-based row of the test file) or by its
    ``input`` text, and gives a ``grade`` (good/bad/skip, or g/b/s, pass/fail, 1/0). An optional ``variant``
    says whose outputs were graded (default ``variant``, else ``baseline``: the plain prompt). ``inputs`` are
    the test rows' inputs, to check indexes and find rows by text. A bad line raises ``InputError`` naming
    file:line:field; the file is only read."""
    p = Path(path)
    if not p.is_file():
        raise InputError("grades file not found", where=str(p), fix="give a JSONL or CSV file of row and grade")
    text = p.read_text(encoding="utf-8", errors="replace")
    by_input: dict[str, int] = {}
    for i, s in enumerate(inputs):
        by_input.setdefault(M.normalize(s), i)
    out: dict[str, dict[int, str]] = {}
    for line_no, rec in _records(p, text):
        grade = normalize_grade(rec.get("grade"))
        if grade is None:
            raise InputError(f"grade {rec.get('grade')!r} is not good, bad or skip", where=where(p, line_no, "grade"),
                             fix="write good, bad or skip (or g, b, s)")
        key = next((k for k in _ROW_FIELDS if rec.get(k) not in (None, "")), None)
        if key is not None:
            try:
                idx = int(str(rec[key]).strip())
            except ValueError:
                raise InputError(f"row {rec[key]!r} is not a whole number", where=where(p, line_no, key),
                                 fix="give the 0-based row of the test file") from None
            if not 0 <= idx < len(inputs):
                raise InputError(f"row {idx} is outside the test set's {len(inputs)} rows",
                                 where=where(p, line_no, key), fix=f"rows are 0 to {len(inputs) - 1}")
        elif rec.get("input") not in (None, ""):
            found = by_input.get(M.normalize(str(rec["input"])))
            if found is None:
                raise InputError("no test row has this input", where=where(p, line_no, "input"),
                                 fix="copy the input exactly, or give the row index as 'row'")
            idx = found
        else:
            raise InputError("the line names no row", where=where(p, line_no, "row"),
                             fix="add 'row' (0-based index in the test file) or 'input'")
        name = str(rec.get("variant") or variant or "baseline")
        out.setdefault(name, {})[idx] = grade
    if not out:
        raise InputError("the grades file holds no grades", where=str(p), fix="one line per graded row")
    return out


def _records(p: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-empty line of a JSONL file or data row of a CSV file."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.lstrip().startswith("{"):
        out: list[tuple[int, dict[str, Any]]] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"not a JSON object: {e.msg}", where=where(p, n), fix="one JSON object per line") from None
            if not isinstance(rec, dict):
                raise InputError("not a JSON object", where=where(p, n), fix="one JSON object per line")
            out.append((n, rec))
        return out
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "grade" not in fields:
        raise InputError("the CSV header has no 'grade' column", where=where(p, 1, "grade"),
                         fix="a header such as: row,grade  (or input,grade)")
    return [(reader.line_num, {str(k).strip().lower(): v for k, v in row.items() if k is not None})
            for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]


# ---------------------------------------------------------------------------------------------- the run log

@dataclass
class GradingItem:
    """One output to grade: the test row, its input and reference, the output, and its grade so far."""

    idx: int
    input: str
    expected: str
    output: str
    grade: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GradingSet:
    """The sampled outputs of one run's variant, with the grades given so far (from the run log)."""

    run_id: str
    variant: str
    eval_id: str
    test_sha256: str | None
    metric: str | None
    total_rows: int
    seed: int
    items: list[GradingItem]
    inputs: list[str] = field(default_factory=list, repr=False)

    def pending(self) -> list[GradingItem]:
        """The sampled rows not graded yet, in order: where a resumed session starts."""
        return [it for it in self.items if it.grade is None]

    def share(self) -> GradedShare:
        """The share over the sampled rows graded so far."""
        return graded_share({it.idx: it.grade for it in self.items if it.grade}, variant=self.variant,
                            sample_size=len(self.items), run_id=self.run_id)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "variant": self.variant, "eval_id": self.eval_id,
                "test_sha256": self.test_sha256, "metric": self.metric, "total_rows": self.total_rows,
                "seed": self.seed, "sample": [it.idx for it in self.items], "items": [it.to_dict() for it in self.items],
                "graded": self.share().to_dict()}


def _evaluation(run_id: str, variant: str | None) -> tuple[dict[str, Any], str]:
    """The evaluation whose predictions are graded, and the variant's name: a prompt-evaluation run's variant
    (default ``baseline``, the plain prompt) or a training run's test evaluation (default ``tuned``)."""
    from tools.runlog import RunLog

    log = RunLog()
    run = log.find_run(run_id)
    evals = log.query("SELECT eval_id, kind, metric, test_sha256, details, n FROM evaluations WHERE run_id = ? "
                      "ORDER BY created_at DESC", [run["run_id"]])
    if run.get("kind") == "prompt_eval":
        name = variant or "baseline"
        for ev in evals:
            details = json.loads(ev["details"]) if ev.get("details") else {}
            if ev["kind"] == "prompt_eval" and details.get("variant") == name:
                return {**ev, "run_id": run["run_id"]}, name
        names = sorted({(json.loads(e["details"]) if e.get("details") else {}).get("variant") or "?" for e in evals
                        if e["kind"] == "prompt_eval"})
        raise InputError(f"run {run['run_id']} has no outputs of the variant {name!r}", where="--variant",
                         fix=f"one of: {', '.join(names) or 'none logged'}")
    name = variant or "tuned"
    kind = "test" if name == "tuned" else f"test_{name}"
    for ev in evals:
        if ev["kind"] == kind:
            return {**ev, "run_id": run["run_id"]}, name
    raise InputError(f"run {run['run_id']} has no logged {name} outputs on a test set", where="--run",
                     fix="score the run first: tunewise eval test --run RUN --test TEST")


def variants(run_id: str) -> list[str]:
    """The outputs of ``run_id`` that can be graded: a prompt-evaluation run's variants (``baseline`` first) or a
    training run's test evaluations (``tuned``, ``base``, ``prompt_baseline``)."""
    from tools.runlog import RunLog

    log = RunLog()
    run = log.find_run(run_id)
    evals = log.query("SELECT kind, details FROM evaluations WHERE run_id = ? ORDER BY created_at", [run["run_id"]])
    if run.get("kind") == "prompt_eval":
        names = [(json.loads(e["details"]) if e.get("details") else {}).get("variant") for e in evals
                 if e["kind"] == "prompt_eval"]
    else:
        names = ["tuned" if e["kind"] == "test" else e["kind"].removeprefix("test_") for e in evals
                 if e["kind"] == "test" or e["kind"].startswith("test_")]
    return list(dict.fromkeys(str(n) for n in names if n))


def grading_set(run_id: str, *, variant: str | None = None, n: int | None = None, seed: int | None = None
                ) -> GradingSet:
    """The sampled outputs of ``run_id``'s ``variant`` to grade (``n`` rows, default ``eval.grades``'s 30),
    with the grades already in the run log, so grading resumes where it stopped."""
    from tools.runlog import RunLog

    plan = grading_plan()
    ev, name = _evaluation(run_id, variant)
    log = RunLog()
    rows = log.query("SELECT idx, input, expected, prediction FROM predictions WHERE eval_id = ? ORDER BY idx",
                     [ev["eval_id"]])
    if not rows:
        raise InputError(f"run {ev['run_id']} logged no outputs for {name}", where="--run",
                         fix="run the evaluation again; its predictions go to the run log")
    seed = plan.seed if seed is None else seed
    size = n or plan.sample_size
    # rows already graded for other outputs on this test file come first: the paired difference needs them
    available = {int(r["idx"]) for r in rows}
    shared = sorted(available & graded_elsewhere(ev.get("test_sha256"), ev["run_id"], name))[:size]
    fill = [i for i in sample_rows(len(rows), size + len(shared), seed) if i not in shared]
    sample = set(shared) | set(fill[: size - len(shared)])
    given = {int(g["idx"]): g["grade"] for g in log.grades(ev["run_id"], name)}
    items = [GradingItem(int(r["idx"]), r["input"] or "", r["expected"] or "", r["prediction"] or "",
                         given.get(int(r["idx"]))) for r in rows if int(r["idx"]) in sample]
    return GradingSet(ev["run_id"], name, ev["eval_id"], ev.get("test_sha256"), ev.get("metric"), len(rows), seed,
                      items, [r["input"] or "" for r in rows])


def graded_elsewhere(test_sha256: str | None, run_id: str, variant: str) -> set[int]:
    """Rows of this test file graded for other outputs (another run or variant), e.g. the prompt's."""
    if not test_sha256:
        return set()
    from tools.runlog import RunLog

    rows = RunLog().query("SELECT DISTINCT idx FROM grades WHERE test_sha256 = ? AND NOT (run_id = ? AND variant = ?) "
                          "AND grade IN ('good', 'bad')", [test_sha256, run_id, variant])
    return {int(r["idx"]) for r in rows}


def paired_with_others(gs: GradingSet) -> list[dict[str, Any]]:
    """This variant's grades against every other graded output on the same test file (the prompt's against the
    tuned model's), on the rows both graded: B (this one) minus A with its paired CI and McNemar's test."""
    if not gs.test_sha256:
        return []
    from tools.runlog import RunLog

    others = RunLog().query("SELECT DISTINCT run_id, variant FROM grades WHERE test_sha256 = ? AND NOT "
                            "(run_id = ? AND variant = ?) ORDER BY run_id, variant",
                            [gs.test_sha256, gs.run_id, gs.variant])
    mine = logged_grades(gs.run_id, gs.variant)
    out = []
    for o in others:
        d = paired_grades(logged_grades(o["run_id"], o["variant"]), mine)
        if d is not None:
            out.append({"a_run_id": o["run_id"], "a_variant": o["variant"], "b_variant": gs.variant, **d.to_dict()})
    return out


def record_grade(gs: GradingSet, idx: int, grade: str, *, grader: str = "user") -> GradedShare:
    """Store one grade (good/bad/skip, or g/b/s) of row ``idx`` in the run log; returns the share so far."""
    g = normalize_grade(grade)
    if g is None:
        raise InputError(f"grade {grade!r} is not good, bad or skip", where="grade", fix="g, b or s")
    item = next((it for it in gs.items if it.idx == idx), None)
    if item is None:
        raise InputError(f"row {idx} is not in the sample being graded", where="row")
    from tools.runlog import RunLog

    RunLog().log_grade(run_id=gs.run_id, eval_id=gs.eval_id, variant=gs.variant, test_sha256=gs.test_sha256,
                       idx=idx, grade=g, grader=grader)
    item.grade = g
    return gs.share()


def import_grades(gs: GradingSet, path: str | Path) -> GradedShare:
    """Store the grades a file gives in the run log: for this run's variant (rows outside the sample too), and
    for any other variant of the run a line names. Returns the share over every graded row of ``gs``'s
    variant. The file is only read."""
    from tools.runlog import RunLog

    by_variant = read_grades_file(path, gs.inputs, variant=gs.variant)
    log = RunLog()
    # every variant the file names must exist before anything is stored: a bad file stores nothing
    targets = {name: gs if name == gs.variant else grading_set(gs.run_id, variant=name, seed=gs.seed)
               for name in by_variant}
    for name, graded in by_variant.items():
        target = targets[name]
        for idx, g in sorted(graded.items()):
            log.log_grade(run_id=target.run_id, eval_id=target.eval_id, variant=name, test_sha256=target.test_sha256,
                          idx=idx, grade=g, grader=f"file:{Path(path).name}")
    graded = by_variant.get(gs.variant) or {}
    for it in gs.items:
        it.grade = graded.get(it.idx, it.grade)
    return logged_share(gs.run_id, gs.variant) or graded_share({}, variant=gs.variant, run_id=gs.run_id)


def logged_grades(run_id: str, variant: str) -> dict[int, str]:
    """Row index -> the latest grade logged for ``run_id``'s ``variant`` (empty when none)."""
    from tools.runlog import RunLog

    return {int(g["idx"]): g["grade"] for g in RunLog().grades(run_id, variant)}


def grades_for_outputs(run_id: str, variant: str) -> dict[int, str]:
    """Row -> grade for ``run_id``'s ``variant``, including grades given to the same output text on the same
    test file in an earlier run (a re-measured prompt at temperature 0 writes the same answers, and a grade
    belongs to an answer, not to a run id). The latest grade of each row wins."""
    from tools.errors import TunewiseError
    from tools.runlog import RunLog

    try:
        ev, name = _evaluation(run_id, variant)
    except TunewiseError:  # not a run in the log (nothing logged to match against): its own grades only
        return logged_grades(run_id, variant)
    rows = RunLog().query(
        "SELECT g.idx, g.grade FROM grades g "
        "JOIN predictions old ON old.eval_id = g.eval_id AND old.idx = g.idx "
        "JOIN predictions new ON new.eval_id = ? AND new.idx = g.idx "
        "WHERE g.test_sha256 IS NOT DISTINCT FROM ? AND old.prediction IS NOT DISTINCT FROM new.prediction "
        "ORDER BY g.created_at", [ev["eval_id"], ev.get("test_sha256")])
    out = {int(r["idx"]): str(r["grade"]) for r in rows}
    return {**out, **logged_grades(ev["run_id"], name)}


def logged_share(run_id: str, variant: str) -> GradedShare | None:
    """The share over every row of ``run_id``'s ``variant`` graded in the run log, or None when none is."""
    from tools.runlog import RunLog

    rows = RunLog().grades(run_id, variant)
    if not rows:
        return None
    share = graded_share({int(g["idx"]): g["grade"] for g in rows}, variant=variant, run_id=run_id,
                         graders=[str(g["grader"]) for g in rows])
    share.sample_size = len(rows)
    return share


# ---------------------------------------------------------------------------------------------- judge calibration

def calibrate_judge(judge_verdicts: Mapping[int, str | None], grades: Mapping[int, str]) -> Agreement:
    """A judge's PASS/FAIL against the person's good/bad on the rows both judged (skips left out): share
    agreeing, Cohen's kappa and n, trusted only above ``eval.judge.agreement_floor``."""
    rows = sorted(i for i, g in grades.items() if g in ("good", "bad") and i in judge_verdicts)
    truth = ["PASS" if grades[i] == "good" else "FAIL" for i in rows]
    return agreement([judge_verdicts[i] for i in rows], list(truth), ground_truth="your grades")


def judged_share(grades: Mapping[int, str], judge_verdicts: Mapping[int, str | None], calibration: Agreement,
                 *, total_rows: int, variant: str = "baseline", run_id: str | None = None) -> GradedShare:
    """The person's grades, and, when the judge is trusted, the judge's verdicts on every row nobody graded:
    one share over the test set. An untrusted judge adds nothing (the person's grades alone)."""
    base = graded_share(grades, variant=variant, run_id=run_id, graders=["user"])
    judged = {i: v for i, v in judge_verdicts.items() if i not in grades and v in ("PASS", "FAIL")}
    info: dict[str, Any] = {"calibration": calibration.to_dict(), "stands_in": calibration.trusted,
                            "judged_rows": len(judged) if calibration.trusted else 0, "total_rows": total_rows}
    if not calibration.trusted or not judged:
        base.judge = info
        return base
    good = base.good + sum(1 for v in judged.values() if v == "PASS")
    bad = base.bad + sum(1 for v in judged.values() if v == "FAIL")
    out = GradedShare(variant, good, bad, base.skipped, good / (good + bad), M.wilson_ci(good, good + bad),
                      base.sample_size, run_id, ["user", "judge"], info)
    return out


def judge_outputs(gs: GradingSet, judge_model: str, *, base_url: str | None = None,
                  on_progress: Any = None) -> GradedShare:
    """A judge grades every logged output of ``gs``'s variant (PASS/FAIL against the reference); its verdicts go
    to the run log, its agreement with the person's grades decides whether it stands in on the other rows."""
    from tools.runlog import RunLog
    from tools.scoring.judge import Judge, rubric

    rows = RunLog().query("SELECT idx, input, expected, prediction FROM predictions WHERE eval_id = ? ORDER BY idx",
                          [gs.eval_id])
    judge = Judge(judge_model, base_url=base_url)
    res = rubric(judge, [r["input"] or "" for r in rows], [r["prediction"] or "" for r in rows],
                 [r["expected"] or "" for r in rows], on_progress=on_progress)
    verdicts = {int(r["idx"]): v for r, v in zip(rows, res.verdicts, strict=True)}
    grades = logged_grades(gs.run_id, gs.variant)
    calibration = calibrate_judge(verdicts, grades)
    log = RunLog()
    eval_id = log.log_evaluation(gs.run_id, JUDGE_KIND, metric=res.metric, value=res.rate, ci=list(res.ci95),
                                 n=res.valid, test_sha256=gs.test_sha256,
                                 details={"variant": gs.variant, "judge": judge.name, "total_rows": len(rows),
                                          "calibration": calibration.to_dict()})
    log.log_judge_verdicts(eval_id, gs.run_id, judge.name, "rubric",
                           [{"idx": i, "verdict": v} for i, v in verdicts.items()])
    return judged_share(grades, verdicts, calibration, total_rows=len(rows), variant=gs.variant, run_id=gs.run_id)


JUDGE_KIND = "judge_grades"


def logged_judge(run_id: str, variant: str) -> tuple[dict[int, str | None], int] | None:
    """The newest judge verdicts on ``run_id``'s ``variant`` (row -> PASS/FAIL) and the rows judged, or None."""
    from tools.runlog import RunLog

    log = RunLog()
    evs = [e for e in log.query("SELECT eval_id, details FROM evaluations WHERE run_id = ? AND kind = ? "
                                "ORDER BY created_at DESC", [run_id, JUDGE_KIND])
           if json.loads(e["details"] or "{}").get("variant") == variant]
    if not evs:
        return None
    rows = log.query("SELECT idx, verdict FROM judge_verdicts WHERE eval_id = ? ORDER BY idx", [evs[0]["eval_id"]])
    return {int(r["idx"]): r["verdict"] for r in rows}, len(rows)
