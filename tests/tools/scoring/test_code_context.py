"""Code run the way its harness runs it (issue 22, item 6): the prompt's imports and definitions before the reply,
prompt + reply for a bare body, as HumanEval's harness runs prompt + completion; MBPP's prose prompts add nothing."""

from __future__ import annotations

from tools.scoring import metrics as M
from tools.scoring import sandbox
from tools.scoring.rows import Scoring, score_texts
from tools.types import Example, TaskProfile

PROMPT = '''from typing import List


def below_zero(operations: List[int]) -> bool:
    """Given deposits and withdrawals starting from zero, is the balance ever below zero?
    >>> below_zero([1, 2, -4, 5])
    True
    """
'''
TESTS = ["assert below_zero([1, 2, -4, 5]) is True", "assert below_zero([1, 2, -3]) is False",
         "assert below_zero([]) is False"]
# A hand-written correct reply that re-writes the function and relies on the prompt's `List`.
FULL = '''Here is the function:
```python
def below_zero(operations: List[int]) -> bool:
    balance = 0
    for op in operations:
        balance += op
        if balance < 0:
            return True
    return False
```
It keeps a running balance.'''
BODY = "    balance = 0\n    for op in operations:\n        balance += op\n        if balance < 0:\n            return True\n    return False\n"
WRONG = "```python\ndef below_zero(operations: List[int]) -> bool:\n    return sum(operations) < 0\n```"


def test_a_reply_that_uses_the_prompts_import_passes_with_the_prompt_run_first() -> None:
    alone = sandbox.run_tests(M.extract_code(FULL), TESTS)
    assert not alone.passed and "NameError" in alone.detail  # the harness's fault, not the model's
    prog = M.program_for(FULL, PROMPT)
    assert prog.context.startswith("from typing import List") and not prog.bare_body
    assert sandbox.run_tests(prog.code, TESTS).passed


def test_a_bare_body_is_joined_to_the_prompt() -> None:
    prog = M.program_for(BODY, PROMPT)
    assert prog.bare_body and prog.code.startswith(PROMPT.rstrip("\n"))
    assert sandbox.run_tests(prog.code, TESTS).passed


def test_a_prose_prompt_adds_nothing() -> None:
    mbpp = "Write a function to find the shared elements from the given two lists."
    reply = "```python\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n```"
    prog = M.program_for(reply, mbpp)
    assert prog.context == "" and prog.code == M.extract_code(reply)
    # a prompt that only quotes code in a fence gives that code's definitions
    fenced = "Complete this:\n```python\nimport math\n\ndef area(r):\n    pass\n```"
    assert M.program_for("```python\ndef area(r):\n    return math.pi * r * r\n```", fenced).context \
        .startswith("import math")


def test_pass_at_1_reports_the_rows_that_ran_with_the_prompts_code() -> None:
    mbpp = "Write a function that doubles x."
    preds = [FULL, BODY, WRONG, "```python\ndef double(x):\n    return 2 * x\n```"]
    prompts = [PROMPT, PROMPT, PROMPT, mbpp]
    tests = [TESTS, TESTS, TESTS, ["assert double(3) == 6"]]
    res = M.score(preds, ["", "", "", ""], "pass_at_1", tests=tests, prompts=prompts)
    assert res.per_item == [1.0, 1.0, 0.0, 1.0] and res.extra["code_context_rows"] == 3
    # the same rows through the test-set path (prompts read from the rows), with MBPP's setup code kept
    rows = [Example.from_pair(p, "", meta={"tests": t}) for p, t in zip(prompts, tests, strict=True)]
    rows[3].meta["test_setup"] = "FACTOR = 2"
    rows[3].meta["tests"] = ["assert double(3) == 3 * FACTOR"]
    scoring = Scoring("pass_at_1", TaskProfile("code", has_tests=True), None, 256)
    via_rows = score_texts(preds, rows, scoring)
    assert via_rows.per_item == [1.0, 1.0, 0.0, 1.0] and via_rows.extra["code_context_rows"] == 3
