"""Prompt evaluation on reasoning and many-label sets (issue 22): the chain-of-thought baseline with worked
examples, final_answer_accuracy strict and flexible with intervals (checked row by row against an independent
reading of the logged predictions), the user's kind first, and a label baseline that lists the labels."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.tools._data_fixtures import banking77_dir
from tools.generation import Generation
from tools.prompt import evaluation as pe
from tools.runlog import RunLog

WORD_PROBLEMS = Path(__file__).parents[1] / "data" / "fixtures" / "word_problems_synthetic.jsonl"


class ScriptedBackend:
    """Replies chosen per row: right behind the marker, right without it, wrong, or right then another number."""

    name = "scripted-fake"
    mode = "batched"

    def __init__(self, replies: dict[str, str], default: str = "I am not sure.") -> None:
        self.replies, self.default = replies, default
        self.prompts: list[list[dict[str, str]]] = []
        self.max_new_tokens: list[int] = []

    def generate(self, prompts: Sequence[list[dict[str, str]]], *, max_new_tokens: int,
                 on_progress=None) -> list[Generation]:
        self.prompts += [list(p) for p in prompts]
        self.max_new_tokens.append(max_new_tokens)
        return [Generation(self.replies.get(p[-1]["content"], self.default), 50, 20, 3.0) for p in prompts]

    def count_tokens(self, messages: list[dict[str, str]]) -> int | None:
        return 30


def _answer(ref: str) -> str:
    return ref.rsplit("####", 1)[1].strip()


def _reply(kind: int, ref: str) -> str:
    steps, ans = ref.rsplit("\n", 1)[0], _answer(ref)
    value = ans.replace("$", "").replace(",", "")
    return [f"{steps}\n#### {ans}",                         # right, marked
            f"{steps}\nSo it is {value}.",                  # right, unmarked: flexible only
            f"{steps}\n#### {int(value) + 1}",              # wrong
            f"#### {value}.0\nCheck: {value} - 1 = {int(value) - 1}",  # marked right, last number wrong
            ][kind % 4]


def test_reasoning_baseline_is_chain_of_thought_and_scores_final_answers(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in WORD_PROBLEMS.read_text().splitlines()]
    test, train = tmp_path / "test.jsonl", tmp_path / "train.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[20:]))
    be = ScriptedBackend({r["question"]: _reply(i, r["answer"]) for i, r in enumerate(rows[:20])})
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots_from=str(train), variants=True), backend=be).to_dict()
    assert res["output_kind"] == "reasoning" and res["metric"] == "final_answer_accuracy" and res["share"]
    assert res["task_profile"]["answer_marker"] == "hash" and res["task_profile"]["source"] == "detected"
    # baseline: the instruction names the references' marker, three worked examples (the seed's 3-5 shots)
    base = res["variants"][0]
    assert base["name"] == "baseline" and "'#### <answer>'" in base["system"] and base["shots"] == 3
    assert all("####" in s["output"] and "<<" in s["output"] for s in base["few_shot"])
    assert "chain_of_thought" not in [v["name"] for v in res["variants"]]  # it is the baseline already
    assert be.max_new_tokens[0] == res["max_new_tokens"] > 32  # from the references' lengths
    # strict: kinds 0 and 3 (10 of 20); flexible: kinds 0 and 1 (10 of 20); both with Wilson intervals
    assert res["quality"] == res["final_answer_strict"] == 0.5 and res["final_answer_flexible"] == 0.5
    lo, hi = res["final_answer_flexible_ci95"]
    assert lo < 0.5 < hi and res["ci95"][0] < 0.5 < res["ci95"][1]

    # An independent reading of the logged predictions agrees with the tool row by row.
    eval_id = RunLog().query("SELECT eval_id FROM evaluations WHERE run_id = ? AND details LIKE ?",
                             [res["run_id"], '%"variant": "baseline"%'])[0]["eval_id"]
    logged = RunLog().query("SELECT idx, expected, prediction, correct FROM predictions WHERE eval_id = ? "
                            "ORDER BY idx", [eval_id])
    assert len(logged) == 20

    def value(s: str) -> float:
        return float(s.replace("$", "").replace(",", ""))

    flexible = 0
    for row in logged:
        want = value(re.findall(r"####\s*(\S+)", row["expected"])[-1])
        marked = re.findall(r"####\s*([$\d][\d,.]*\d|\d)", row["prediction"])
        assert row["correct"] == (bool(marked) and value(marked[-1]) == want), row["idx"]
        numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", row["prediction"])
        flexible += bool(numbers) and value(numbers[-1]) == want
    assert flexible == round(res["final_answer_flexible"] * 20)


def test_aqua_rows_are_scored_against_their_correct_letter(tmp_path: Path) -> None:
    src = banking77_dir().parent / "aqua" / "dev.json"
    rows = [json.loads(x) for x in src.read_text().splitlines()[:12]]
    test = tmp_path / "aqua.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from tools.data.formats import load_examples

    replies = {e.input_text: f"Working it out.\nAnswer: {r['correct']}" if i % 2 == 0 else "Answer: Z"
               for i, (e, r) in enumerate(zip(load_examples(test), rows, strict=True))}
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test)), backend=ScriptedBackend(replies)).to_dict()
    assert res["metric"] == "final_answer_accuracy" and res["quality"] == 0.5
    assert "'Answer: <answer>'" in res["variants"][0]["system"]


def test_the_users_kind_outranks_the_guess(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in WORD_PROBLEMS.read_text().splitlines()[:6]]
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), task_kind="text"), backend=ScriptedBackend({})).to_dict()
    assert res["output_kind"] == "text" and res["metric"] == "chrf" and not res["share"]
    note = res["task_profile"]
    assert (note["source"], note["detected_kind"]) == ("user", "reasoning") and "marked final answer" in note["reason"]


@pytest.mark.parametrize("rows_from", ["test", "one_per_intent"])
def test_banking77_label_baseline_lists_the_labels(tmp_path: Path, rows_from: str) -> None:
    """A 300-row test file of banking77 (and 77 rows, one per intent, that cannot show repetition alone) with its
    training data: label kind, the baseline lists the 77 labels, the metric is label accuracy."""
    src = banking77_dir()
    with (src / "test.csv").open(newline="") as f:
        all_rows = list(csv.DictReader(f))
    if rows_from == "test":
        picked = all_rows[::10][:300]
    else:
        seen: dict[str, dict[str, str]] = {}
        for r in all_rows:
            seen.setdefault(r["category"], r)
        picked = list(seen.values())
    test = tmp_path / "test.csv"
    with test.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(picked)
    replies = {r["text"]: r["category"] for r in picked[::2]}
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots_from=str(src / "train.csv"), choice=False, full=True),
                             backend=ScriptedBackend(replies, default="no idea")).to_dict()
    assert res["output_kind"] == "label" and res["metric"] == "label_accuracy" and res["labels"] == 77
    assert "card_arrival" in res["variants"][0]["system"] and "Refund_not_showing_up" in res["variants"][0]["system"]
    assert res["quality"] == pytest.approx(len(replies) / len(picked), abs=1e-4)


@pytest.mark.real_model
def test_real_model_on_aqua_rows(tmp_path: Path) -> None:
    """SmolLM2 on two AQuA rows with one worked example: the reasoning baseline runs, both readings come back
    with intervals, and the strict count agrees with the logged rows (the numbers are whatever they are)."""
    src = banking77_dir().parent / "aqua"
    test = tmp_path / "aqua.jsonl"
    test.write_text("".join((src / "test.json").read_text().splitlines(keepends=True)[:2]))
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots=1, shots_from=str(src / "dev.json"),
                                                 max_new_tokens=48)).to_dict()
    assert res["metric"] == "final_answer_accuracy" and res["n"] == 2 and res["variants"][0]["shots"] == 1
    assert 0.0 <= res["final_answer_flexible"] <= 1.0 and len(res["final_answer_flexible_ci95"]) == 2
    logged = RunLog().query("SELECT correct FROM predictions WHERE run_id = ?", [res["run_id"]])
    assert sum(bool(r["correct"]) for r in logged) == round(res["quality"] * 2)
