"""People's grades (tools/scoring/grades.py): the seeded sample, the share with its Wilson CI, a grades file
read row by row with file:line:field errors, the paired difference on the same rows, and a judge that stands in
only above the agreement floor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.errors import InputError
from tools.scoring import grades as G
from tools.scoring.metrics import wilson_ci

INPUTS = [f"dialogue {i}: A met B." for i in range(40)]


def test_plan_comes_from_knowledge() -> None:
    plan = G.grading_plan()
    assert (plan.sample_size, plan.rule_id) == (30, "eval.grades") and plan.seconds() == 30 * plan.seconds_per_grade


def test_sample_is_seeded_and_in_test_order() -> None:
    a = G.sample_rows(200, 30, 0)
    assert a == G.sample_rows(200, 30, 0) and a == sorted(a) and len(set(a)) == 30
    assert a != G.sample_rows(200, 30, 1)
    assert G.sample_rows(12, 30, 0) == list(range(12))  # fewer rows than the sample: all of them


def test_share_skips_count_for_neither_side() -> None:
    s = G.graded_share({0: "good", 1: "good", 2: "bad", 3: "skip"}, sample_size=30)
    assert (s.good, s.bad, s.skipped, s.n, s.pending) == (2, 1, 1, 3, 26)
    assert s.share == pytest.approx(2 / 3) and s.ci95 == wilson_ci(2, 3)
    assert G.graded_share({0: "skip"}).share is None


def test_file_by_row_or_input_jsonl_and_csv(tmp_path: Path) -> None:
    j = tmp_path / "g.jsonl"
    j.write_text(json.dumps({"row": 3, "grade": "g"}) + "\n\n" +
                 json.dumps({"input": " Dialogue 5:  A met B. ", "grade": "FAIL"}) + "\n" +
                 json.dumps({"row": 1, "grade": "good", "variant": "tuned"}) + "\n")
    assert G.read_grades_file(j, INPUTS) == {"baseline": {3: "good", 5: "bad"}, "tuned": {1: "good"}}
    c = tmp_path / "g.csv"
    c.write_text("idx,grade\n0,skip\n7,1\n")
    assert G.read_grades_file(c, INPUTS, variant="shots_5") == {"shots_5": {0: "skip", 7: "good"}}


@pytest.mark.parametrize("body,where", [
    ('{"row": 0, "grade": "good"}\n{"row": 2, "grade": "meh"}\n', ":2:grade"),
    ('{"row": 0, "grade": "good"}\n{"row": 40, "grade": "bad"}\n', ":2:row"),
    ('{"row": "x", "grade": "bad"}\n', ":1:row"),
    ('{"input": "nobody wrote this", "grade": "bad"}\n', ":1:input"),
    ('{"grade": "bad"}\n', ":1:row"),
    ('{"row": 0, "grade": "good"}\nnot json\n', ":2"),
])
def test_bad_lines_name_file_line_field(tmp_path: Path, body: str, where: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(body)
    before = f.read_bytes()
    with pytest.raises(InputError) as e:
        G.read_grades_file(f, INPUTS)
    assert e.value.where == f"{f}{where}"
    assert f.read_bytes() == before  # the user's file is only read


def test_csv_without_a_grade_column(tmp_path: Path) -> None:
    f = tmp_path / "g.csv"
    f.write_text("row,verdict\n0,good\n")
    with pytest.raises(InputError) as e:
        G.read_grades_file(f, INPUTS)
    assert e.value.where == f"{f}:1:grade"


def test_paired_difference_on_the_rows_both_graded() -> None:
    prompt = {i: "good" if i < 10 else "bad" for i in range(30)}
    tuned = {i: "good" if i < 25 else "bad" for i in range(30)}
    tuned[29] = "skip"
    d = G.paired_grades(prompt, tuned)
    assert d is not None and d.n == 29 and d.diff == pytest.approx(15 / 29) and d.mcnemar is not None
    assert G.paired_grades({0: "good"}, {1: "bad"}) is None


def test_judge_stands_in_only_above_the_floor() -> None:
    grades = {i: "good" if i % 3 else "bad" for i in range(30)}
    agreeing = {i: ("PASS" if g == "good" else "FAIL") for i, g in grades.items()}
    agreeing.update({i: "PASS" for i in range(30, 40)})  # the ten rows nobody graded
    cal = G.calibrate_judge(agreeing, grades)
    assert cal.trusted and cal.n == 30 and cal.kappa == pytest.approx(1.0)
    share = G.judged_share(grades, agreeing, cal, total_rows=40)
    assert (share.good, share.bad) == (30, 10) and share.share == pytest.approx(0.75)
    assert share.judge and share.judge["stands_in"] and share.judge["judged_rows"] == 10

    always_pass = {i: "PASS" for i in range(40)}  # agrees on 2/3 of the rows, knows nothing: kappa 0
    cal = G.calibrate_judge(always_pass, grades)
    assert not cal.trusted and cal.kappa == pytest.approx(0.0)
    share = G.judged_share(grades, always_pass, cal, total_rows=40)
    assert (share.good, share.bad) == (20, 10) and share.judge and not share.judge["stands_in"]


def _prompt_run(outputs: list[str]) -> str:
    from tools.runlog import RunLog

    log = RunLog()
    run_id = log.start_run("prompt_eval", config={"metric": "chrf"})
    eval_id = log.log_evaluation(run_id, "prompt_eval", metric="chrf", value=0.2, n=len(outputs), test_sha256="sha",
                                 details={"variant": "baseline"})
    log.log_predictions(run_id, eval_id, [{"idx": i, "input": INPUTS[i], "expected": "ref", "prediction": o}
                                          for i, o in enumerate(outputs)])
    return run_id


def test_a_grade_follows_the_same_output_into_a_new_run() -> None:
    first = _prompt_run([f"answer {i}" for i in range(6)])
    gs = G.grading_set(first, n=6)
    for idx, g in ((0, "good"), (1, "bad"), (2, "good")):
        G.record_grade(gs, idx, g)
    # measured again (a new run): rows 0 and 1 answered the same, row 2 differently
    second = _prompt_run(["answer 0", "answer 1", "a new answer", "answer 3", "answer 4", "answer 5"])
    assert G.grades_for_outputs(second, "baseline") == {0: "good", 1: "bad"}
    assert G.logged_grades(second, "baseline") == {}
    assert G.grades_for_outputs("not-a-run", "baseline") == {}


@pytest.mark.real_model
def test_the_embedded_model_judges_logged_outputs(real_model_dir: Path) -> None:
    """The embedded model as a local judge (choice mode: every reply is a verdict) on a prompt's logged outputs;
    its verdicts and its calibration on the person's grades go to the run log."""
    from tools.runlog import RunLog

    run_id = _prompt_run([f"A met B ({i})." if i % 2 else "I do not know." for i in range(8)])
    gs = G.grading_set(run_id)
    for it in gs.items[:6]:
        G.record_grade(gs, it.idx, "good" if it.idx % 2 else "bad")
    out = G.judge_outputs(gs, str(real_model_dir))
    cal = (out.judge or {})["calibration"]
    assert cal["n"] == 6 and cal["ground_truth"] == "your grades" and cal["floor_n"] == 30
    assert not cal["trusted"]  # six rows are under the floor's 30, whatever the kappa
    found = G.logged_judge(run_id, "baseline")
    assert found is not None and found[1] == 8 and set(found[0].values()) <= {"PASS", "FAIL"}
    assert RunLog().query("SELECT count(*) AS n FROM evaluations WHERE kind = 'judge_grades'")[0]["n"] == 1
