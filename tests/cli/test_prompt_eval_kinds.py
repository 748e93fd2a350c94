"""``tunewise prompt-eval --task-kind`` (issue 22, item 5): the user's kind outranks the guess, the disagreement is
printed with its reason; a reasoning set reports final-answer accuracy strict and flexible with intervals."""

from __future__ import annotations

import json
from pathlib import Path

from tests._openai_stub import openai_stub
from tests.cli.test_prompt_eval_cli import tw

WORD_PROBLEMS = Path(__file__).resolve().parents[1] / "tools" / "data" / "fixtures" / "word_problems_synthetic.jsonl"


def test_task_kind_flag_and_final_answer_report(tmp_path: Path) -> None:
    test = tmp_path / "wp.jsonl"
    test.write_text("".join(WORD_PROBLEMS.read_text().splitlines(keepends=True)[:4]))

    def reply(body: dict) -> str:
        return "Adding up the steps.\n#### 17"

    with openai_stub(reply) as (url, _seen):
        doc = json.loads(tw("prompt-eval", "--test", str(test), "--model", "openai:stub", "--base-url", url,
                            "--json").stdout)
        assert doc["metric"] == "final_answer_accuracy" and doc["output_kind"] == "reasoning"
        for key in ("final_answer_strict", "final_answer_strict_ci95", "final_answer_flexible",
                    "final_answer_flexible_ci95"):
            assert key in doc
        human = tw("prompt-eval", "--test", str(test), "--model", "openai:stub", "--base-url", url,
                   "--task-kind", "text").stdout
    assert "chrf" in human and "task kind text: set by you; the test rows alone read as reasoning" in human
