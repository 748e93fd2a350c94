"""The eval/roi/report commands: one JSON document on stdout under --json, user errors as messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tw(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_help_lists_the_commands() -> None:
    top = tw("--help").stdout
    for cmd in ("eval", "roi", "report"):
        assert cmd in top
    sub = tw("eval", "--help").stdout
    for cmd in ("test", "compare", "forgetting", "ab"):
        assert cmd in sub


def test_roi_json_on_the_seed_example() -> None:
    doc = json.loads(tw("roi", "--prompt-dev-hours", "4", "--hourly-rate", "100", "--data-prep-hours", "40",
                        "--training-cost", "500", "--quality-gain", "0.12", "--json").stdout)
    assert (doc["prompt_cost"], doc["fine_tune_cost"], doc["ratio"]) == (400, 4500, 11.25)
    assert doc["worth_it"] is True and doc["rule_ids"] == ["roi.formula", "roi.worth_it"]


def test_user_errors_are_messages(tmp_path: Path) -> None:
    r = tw("eval", "test", "--run", "no-such-run", "--test", str(tmp_path / "t.jsonl"), "--json", check=False)
    assert r.returncode == 2
    assert json.loads(r.stdout)["error"]["error"] == "RunNotFoundError"
    assert "Traceback" not in r.stderr
    r = tw("roi", "--prompt-dev-hours", "-1", "--hourly-rate", "1", "--data-prep-hours", "1", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_eval_commands_json_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tests.tools.eval_run import make_run, write_test_file

    rid = make_run(tiny_model_dir)
    test = write_test_file(tmp_path / "test.jsonl", n=6)
    probes = tmp_path / "probes.jsonl"
    probes.write_text("".join(json.dumps({"question": q, "answer": a, "check": "contains"}) + "\n"
                              for q, a in (("Capital of France?", "Paris"), ("Who wrote Hamlet?", "Shakespeare"))))
    doc = json.loads(tw("eval", "test", "--run", rid, "--test", str(test), "--max-new-tokens", "3", "--json").stdout)
    assert set(doc) >= {"quality", "ci95", "n", "metric", "vs"} and doc["n"] == 6
    assert set(doc["vs"]) == {"base", "prompt_baseline"}
    cmp_ = json.loads(tw("eval", "compare", "--run", rid, "--test", str(test), "--n", "4", "--json").stdout)
    assert cmp_["n"] == 4 and {"input", "expected", "base", "tuned"} <= set(cmp_["rows"][0])
    fg = json.loads(tw("eval", "forgetting", "--run", rid, "--probes", str(probes), "--max-new-tokens", "3",
                       "--json").stdout)
    assert set(fg) >= {"probes", "base_score", "tuned_score", "drop", "verdict", "items"} and fg["probes"] == 2
    ab = json.loads(tw("eval", "ab", "--a", "base", "--b", f"run:{rid}", "--test", str(test),
                       "--max-new-tokens", "3", "--json").stdout)
    assert ab["roi"]["verdict"] in ("worth_it", "not_worth_it", "uncertain")
    rep = json.loads(tw("report", rid, "--out", str(tmp_path / "r.html"), "--json").stdout)
    assert Path(rep["report"]).read_text().count("<svg") >= 2


def test_limit_scores_the_first_rows_and_ab_reuses_them(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tests.tools.eval_run import make_run, write_test_file

    rid = make_run(tiny_model_dir)
    test = write_test_file(tmp_path / "test.jsonl", n=6)
    doc = json.loads(tw("eval", "test", "--run", rid, "--test", str(test), "--max-new-tokens", "3", "--limit", "3",
                        "--json").stdout)
    assert (doc["n"], doc["test_rows"], doc["limit"]) == (3, 6, 3)
    ab = json.loads(tw("eval", "ab", "--a", "base", "--b", f"run:{rid}", "--test", str(test), "--max-new-tokens", "3",
                       "--limit", "3", "--json").stdout)
    assert ab["n"] == 3 and ab["reused"] == ["a", "b"]
    import knowledge  # the bar defaults to the ROI rule's, read from knowledge/rules.yaml

    assert ab["bar"] == knowledge.load().rules.roi.worth_it.min_quality_improvement


@pytest.mark.parametrize("args", [("eval", "ab", "--help"), ("report", "--help"), ("roi", "--help")])
def test_subcommand_help(args: tuple[str, ...]) -> None:
    assert "Usage" in tw(*args).stdout
