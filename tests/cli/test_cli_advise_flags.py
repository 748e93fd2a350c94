"""``advise --model`` names the model to measure and train (as in every command); the chat server is
``--chat-url``/``--chat-model``; a URL given to --model still works, with a deprecation note."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app

ANSWERS = {"task": "tone", "goals": ["tone_style"], "test_set": "", "prompt_quality": 0.95}


@pytest.fixture
def answers_file(tmp_path: Path) -> Path:
    f = tmp_path / "answers.json"
    f.write_text(json.dumps(ANSWERS))
    return f


def _session_answers(session_id: str) -> dict[str, Any]:
    from agent.advisor import Advisor

    adv = Advisor(session_id)
    try:
        return adv.current().answers
    finally:
        adv.close()


def test_model_is_a_model_spec(answers_file: Path) -> None:
    r = CliRunner().invoke(app, ["advise", "--answers", str(answers_file), "--model", "smollm2-135m-instruct",
                                 "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert _session_answers(doc["session_id"])["model"] == "smollm2-135m-instruct"


def test_chat_flags_build_the_chat_model(answers_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import llm

    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(llm, "chat_model", lambda *a, **kw: seen.append(a))
    r = CliRunner().invoke(app, ["advise", "--answers", str(answers_file), "--chat-url", "http://127.0.0.1:9/v1",
                                 "--chat-model", "qwen", "--json"])
    assert r.exit_code == 0, r.output
    assert seen == [("http://127.0.0.1:9/v1", "qwen")]


def test_a_url_given_to_model_still_works_with_a_note(answers_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import llm

    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(llm, "chat_model", lambda *a, **kw: seen.append(a))
    r = CliRunner().invoke(app, ["advise", "--answers", str(answers_file), "--model", "http://127.0.0.1:9/v1",
                                 "--model-name", "qwen", "--json"])
    assert r.exit_code == 0, r.output
    assert seen == [("http://127.0.0.1:9/v1", "qwen")]
    assert "deprecated" in r.stderr and "--chat-url" in r.stderr
    doc = json.loads(r.stdout)  # stdout is still exactly one JSON document
    assert "model" not in _session_answers(doc["session_id"])
