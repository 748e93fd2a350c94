"""The LangChain wrapper of prompt evaluation: typed schema, and a call through it (OpenAI-compatible stub)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_prompt_eval_cli import _test_file, stub_server  # noqa: F401 - pytest fixture


def test_tool_schema_and_registry() -> None:
    from agent.lc_tools import all_tools
    from agent.lc_tools.prompt_eval import TOOLS, prompt_eval

    assert prompt_eval in TOOLS and prompt_eval.name in {t.name for t in all_tools()}
    props = prompt_eval.args_schema.model_json_schema()["properties"]
    assert {"test", "shots", "shots_from", "variants", "model", "metric", "bar"} <= set(props)


def test_tool_runs_against_stub(stub_server: tuple[str, list[dict]], tmp_path: Path,  # noqa: F811
                                monkeypatch) -> None:
    from agent.lc_tools.prompt_eval import prompt_eval

    url, seen = stub_server
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    res = prompt_eval.invoke({"test": str(_test_file(tmp_path)), "model": "openai:stub", "bar": 0.9})
    assert res["quality"] == 1.0 and res["reaches_bar"] is True and len(seen) == 4
