"""``tunewise eval grade``: outputs graded with single keys, resumable, from a file, one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from tools.errors import InputError


def _prompt_eval_run(rows: int = 40) -> str:
    """A prompt-eval run in the run log with the plain prompt's logged outputs (free text, chrF)."""
    from tools.runlog import RunLog

    log = RunLog()
    run_id = log.start_run("prompt_eval", config={"metric": "chrf"})
    eval_id = log.log_evaluation(run_id, "prompt_eval", metric="chrf", value=0.3, n=rows, test_sha256="sha",
                                 details={"variant": "baseline"})
    log.log_predictions(run_id, eval_id, [{"idx": i, "input": f"dialogue {i}", "expected": f"summary {i}",
                                           "prediction": f"output {i}"} for i in range(rows)])
    log.update_run(run_id, status="completed")
    return run_id


def grade(*args: str, keys: str = "") -> dict:
    r = CliRunner().invoke(app, ["eval", "grade", *args, "--json"], input=keys)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_grades_with_keys_then_resumes() -> None:
    run_id = _prompt_eval_run()
    doc = grade("--run", run_id, keys="ggbs q")  # four rows, then quit
    assert (doc["good"], doc["bad"], doc["skipped"]) == (2, 1, 1)
    assert doc["share"] == 2 / 3 and doc["n"] == 3 and len(doc["sample"]) == 30 and doc["test_rows"] == 40
    lo, hi = doc["ci95"]
    assert 0.2 < lo < 2 / 3 < hi < 1.0  # Wilson on 2 of 3
    # resumed: the four graded rows are kept, the next keys grade rows 5 and 6 of the sample
    doc = grade("--run", run_id, keys="gg q")
    assert (doc["good"], doc["bad"], doc["skipped"]) == (4, 1, 1) and doc["share"] == 0.8
    # the same seed picks the same rows
    assert grade("--run", run_id, keys="q")["sample"] == doc["sample"]


def test_grades_from_a_file_and_bad_lines(tmp_path: Path) -> None:
    run_id = _prompt_eval_run()
    f = tmp_path / "grades.csv"
    f.write_text("row,grade\n0,good\n1,g\n2,bad\n")
    doc = grade("--run", run_id, "--grades", str(f))
    assert (doc["good"], doc["bad"]) == (2, 1) and doc["graders"] == ["file:grades.csv"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"row": 0, "grade": "good"}\n{"row": 99, "grade": "good"}\n')
    r = CliRunner().invoke(app, ["eval", "grade", "--run", run_id, "--grades", str(bad), "--json"])
    assert isinstance(r.exception, InputError) and r.exception.where == f"{bad}:2:row"  # run_guarded: exit 2


def _training_run_on_the_same_test(rows: int = 40) -> str:
    """A training run whose test evaluation logged the tuned model's outputs on the same test file."""
    from tools.runlog import RunLog

    log = RunLog()
    run_id = log.start_run("train", config={})
    eval_id = log.log_evaluation(run_id, "test", metric="chrf", value=0.4, n=rows, test_sha256="sha",
                                 details={"variant": "tuned"})
    log.log_predictions(run_id, eval_id, [{"idx": i, "input": f"dialogue {i}", "expected": f"summary {i}",
                                           "prediction": f"tuned {i}"} for i in range(rows)])
    log.update_run(run_id, status="completed")
    return run_id


def test_tuned_outputs_are_graded_on_the_prompts_rows_and_paired() -> None:
    prompt_run = _prompt_eval_run()
    prompt = grade("--run", prompt_run, "--n", "5", keys="gbbbb")  # the prompt: 1 of 5 accepted
    tuned_run = _training_run_on_the_same_test()
    tuned = grade("--run", tuned_run, "--n", "5", keys="ggggb")  # the tuned model: 4 of 5, on the same rows
    assert tuned["variant"] == "tuned" and tuned["sample"] == prompt["sample"]
    (d,) = tuned["paired"]
    assert d["a_run_id"] == prompt_run and d["a_variant"] == "baseline" and d["n"] == 5
    assert d["diff"] == 0.6 and d["a_quality"] == 0.2 and d["b_quality"] == 0.8


def test_a_judge_calibrated_on_the_grades(tmp_path: Path) -> None:
    """An OpenAI-compatible judge (a local stub) grades every output: where it agrees with your grades it stands
    in on the rows you did not grade; a judge that says PASS to everything does not."""
    from tests._openai_stub import openai_stub

    def fair(body: dict) -> str:  # PASS for even rows, as the person graded them
        answer = body["messages"][-1]["content"].split("ANSWER:")[-1]
        return "PASS" if int(answer.split("output ")[-1].split()[0].rstrip(".")) % 2 == 0 else "FAIL"

    run_id = _prompt_eval_run()
    f = tmp_path / "g.csv"
    f.write_text("row,grade\n" + "".join(f"{i},{'good' if i % 2 == 0 else 'bad'}\n" for i in range(30)))
    with openai_stub(fair) as (url, _):
        doc = grade("--run", run_id, "--grades", str(f), "--judge", "openai:stub-judge", "--base-url", url)
    cal = doc["judge"]["calibration"]
    assert cal["trusted"] and cal["n"] == 30 and cal["kappa"] == 1.0 and cal["ground_truth"] == "your grades"
    assert doc["judge"]["stands_in"] and doc["judge"]["judged_rows"] == 10
    assert (doc["good"], doc["bad"]) == (20, 20) and doc["graders"] == ["user", "judge"]

    with openai_stub(lambda body: "PASS") as (url, _):
        doc = grade("--run", run_id, "--judge", "openai:stub-judge", "--base-url", url)
    assert not doc["judge"]["calibration"]["trusted"] and not doc["judge"]["stands_in"]
    assert (doc["good"], doc["bad"]) == (15, 15)  # your grades alone


def test_the_langchain_tool_reads_a_grades_file(tmp_path: Path) -> None:
    from agent.lc_tools.evaluate import graded_share

    run_id = _prompt_eval_run()
    f = tmp_path / "g.jsonl"
    f.write_text('{"row": 0, "grade": "good"}\n{"input": "dialogue 1", "grade": "bad"}\n')
    doc = graded_share.invoke({"run_id": run_id, "grades_file": str(f)})
    assert (doc["good"], doc["bad"], doc["share"]) == (1, 1, 0.5) and doc["variant"] == "baseline"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"row": 0, "grade": "perhaps"}\n')
    err = graded_share.invoke({"run_id": run_id, "grades_file": str(bad)})["error"]
    assert err["where"] == f"{bad}:1:grade"


def test_a_file_grades_several_variants_of_a_run(tmp_path: Path) -> None:
    from tools.runlog import RunLog
    from tools.scoring.grades import logged_grades

    run_id = _prompt_eval_run()
    log = RunLog()
    eval_id = log.log_evaluation(run_id, "prompt_eval", metric="chrf", value=0.3, n=40, test_sha256="sha",
                                 details={"variant": "shots_5"})
    log.log_predictions(run_id, eval_id, [{"idx": i, "input": f"dialogue {i}", "expected": f"summary {i}",
                                           "prediction": f"five-shot {i}"} for i in range(40)])
    f = tmp_path / "g.csv"
    f.write_text("row,grade,variant\n0,good,\n1,bad,shots_5\n2,good,shots_5\n")
    doc = grade("--run", run_id, "--grades", str(f))
    assert (doc["good"], doc["bad"]) == (1, 0)
    assert logged_grades(run_id, "shots_5") == {1: "bad", 2: "good"}
    f.write_text("row,grade,variant\n0,good,nonesuch\n")
    r = CliRunner().invoke(app, ["eval", "grade", "--run", run_id, "--grades", str(f), "--json"])
    assert isinstance(r.exception, InputError) and "nonesuch" in r.exception.what
