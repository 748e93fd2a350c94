"""``tunewise advise`` on free text, end to end: a real prompt evaluation (chrF) of alpaca_seed rows against a
local OpenAI-compatible stub, then people's grades from ``eval grade --grades`` (run log) or the ``grades``
answer. No grades: the 90% rule cannot be applied and the card says no number met the bar; graded: the
graded share decides and the card names it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from tests._openai_stub import openai_stub
from tests.conftest import SHARED

ALPACA = SHARED / "data" / "alpaca_seed" / "seed_tasks.jsonl"


@pytest.fixture
def alpaca12(tmp_path: Path) -> Path:
    if not ALPACA.exists():
        pytest.skip(f"alpaca_seed not found at {ALPACA}")
    rows = []
    for line in ALPACA.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        inst = task["instances"][0]
        if task["is_classification"] or len(inst["output"]) > 200:
            continue
        rows.append({"input": task["instruction"] + (f"\n{inst['input']}" if inst["input"] else ""),
                     "output": inst["output"]})
        if len(rows) == 12:
            break
    out = tmp_path / "alpaca12.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _reply(body: dict[str, Any]) -> str:  # fluent, mostly wrong: the first words of the request
    user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    return " ".join(user.split()[:10])


def advise(answers: dict[str, Any], tmp_path: Path, name: str) -> dict[str, Any]:
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(answers))
    r = CliRunner().invoke(app, ["advise", "--answers", str(f), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["recommendation"]


def test_free_text_advice_with_and_without_grades(alpaca12: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"task": "domain_language", "goals": ["quality"], "test_set": str(alpaca12), "n_examples": 5000,
               "gpu_memory_gb": 24, "model_params_b": 7, "model": "openai:stub-model"}
    with openai_stub(_reply) as (url, _):
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        rec = advise(answers, tmp_path, "plain")
        assert rec["path"] == "optimized_prompts" and "cannot be applied" in rec["summary"]
        assert "grade 12 of its outputs" in rec["summary"]  # the sample is never larger than the test set
        num = rec["card"]["deciding_number"]
        assert num["kind"] == "none" and num["metric"] == "chrf" and not num["compared_with_bar"]
        run_id = next(r for r in rec["reasons"] if r["rule"] == "dt.bar.needs_share")["evidence"]["run_id"]

        # 11 of 12 graded good with `eval grade --grades`: the advisor reads them from the run log
        grades = tmp_path / "grades.csv"
        grades.write_text("row,grade\n" + "".join(f"{i},{'bad' if i == 5 else 'good'}\n" for i in range(12)))
        r = CliRunner().invoke(app, ["eval", "grade", "--run", run_id, "--grades", str(grades), "--json"])
        assert r.exit_code == 0, r.output
        rec = advise(answers, tmp_path, "graded")  # measured again: the same outputs keep their grades
        assert rec["path"] == "prompts"
        num = rec["card"]["deciding_number"]
        assert num["kind"] == "graded" and num["value"] == pytest.approx(11 / 12) and num["n"] == 12
        assert "graded share 91.7%" in num["text"]

        # a grades file in the answers outranks the run log's grades for the same rows
        low = tmp_path / "low.jsonl"
        low.write_text("".join(json.dumps({"row": i, "grade": "good" if i < 3 else "bad"}) + "\n" for i in range(12)))
        rec = advise({**answers, "grades": str(low)}, tmp_path, "file")
        assert rec["path"] == "fine_tune"
        assert rec["card"]["deciding_number"]["value"] == pytest.approx(0.25)
        assert "(graded)" in rec["summary"]
