"""Final answers of worked solutions (issue 22, item 1): markers, strict and flexible readings, normalising."""

from __future__ import annotations

import pytest

from tools.data import answers as A


@pytest.mark.parametrize(("text", "marker", "answer"), [
    ("3 + 4 = 7\n#### 7", "hash", "7"),
    ("so the total is\n#### 1,000", "hash", "1,000"),
    ("We get $x = \\frac{1}{2}$, so \\boxed{\\frac{1}{2}}", "boxed", "\\frac{1}{2}"),
    ("Adding them up, the answer is 18.", "answer", "18"),
    ("Speed = 60 * 540 = 32400\nCorrect answer - A", "answer", "A"),
    ("x = 250 m. Answer D", "answer", "D"),
    ("4x:5y=16:15\nANSWER:A", "answer", "A"),
    ("So\nAnswer: Option B", "answer", "B"),
    ("Thus, C is the correct answer", "answer", "C"),
    ("the rest follows\n(E)", "answer", "E"),
])
def test_the_marked_answer_on_the_last_line(text: str, marker: str, answer: str) -> None:
    fa = A.final_answer_of(text)
    assert fa is not None and (fa.marker, fa.answer) == (marker, answer)


def test_a_worked_solution_needs_working_before_the_answer() -> None:
    assert A.is_worked_solution("Answer: C") is None  # a short answer, not worked steps
    assert A.is_worked_solution("The answer is 42") is None
    assert A.is_worked_solution("3x = 12, so x = 4\n#### 4") is not None
    assert A.is_worked_solution("The weather was fine and we went to the beach.") is None  # prose: no marker
    assert A.is_worked_solution("A list of things\n- apples\n- pears") is None


@pytest.mark.parametrize(("got", "want", "same"), [
    ("1,000", "1000", True), ("$18", "18", True), ("18.0", "18", True), ("18 dollars.", "$18", True),
    ("3/4", "0.75", True), ("17", "18", False), ("(C)", "C", True), ("c.", "C", True), ("D", "C", False),
    ("Paris", "paris.", True), (None, "3", False),
])
def test_answers_compare_after_normalising(got: str | None, want: str, same: bool) -> None:
    assert A.same_answer(got, want) is same


def test_strict_reads_the_references_marker_flexible_the_last_number() -> None:
    ref = "She buys 3 * 4 = 12 apples.\nIn total 5 + 12 = 17.\n#### 17"
    assert A.score_final_answer("5 + 12 = 17 apples.\n#### 17", ref) == (1.0, 1.0)
    # right number, but not behind the reference's marker: flexible only (lm-eval's flexible-extract)
    assert A.score_final_answer("5 + 12 = 17", ref) == (0.0, 1.0)
    # the marked answer is right but the reply goes on with another number: strict only
    assert A.score_final_answer("#### 17\nCheck: 17 - 12 = 5", ref) == (1.0, 0.0)
    assert A.score_final_answer("The answer is 16.", ref) == (0.0, 0.0)
    assert A.score_final_answer("#### $1,000.00", "...\n#### 1000") == (1.0, 1.0)


def test_a_rows_own_answer_field_wins_and_option_letters_are_read_as_letters() -> None:
    ref = "Length of the ship is 250 m."  # an AQuA rationale that names no option
    assert A.score_final_answer("x = 250 m, so the answer is D.", ref, answer="D") == (1.0, 1.0)
    assert A.score_final_answer("Among A) and D), I pick (B)", ref, answer="D") == (0.0, 0.0)
    assert A.score_final_answer("Answer: D) 250 m", "steps\nAnswer: D") == (1.0, 1.0)
