"""The optional chat model: free-text answers, "why?" answers, and prompt-variant proposals.

Any OpenAI-compatible server works (OpenAI, Ollama, vLLM, llama.cpp) through ``langchain_openai.ChatOpenAI``
with a base URL. The decisions never depend on the model: it only turns free text into a candidate answer
(which the graph still validates) and explains rules by calling the knowledge and estimator tools.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from agent.api import Question, Step

MAX_TOOL_ROUNDS = 4


def chat_model(base_url: str | None = None, model: str | None = None, api_key: str | None = None,
               *, timeout: float = 60.0) -> Any:
    """A ``ChatOpenAI`` for an OpenAI-compatible server (settings fall back to TUNEWISE_CHAT_* variables)."""
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    base_url = base_url or os.environ.get("TUNEWISE_CHAT_BASE_URL") or os.environ.get("TUNEWISE_OPENAI_BASE_URL")
    model = model or os.environ.get("TUNEWISE_CHAT_MODEL") or "default"
    key = api_key or os.environ.get("TUNEWISE_CHAT_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"
    from tools.redaction import register_secret

    register_secret(key)  # a server may echo it in an error text; it is masked wherever it would be written
    return ChatOpenAI(base_url=base_url, model=model, api_key=SecretStr(key), temperature=0, timeout=timeout, max_retries=1)


def chat_model_from_env() -> Any | None:
    """The configured chat model, or ``None`` when none is configured (TUNEWISE_CHAT_BASE_URL or TUNEWISE_CHAT_MODEL)."""
    if not any(os.environ.get(v) for v in ("TUNEWISE_CHAT_BASE_URL", "TUNEWISE_OPENAI_BASE_URL", "TUNEWISE_CHAT_MODEL")):
        return None
    return chat_model()


def _describe(q: Question) -> str:
    parts = [f"Question id: {q.id}", f"Question: {q.prompt}", f"Answer type: {q.type}"]
    if q.choices:
        parts.append(f"Allowed values: {', '.join(q.choices)}")
    if q.type == "fraction":
        parts.append("Give fractions between 0 and 1 (85% -> 0.85).")
    return "\n".join(parts)


def extract_answer(model: Any, q: Question, text: str) -> Any | None:
    """Turn a free-text reply into a value for ``q`` via a ``record_answer`` tool call; ``None`` if none."""
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.tools import tool

    @tool
    def record_answer(value: str) -> str:
        """Record the user's answer, written as the plain value (a number, a choice id, a comma list, yes/no)."""
        return value

    system = ("You turn a person's free-text reply into the value a form field expects. Call record_answer "
              "with just the value. If the reply does not contain an answer, do not call the tool.\n" + _describe(q))
    try:
        reply = model.bind_tools([record_answer]).invoke([SystemMessage(system), HumanMessage(text)])
    except Exception:  # noqa: BLE001 - an unreachable model just means no help with this answer
        return None
    for call in getattr(reply, "tool_calls", None) or []:
        if call.get("name") == "record_answer":
            return (call.get("args") or {}).get("value")
    return None


def explain(model: Any, step: Step, text: str) -> str:
    """Answer a "why?" about the pending question by letting the model call the knowledge/estimator tools."""
    from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

    from agent.lc_tools.reference import TOOLS

    by_name = {t.name: t for t in TOOLS}
    context = _describe(step.question) + f"\nWhy it is asked: {step.question.help}" if step.question else "The advice is done."
    decided = "\n".join(f"- {r.rule}: {r.text}" for r in step.path)
    messages: list[Any] = [
        SystemMessage("You explain tunewise's fine-tuning advice. Cite rule ids. Use the tools to look rules "
                      f"up or compute estimates; never invent numbers.\n{context}\nDecisions so far:\n{decided}"),
        HumanMessage(text),
    ]
    bound = model.bind_tools(list(TOOLS))
    reply = bound.invoke(messages)
    for _ in range(MAX_TOOL_ROUNDS):
        calls = getattr(reply, "tool_calls", None) or []
        if not calls:
            break
        messages.append(reply)
        for call in calls:
            tool = by_name.get(call["name"])
            try:
                out = tool.invoke(call.get("args") or {}) if tool else f"unknown tool {call['name']}"
            except Exception as e:  # noqa: BLE001 - the model sees the error and can recover
                out = f"error: {e}"
            messages.append(ToolMessage(content=out if isinstance(out, str) else json.dumps(out, default=str),
                                        tool_call_id=call.get("id") or call["name"]))
        reply = bound.invoke(messages)
    return str(reply.content)


def propose_prompt_variants(model: Any, task: str, *, n: int = 3) -> list[str]:
    """Ask the model for ``n`` alternative system prompts (dt.step2.system_messages) for ``task``."""
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.tools import tool

    @tool
    def propose_system_prompts(prompts: list[str]) -> str:
        """Propose alternative system prompts for the task, each one complete on its own."""
        return "ok"

    reply = model.bind_tools([propose_system_prompts]).invoke([
        SystemMessage(f"Write {n} different system prompts that state role, characteristics and guidelines."),
        HumanMessage(f"Task: {task}"),
    ])
    for call in getattr(reply, "tool_calls", None) or []:
        if call.get("name") == "propose_system_prompts":
            return [str(p) for p in (call.get("args") or {}).get("prompts", [])][:n]
    return [p.strip("- ").strip() for p in str(reply.content).splitlines() if p.strip()][:n]


_RULE_ID = re.compile(r"\b([a-z]+(?:\.[a-z0-9_]+)+)(?:\.\*)?")


def fallback_why(step: Step) -> str:
    """Without a model: the question's purpose and the text of every rule it cites."""
    import knowledge

    if step.question is None:
        lines = [f"{r.rule}: {r.text}" for r in step.path]
        return "\n".join(lines) or "No decisions yet."
    lines = [step.question.help] if step.question.help else []
    index = knowledge.load().index
    for rid in dict.fromkeys(_RULE_ID.findall(step.question.help or "")):
        if rid in index:
            lines.append(f"{rid}: {index[rid].text}")
        else:  # a family such as size.band.* : list its members
            lines += [f"{k}: {r.text}" for k, r in index.items() if k.startswith(rid + ".")][:6]
    return "\n".join(lines) or "This answer feeds the decision tree."
