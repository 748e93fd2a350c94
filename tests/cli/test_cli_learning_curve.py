"""`tunewise learning-curve`: --json is one document with the points, the fit and the cost; bad input is clear."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from tests.tools.evaluate.test_learning_curve import _pairs


def test_bad_fractions_are_an_input_error(tmp_path: Path) -> None:
    from tools.errors import InputError

    f = tmp_path / "t.jsonl"
    f.write_text("{}\n")
    r = CliRunner().invoke(app, ["learning-curve", "--train", str(f), "--test", str(f), "--fractions", "a,b"])
    assert isinstance(r.exception, InputError) and "--fractions" in str(r.exception)


def test_json_document(tiny_model_dir: Path, tmp_path: Path) -> None:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in _pairs(24, 0)))
    test.write_text("".join(json.dumps(r) + "\n" for r in _pairs(8, 1)))
    r = CliRunner().invoke(app, ["learning-curve", "--train", str(train), "--test", str(test), "--model",
                                 str(tiny_model_dir), "--max-steps", "2", "--batch-size", "4", "--bar", "0.9",
                                 "--fractions", "0.25,0.5,1", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [p["n"] for p in doc["points"]] == [6, 12, 24] and doc["test_rows"] == 8
    assert doc["cost_seconds"] > 0 and doc["message"] and doc["rule_ids"] == ["lc.measured"]
    assert doc["can_extrapolate"] is False or doc["predictions"]


def test_the_langchain_tool_is_registered() -> None:
    from agent.lc_tools import all_tools

    tool = next(t for t in all_tools() if t.name == "learning_curve")
    assert {"train", "test", "bar", "fractions"} <= set(tool.args)
