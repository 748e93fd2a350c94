"""The kind is decided with everything known (issue 22, items 1 and 5): reasoning sets with a final answer, label
sets by repetition at any size, the user's kind and the training data's kind before the guess."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.tools._data_fixtures import REPO, banking77_dir
from tools.data.formats import load_examples
from tools.data.profile import detect_profile
from tools.scoring.rows import profile_for
from tools.types import Example

WORD_PROBLEMS = Path(__file__).parent / "fixtures" / "word_problems_synthetic.jsonl"


def _aqua_dir() -> Path:
    for c in (REPO.parent / "shared" / "data" / "aqua", REPO.parent.parent / "shared" / "data" / "aqua"):
        if (c / "dev.json").exists():
            return c
    pytest.skip("aqua not found")
    raise AssertionError


def _banking(per_intent: int) -> list[Example]:
    by: dict[str, list[str]] = defaultdict(list)
    with (banking77_dir() / "train.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            by[row["category"]].append(row["text"])
    assert len(by) == 77
    return [Example.from_pair(t, lab) for lab, texts in sorted(by.items()) for t in texts[:per_intent]]


def test_aqua_is_a_reasoning_set_with_option_answers() -> None:
    for split in ("dev.json", "test.json"):
        rows = load_examples(_aqua_dir() / split)
        assert len(rows) == 254 and "Options:\nA)" in rows[0].input_text  # the options go under the question
        assert all(r.meta.get("answer") in tuple("ABCDE") for r in rows)  # AQuA's `correct`, kept for scoring
        prof = detect_profile(rows)
        assert prof.output_kind == "reasoning" and prof.answer_marker == "answer"
        assert prof.final_answer_share >= 0.8 and "marked final answer" in prof.reason


def test_a_numeric_word_problem_set_is_reasoning_marked_with_hashes() -> None:
    rows = load_examples(WORD_PROBLEMS)  # GSM8K's columns: question, answer
    prof = detect_profile(rows)
    assert (prof.output_kind, prof.answer_marker, prof.final_answer_share) == ("reasoning", "hash", 1.0)
    assert "task: reasoning" in prof.summary() and "final answer marked 'hash' on 100% of rows" in prof.summary()


def test_short_answers_and_prose_are_not_reasoning() -> None:
    short = [Example.from_pair(f"What is {i} + {i}?", f"Answer: {2 * i}") for i in range(20)]
    assert detect_profile(short).output_kind == "short_answer"
    prose = [Example.from_pair(f"Describe day {i}", f"It was a calm day number {i}. We walked by the river "
                                                    "and talked about the weather and the trees.") for i in range(20)]
    assert detect_profile(prose).output_kind == "text"


@pytest.mark.parametrize("per_intent", [2, 5, 20])
def test_banking77_is_a_label_set_at_any_rows_per_intent(per_intent: int) -> None:
    prof = detect_profile(_banking(per_intent))
    assert prof.output_kind == "label" and len(prof.labels) == 77, prof.reason


def test_distinct_numbers_that_recur_are_not_labels() -> None:
    rows = [Example.from_pair(f"q{i}", str(i % 60 + 100)) for i in range(150)]  # 60 numeric answers, each recurs
    assert detect_profile(rows).output_kind == "short_answer"


def test_a_300_row_test_file_takes_its_training_datas_label_kind() -> None:
    with (banking77_dir() / "test.csv").open(newline="") as f:
        test = [Example.from_pair(r["text"], r["category"]) for r in list(csv.DictReader(f))[::10][:300]]
    assert len(test) == 300
    train = _banking(10)
    assert detect_profile(test).output_kind == "label"  # 75 intents over 300 rows recur: a label set alone too
    prof = profile_for(test, train=train)
    assert prof.output_kind == "label" and len(prof.labels) == 77
    # one row per intent cannot show repetition: alone it reads as short answers, its training data decides
    one_each = _banking(1)
    assert detect_profile(one_each).output_kind == "short_answer"
    prof = profile_for(one_each, train=train)
    assert (prof.output_kind, prof.source, prof.detected_kind) == ("label", "training_data", "short_answer")
    assert len(prof.labels) == 77 and "the training data is label" in prof.reason
    # a test file whose values the training labels never take keeps its own kind
    odd = [Example.from_pair(f"q{i}", f"free answer {i}") for i in range(30)]
    assert profile_for(odd, train=train).output_kind != "label"


def test_the_users_kind_outranks_the_guess_and_the_disagreement_is_shown() -> None:
    rows = load_examples(WORD_PROBLEMS)
    prof = profile_for(rows, task_kind="text")
    assert (prof.output_kind, prof.source, prof.detected_kind) == ("text", "user", "reasoning")
    assert "marked final answer" in prof.reason and "the rows alone read as reasoning" in prof.summary()
    agree = profile_for(rows, task_kind="reasoning")
    assert agree.detected_kind is None and agree.source == "user"
    # the user's kind wins over the training data's too
    assert profile_for(rows[:5], task_kind="text", train=rows).output_kind == "text"


def test_a_reasoning_test_file_takes_the_training_kind(tmp_path: Path) -> None:
    rows = load_examples(WORD_PROBLEMS)
    # five rows whose references lost their markers read as text alone; the training data says reasoning
    bare = [Example.from_pair(e.input_text, e.output_text.rsplit("\n", 1)[0]) for e in rows[:5]]
    assert detect_profile(bare).output_kind == "text"
    prof = profile_for(bare, train=rows[5:])
    assert (prof.output_kind, prof.source, prof.detected_kind) == ("reasoning", "training_data", "text")
    assert prof.answer_marker == "hash" and "the training data is reasoning" in prof.reason
    assert json.loads(json.dumps(prof.to_dict()))["detected_kind"] == "text"


def test_a_runs_training_data_gives_its_test_file_the_kind(tmp_path: Path) -> None:
    """`eval test --run ID` profiles the test file with the run's training data (its logged ``train`` file)."""
    from tools.runlog import RunLog
    from tools.scoring.rows import training_rows

    train = tmp_path / "train.jsonl"
    train.write_text(WORD_PROBLEMS.read_text())
    run_id = RunLog().start_run("train", config={"train": str(train)}, model="m")
    rows = training_rows(run_id)
    assert rows is not None and len(rows) == 30
    bare = [Example.from_pair(e.input_text, e.output_text.rsplit("\n", 1)[0]) for e in rows[:5]]
    assert profile_for(bare, train=rows).output_kind == "reasoning"
    gone = RunLog().start_run("train", config={"train": str(tmp_path / "moved.jsonl")}, model="m")
    assert training_rows(gone) is None and training_rows(None) is None


def test_cleaning_keeps_worked_solutions(tmp_path: Path) -> None:
    """Rationales end in their answer ("ANSWER:D", no full stop) and are mostly maths: prose's completeness
    and gibberish checks do not remove them; the cleaned file's profile is reasoning."""
    from tools.data import clean

    rep = clean(_aqua_dir() / "dev.json", tmp_path / "clean.jsonl").to_dict()
    assert rep["output_kind"] == "reasoning" and rep["kept_rows"] == 254
    assert rep["removed"]["incomplete"] == 0 and rep["removed"]["quality"] == 0
