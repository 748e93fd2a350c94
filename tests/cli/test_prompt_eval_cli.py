"""``tunewise prompt-eval``: one JSON document, the issue's keys, the OpenAI-compatible path against a local stub."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._openai_stub import openai_stub

REPO = Path(__file__).resolve().parents[2]
ROWS = [("my card has not arrived", "card_arrival"), ("I want a refund", "refund"),
        ("where is my card", "card_arrival"), ("refund me now", "refund")]


def tw(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def _test_file(tmp_path: Path) -> Path:
    p = tmp_path / "test.jsonl"
    p.write_text("".join(json.dumps({"prompt": i, "completion": o}) + "\n" for i, o in ROWS))
    return p


@pytest.fixture()
def stub_server() -> Iterator[tuple[str, list[dict]]]:
    """A tiny OpenAI-compatible chat-completions server on 127.0.0.1: 'refund' if the input says so."""
    def reply(body: dict) -> str:
        return "refund" if "refund" in body["messages"][-1]["content"] else "card_arrival"

    with openai_stub(reply) as served:
        yield served


def test_openai_compatible_backend_against_stub(stub_server: tuple[str, list[dict]], tmp_path: Path) -> None:
    from agent.prompt_backends import register
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval

    url, seen = stub_server
    register()
    res = run_prompt_eval(PromptEvalConfig(str(_test_file(tmp_path)), system="Label it.", model="openai:stub-1",
                                           base_url=url, max_new_tokens=7)).to_dict()
    assert res["quality"] == 1.0 and res["n"] == 4 and res["model"] == "openai:stub-1"
    assert res["latency_ms"]["mode"] == "endpoint" and res["prompt_tokens"]["mean"] == 13
    assert len(seen) == 4 and seen[0]["path"] == "/v1/chat/completions"
    body = seen[0]["body"]
    assert body["model"] == "stub-1" and body["temperature"] == 0
    assert body["messages"][0] == {"role": "system", "content": "Label it."}
    # both names of the length limit: a llama.cpp or Ollama server reads only max_tokens and would otherwise
    # generate until its context is full (seen with llama-server: 5,500 tokens for a 2-token request)
    assert body.get("max_tokens") == 7 and body.get("max_completion_tokens") == 7


def test_cli_json_with_openai_stub(stub_server: tuple[str, list[dict]], tmp_path: Path) -> None:
    url, _ = stub_server
    sysfile = tmp_path / "system.txt"
    sysfile.write_text("Label the banking question.\n")
    r = tw("prompt-eval", "--test", str(_test_file(tmp_path)), "--system-file", str(sysfile),
           "--model", "openai:stub", "--base-url", url, "--bar", "0.5", "--json")
    doc = json.loads(r.stdout)  # exactly one JSON document on stdout
    for key in ("quality", "ci95", "metric", "n", "latency_ms", "prompt_tokens", "variants", "run_id", "best",
                "reaches_bar"):
        assert key in doc
    assert doc["quality"] == 1.0 and doc["reaches_bar"] is True and doc["best"] == "baseline"
    assert set(doc["latency_ms"]) >= {"p50", "p95"}
    shown = json.loads(tw("runs", "show", doc["run_id"], "--json").stdout)
    assert shown["run"]["kind"] == "prompt_eval"


def test_cli_errors_are_messages(tmp_path: Path) -> None:
    r = tw("prompt-eval", "--test", str(tmp_path / "missing.jsonl"), "--json", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "not found" in json.loads(r.stdout)["error"]["what"]
    r = tw("prompt-eval", "--test", str(_test_file(tmp_path)), "--shots", "3", check=False)
    assert r.returncode == 2 and "--shots-from" in r.stderr
    r = tw("prompt-eval", "--test", str(_test_file(tmp_path)), "--model", "openai:x", "--base-url",
           "http://127.0.0.1:9/v1", "--json", check=False)
    assert r.returncode == 2 and "endpoint failed" in json.loads(r.stdout)["error"]["what"]


def test_cli_variants_on_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"input": f"question {i}", "output": ["refund", "card_arrival"][i % 2]})
                             + "\n" for i in range(12)))
    r = tw("prompt-eval", "--test", str(_test_file(tmp_path)), "--model", str(tiny_model_dir), "--shots", "1",
           "--shots-from", str(train), "--variants", "--max-new-tokens", "3", "--cot-max-new-tokens", "6", "--json")
    doc = json.loads(r.stdout)
    assert doc["metric"] == "label_accuracy" and len(doc["variants"]) >= 5
    assert isinstance(doc["reaches_bar"], bool)


def _code_file(tmp_path: Path) -> Path:
    rows = [{"messages": [{"role": "user", "content": "Write add(a, b) returning the sum."},
                          {"role": "assistant", "content": "def add(a, b):\n    return a + b"}],
             "tests": ["assert add(1, 2) == 3"]},
            {"messages": [{"role": "user", "content": "Write neg(x) returning minus x."},
                          {"role": "assistant", "content": "def neg(x):\n    return -x"}],
             "test_list": ["assert neg(2) == -2"]}]
    p = tmp_path / "code.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_cli_code_set_scores_pass_at_1(tiny_model_dir: Path, tmp_path: Path) -> None:
    r = tw("prompt-eval", "--test", str(_code_file(tmp_path)), "--model", str(tiny_model_dir), "--json")
    doc = json.loads(r.stdout)
    assert doc["metric"] == "pass_at_1" and doc["share"] is True and doc["output_kind"] == "code"
    assert doc["n"] == 2 and len(doc["ci95"]) == 2 and "python_syntax" in doc
    assert doc["max_new_tokens"] >= 16  # from the references' lengths, not a fixed 32


def test_cli_user_metric_runs_outside_and_keeps_stdout_one_document(stub_server: tuple[str, list[dict]],
                                                                     tmp_path: Path) -> None:
    import os

    url, _ = stub_server
    (tmp_path / "noisy_metric.py").write_text("print('HELLO FROM IMPORT')\n"
                                               "def score(p, r):\n    print('HELLO FROM CALL')\n    return 1.0\n"
                                               "def one_arg(p):\n    return 1.0\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(metric: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "prompt-eval", "--test", str(_test_file(tmp_path)),
                               "--model", "openai:stub", "--base-url", url, "--metric", metric, "--json"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    r = run("noisy_metric:score")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one JSON document: the module's prints went nowhere near stdout
    assert doc["quality"] == 1.0 and doc["metric"] == "noisy_metric:score" and "HELLO" not in r.stdout
    r = run("noisy_metric:one_arg")
    assert r.returncode == 2 and "Traceback" not in r.stderr  # a user error, not an internal one
    err = json.loads(r.stdout)["error"]
    assert err["error"] == "InputError" and "wrong signature" in err["what"]


def test_cli_full_asks_for_every_row(stub_server: tuple[str, list[dict]], tmp_path: Path) -> None:
    url, seen = stub_server
    rows = tmp_path / "many.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"{i}: {q}", "completion": a}) + "\n"
                            for i in range(12) for q, a in ROWS))  # 48 rows: more than the first look
    r = tw("prompt-eval", "--test", str(rows), "--model", "openai:stub", "--base-url", url, "--bar", "0.5",
           "--full", "--json")
    doc = json.loads(r.stdout)
    assert doc["full"] is True and doc["n"] == 48 == len(seen) and doc["sequential"]["looks"] == [48]
    seen.clear()
    doc = json.loads(tw("prompt-eval", "--test", str(rows), "--model", "openai:stub", "--base-url", url,
                        "--bar", "0.5", "--json").stdout)
    # every answer right against a 0.5 bar: decided on the first 20 rows
    assert doc["full"] is False and doc["n"] == 20 == len(seen)
    assert doc["decision"] == "stopped early: decisive at n=20 of 48"
