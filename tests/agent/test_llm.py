"""The optional chat model: a fake tool-calling model, then the real OpenAI client against a local stub server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agent import llm
from agent.advisor import Advisor
from tests._openai_stub import completion, openai_stub

UP_TO_N = {"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "", "test_set": "",
           "prompt_quality": 0.5, "optimized_prompt_quality": 0.6}


class FakeToolChatModel(BaseChatModel):
    """Replies with scripted AIMessages (tool calls included) and records what it was sent."""

    responses: list[AIMessage]
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[str]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "fake-tool-calling"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.responses.pop(0))])

    def bind_tools(self, tools: Any, **kw: Any) -> Any:
        self.bound.append([getattr(t, "name", getattr(t, "__name__", str(t))) for t in tools])
        return self


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{name}"}])


def test_free_text_answer_is_extracted_then_validated() -> None:
    model = FakeToolChatModel(responses=[call("record_answer", value="2000")])
    adv = Advisor(chat_model=model)
    step = adv.start(UP_TO_N)
    assert step.question.id == "n_examples"
    step = adv.answer("we have about two thousand labelled tickets")
    assert step.answers["n_examples"] == 2000 and step.question.id != "n_examples"
    assert model.bound == [["record_answer"]]
    assert "n_examples" in model.seen[0][0].content  # the question was described to the model


def test_valid_answers_never_reach_the_model_and_bad_extractions_are_reasked() -> None:
    model = FakeToolChatModel(responses=[call("record_answer", value="many")])
    adv = Advisor(chat_model=model)
    step = adv.start(UP_TO_N)
    step = adv.answer("1500")  # parses on its own: no model call
    assert model.seen == [] and step.answers["n_examples"] == 1500
    step = adv.back()
    step = adv.answer("quite a lot really")  # the model's value is validated like any other
    assert step.question.id == "n_examples" and step.question.error


def test_why_calls_knowledge_tools_and_answers() -> None:
    model = FakeToolChatModel(responses=[call("knowledge_rule", rule_id="size.band.1k_10k"),
                                         AIMessage(content="Because of size.band.1k_10k: 1000+ examples make training viable.")])
    adv = Advisor(chat_model=model)
    adv.start(UP_TO_N)
    answer = adv.why("why do you need the number of examples?")
    assert "size.band.1k_10k" in answer
    tool_msgs = [m for m in model.seen[1] if isinstance(m, ToolMessage)]
    assert tool_msgs and "fine-tuning is viable" in tool_msgs[0].content
    assert "training_plan" in model.bound[0] and "knowledge_rule" in model.bound[0]
    # "why?" gets the read-only tools only: never `advise`, which would start a nested advisor session
    assert "advise" not in model.bound[0]


def test_why_without_a_model_cites_the_rules() -> None:
    adv = Advisor()
    adv.start(UP_TO_N)
    text = adv.why()
    assert "size.band.lt_100" in text and "size.band.gt_10k" in text


def test_prompt_variants_are_proposed() -> None:
    model = FakeToolChatModel(responses=[call("propose_system_prompts", prompts=["You are A.", "You are B."])])
    assert llm.propose_prompt_variants(model, "route bank tickets", n=2) == ["You are A.", "You are B."]
    assert Advisor().propose_prompts("anything") == []  # without a model: nothing, and no error


# ------------------------------------------------------------------ the real OpenAI client, a local server

def _record_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A tool call: record_answer(value="2000")."""
    call = {"id": "call_1", "type": "function",
            "function": {"name": "record_answer", "arguments": json.dumps({"value": "2000"})}}
    return completion(body, {"role": "assistant", "content": None, "tool_calls": [call]}, finish_reason="tool_calls")


@pytest.fixture
def stub_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with openai_stub(_record_answer) as served:
        yield served


def test_real_openai_client_against_local_stub(stub_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = stub_server
    model = llm.chat_model(url, "stub-model", "test-key", timeout=10)
    adv = Advisor(chat_model=model)
    step = adv.start(UP_TO_N)
    step = adv.answer("we have about two thousand labelled tickets")
    assert step.answers["n_examples"] == 2000
    req = seen[0]
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "stub-model"
    assert [t["function"]["name"] for t in req["body"]["tools"]] == ["record_answer"]
    assert "two thousand" in req["body"]["messages"][-1]["content"]


def test_unreachable_model_is_no_help_but_no_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    model = llm.chat_model("http://127.0.0.1:9/v1", "nothing-here", "k", timeout=2)
    adv = Advisor(chat_model=model)
    step = adv.start(UP_TO_N)
    step = adv.answer("about two thousand")
    assert step.question.id == "n_examples" and step.question.error


def test_chat_model_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for v in ("TUNEWISE_CHAT_BASE_URL", "TUNEWISE_OPENAI_BASE_URL", "TUNEWISE_CHAT_MODEL"):
        monkeypatch.delenv(v, raising=False)
    assert llm.chat_model_from_env() is None
    monkeypatch.setenv("TUNEWISE_CHAT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("TUNEWISE_CHAT_MODEL", "qwen")
    model = llm.chat_model_from_env()
    assert model.model_name == "qwen" and "127.0.0.1:9" in str(model.openai_api_base)


def test_proposed_system_prompts_join_the_variant_search(fake_tools: dict[str, Any]) -> None:
    model = FakeToolChatModel(responses=[call("propose_system_prompts", prompts=["You route tickets.", "Label it."])])
    adv = Advisor(chat_model=model)
    step = adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "",
                      "test_set": fake_tools["test_file"], "model": "smollm2-135m-instruct"})
    config = fake_tools["calls"][0][1]
    assert config.alt_systems == ["You route tickets.", "Label it."] and config.variants is True
    assert "classification task" in model.seen[0][-1].content and "hi" in model.seen[0][-1].content
    assert step.kind == "question"  # the fake's variants miss the bar: step 3 asks on
