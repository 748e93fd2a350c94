"""Model backends for prompt evaluation that need langchain (which ``tools/`` never imports).

``register()`` makes ``openai:MODEL`` usable by ``tools.prompt.evaluation.run_prompt_eval``: any OpenAI-compatible
chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server) through langchain-openai's ``ChatOpenAI``,
at temperature 0. The endpoint comes from ``PromptEvalConfig.base_url`` or ``$OPENAI_BASE_URL``, the key
from ``$OPENAI_API_KEY`` (a local server usually needs none). langchain is imported only when it is used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from tools.errors import ModelNotFoundError
from tools.generation import Generation
from tools.prompt.evaluation import Chat, PromptEvalConfig, register_backend
from tools.types import ProgressCallback, ProgressEvent, emit


class OpenAIChatBackend:
    """Chat completions, one request per example; latency is the endpoint's round trip."""

    mode = "endpoint"

    def __init__(self, config: PromptEvalConfig, *, timeout_s: float = 120.0) -> None:
        from langchain_openai import ChatOpenAI
        from pydantic import SecretStr

        model = (config.model or "").removeprefix("openai:")
        if not model:
            raise ModelNotFoundError("openai: needs a model name", where="--model", fix="e.g. openai:gpt-4o-mini")
        self.name = f"openai:{model}"
        self.base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
        self.llm = ChatOpenAI(model=model, base_url=self.base_url, temperature=0, max_retries=1,
                              timeout=timeout_s, api_key=SecretStr(os.environ.get("OPENAI_API_KEY") or "not-needed"))

    def generate(self, prompts: Sequence[Chat], *, max_new_tokens: int,
                 on_progress: ProgressCallback | None = None) -> list[Generation]:
        llm = self.llm.bind(max_tokens=max_new_tokens, **self._length_limit(max_new_tokens))
        out: list[Generation] = []
        for i, msgs in enumerate(prompts):
            t0 = time.perf_counter()
            try:
                reply: Any = llm.invoke([(m["role"], m["content"]) for m in msgs])
            except Exception as e:  # noqa: BLE001 - connection, auth and API errors all become one message
                raise ModelNotFoundError(f"the endpoint failed: {type(e).__name__}: {e}",
                                         where=self.base_url or "OPENAI_BASE_URL",
                                         fix="check --base-url / OPENAI_BASE_URL, OPENAI_API_KEY and the "
                                             "model name") from e
            ms = (time.perf_counter() - t0) * 1000
            usage = getattr(reply, "usage_metadata", None) or {}
            text = reply.content if isinstance(reply.content, str) else str(reply.content)
            out.append(Generation(text.strip(), int(usage.get("input_tokens") or 0),
                                  int(usage.get("output_tokens") or 0), ms))
            emit(on_progress, ProgressEvent("generate", i + 1, len(prompts)))
        return out

    def _length_limit(self, max_new_tokens: int) -> dict[str, Any]:
        """langchain-openai sends the length limit as ``max_completion_tokens`` (OpenAI's current name). Servers
        that only read the older ``max_tokens`` (llama.cpp's server before mid-2025, Ollama) ignore it and
        generate until their context is full, so to any endpoint but OpenAI's own both names are sent."""
        from urllib.parse import urlparse

        host = urlparse(self.base_url or "https://api.openai.com/v1").hostname or ""
        return {} if host.endswith("openai.com") else {"extra_body": {"max_tokens": max_new_tokens}}

    def count_tokens(self, messages: Chat) -> int | None:
        return None  # the endpoint's tokenizer is not known locally


def register() -> None:
    """Register every backend defined here with prompt evaluation (idempotent)."""
    register_backend("openai", OpenAIChatBackend)
