"""Issue 22, item 4: the advisor never compares a similarity with the bar.

A free-text test set is measured by chrF (a similarity). With no grades, Steps 1 and 2 say the 90% rule
cannot be applied yet and what grading would take, and the card says no number met the bar; with a grades
file the graded share decides, and the card names it. A share metric is compared with the bar as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.advisor import run_scripted
from tools.errors import InputError

BASE = dict(task="domain_language", goals=["quality"], quality_target=0.9, n_examples=5000, consistency="variable",
            gpu_memory_gb=24, gpus=1, model_params_b=7)


@pytest.fixture
def free_text(fake_tools: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The fake prompt evaluation scores a 40-row summary set by chrF (not a share)."""
    test = tmp_path / "summaries.jsonl"
    test.write_text("".join(json.dumps({"input": f"dialogue {i}: A met B at noon.", "output": f"A met B ({i})."}) + "\n"
                            for i in range(40)))
    fake_tools.update(metric="chrf", share=False, baseline=0.277, variants=[("shots_5", 0.31), ("format_spec", 0.29)],
                      test_file=str(test))
    return fake_tools


def advise(tools: dict[str, Any], **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = run_scripted({**BASE, "test_set": tools["test_file"], **extra})["recommendation"]
    return rec


def reason(rec: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(r for r in rec["reasons"] if r["rule"] == rule)


def write_grades(path: Path, good: int, bad: int, *, variant: str | None = None, by_input: bool = False) -> str:
    lines = []
    for i in range(good + bad):
        row: dict[str, Any] = {"input": f"dialogue {i}: A met B at noon."} if by_input else {"row": i}
        row["grade"] = "good" if i < good else "bad"
        if variant:
            row["variant"] = variant
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_no_grades_says_the_bar_cannot_be_applied(free_text: dict[str, Any]) -> None:
    rec = advise(free_text)
    # the similarity never reads as a share against the bar
    texts = " ".join(r["text"] for r in rec["reasons"])
    assert "27.7%" not in texts and "below the 90% bar" not in texts
    r = reason(rec, "dt.bar.ungraded")
    assert "cannot be applied" in r["text"] and "grade 30" in r["text"] and "10 minutes" in r["text"]
    assert "shots_5" in r["text"] and "0.310" in r["text"] and "chrf" in r["text"]
    assert r["evidence"]["comparable_with_bar"] is False and r["evidence"]["grading"]["sample"] == 30
    # meanwhile: the best prompt by similarity, not fine-tuning, and the card says no number met the bar
    assert rec["path"] == "optimized_prompts" and rec["method"] is None
    assert "cannot be applied" in rec["summary"] and "grade 30" in rec["summary"]
    card = rec["card"]
    assert card["deciding_number"]["kind"] == "none" and card["deciding_number"]["compared_with_bar"] is False
    assert [d["rule"] for d in card["deciding"]] == ["dt.bar.ungraded"]
    assert all(n["bar"] is None and n["kind"] == "similarity" for n in card["numbers"][:2])
    assert "ftw.prompts_fail" not in [r["rule"] for r in rec["reasons"]]


def test_grades_file_decides_from_the_graded_share(free_text: dict[str, Any], tmp_path: Path) -> None:
    # 28 of 30 of the plain prompt's outputs accepted: 93.3%, at the bar -> prompts, decided by the graded share
    rec = advise(free_text, grades=write_grades(tmp_path / "g.jsonl", 28, 2))
    assert rec["path"] == "prompts"
    ev = reason(rec, "dt.step1.quality_bar")["evidence"]
    assert ev["deciding"] == "graded" and ev["bar_quality"] == pytest.approx(28 / 30)
    graded = reason(rec, "dt.bar.needs_share")
    assert "93.3%" in graded["text"] and "0.277" in graded["text"] and "28 good, 2 bad" in graded["text"]
    num = rec["card"]["deciding_number"]
    assert num["kind"] == "graded" and num["metric"] == "graded_share" and num["n"] == 30
    assert num["value"] == pytest.approx(28 / 30) and "graded share 93.3%" in num["text"]
    assert "dt.bar.ungraded" not in [r["rule"] for r in rec["reasons"]]


def test_graded_below_the_bar_goes_on_to_fine_tuning(free_text: dict[str, Any], tmp_path: Path) -> None:
    # the plain prompt (by input text) and the best variant both graded below the bar: the tree goes on
    path = tmp_path / "g.jsonl"
    write_grades(path, 12, 18, by_input=True)
    more = tmp_path / "g2.jsonl"
    write_grades(more, 15, 15, variant="shots_5")
    path.write_text(path.read_text() + more.read_text())
    rec = advise(free_text, grades=str(path))
    assert rec["path"] == "fine_tune"
    assert "Optimised prompts score 50.0% (graded)" in reason(rec, "ftw.prompts_fail")["text"]
    assert "The plain prompt scores 40.0% (graded)" in reason(rec, "dt.step1")["text"]
    num = rec["card"]["deciding_number"]
    assert num["kind"] == "graded" and num["value"] == pytest.approx(0.5) and num["fact"] == "optimized_quality"


def test_a_share_metric_is_compared_with_the_bar_as_before(fake_tools: dict[str, Any]) -> None:
    fake_tools.update(metric="label_accuracy", share=True, baseline=0.93)
    rec = advise(fake_tools)
    assert rec["path"] == "prompts"
    num = rec["card"]["deciding_number"]
    assert num["kind"] == "share" and num["metric"] == "label_accuracy" and num["value"] == 0.93


def test_a_bad_grades_file_names_file_line_field(free_text: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"row": 0, "grade": "good"}\n{"row": 1, "grade": "maybe"}\n')
    with pytest.raises(InputError) as e:
        advise(free_text, grades=str(bad))
    assert f"{bad}:2:grade" in str(e.value)


def _logged_judge(verdicts: dict[int, str]) -> None:
    """Judge verdicts on the fake prompt-eval run's plain prompt, as ``tunewise eval grade --judge`` logs them."""
    from tools.runlog import RunLog
    from tools.scoring.grades import JUDGE_KIND

    log = RunLog()
    eval_id = log.log_evaluation("pe-1", JUDGE_KIND, metric="judge_pass_rate", value=None,
                                 details={"variant": "baseline"})
    log.log_judge_verdicts(eval_id, "pe-1", "judge-model", "rubric",
                           [{"idx": i, "verdict": v} for i, v in verdicts.items()])


def test_a_judge_below_the_floor_does_not_stand_in(free_text: dict[str, Any], tmp_path: Path) -> None:
    _logged_judge({i: "PASS" for i in range(40)})  # says PASS to everything: kappa 0
    rec = advise(free_text, grades=write_grades(tmp_path / "g.jsonl", 28, 2))
    assert rec["path"] == "prompts"  # the user's 28 of 30 alone
    text = reason(rec, "dt.bar.needs_share")["text"]
    assert "does not stand in: your grades alone decide" in text and "kappa 0.00" in text
    assert reason(rec, "eval.judge.agreement_floor")["evidence"]["trusted"] is False
    assert rec["card"]["deciding_number"]["n"] == 30


def test_a_calibrated_judge_stands_in_on_the_other_rows(free_text: dict[str, Any], tmp_path: Path) -> None:
    # the judge agrees on all 30 graded rows and fails the 10 nobody graded: 28 of 40 = 70%, below the bar
    _logged_judge({**{i: "PASS" if i < 28 else "FAIL" for i in range(30)}, **{i: "FAIL" for i in range(30, 40)}})
    rec = advise(free_text, grades=write_grades(tmp_path / "g.jsonl", 28, 2))
    assert rec["path"] != "prompts"
    assert "stand in for yours" in reason(rec, "dt.bar.needs_share")["text"]
    assert "The plain prompt scores 70.0% (graded)" in reason(rec, "dt.step1")["text"]
