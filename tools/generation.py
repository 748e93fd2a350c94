"""Text generation from chat messages with a local model.

``generate`` is the one entry point used by prompt evaluation, model evaluation and the forgetting check.
This module starts with the plain, sequential reference path (one example at a time, greedy); faster paths
must give the same predictions under greedy decoding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tools.types import ProgressCallback, ProgressEvent, emit

Chat = Sequence[dict[str, str]]


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    output_tokens: int
    latency_ms: float


def chat_ids(tokenizer: Any, messages: Chat) -> list[int]:
    """Token ids of the messages rendered with the model's chat template, ready for the assistant's reply."""
    out = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True,
                                        return_dict=True)
    return list(out["input_ids"])


def generate_sequential(model: Any, tokenizer: Any, prompts: Sequence[Chat], *, max_new_tokens: int = 32,
                        on_progress: ProgressCallback | None = None) -> list[Generation]:
    """The reference path: one prompt at a time, greedy, no cache reuse between prompts."""
    import torch

    results: list[Generation] = []
    device = next(model.parameters()).device
    for i, msgs in enumerate(prompts):
        ids = chat_ids(tokenizer, msgs)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids),
                                 dtype=torch.long, device=device), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        new = out[0, len(ids):].tolist()
        new = _cut_at_eos(new, tokenizer)
        results.append(Generation(tokenizer.decode(new, skip_special_tokens=True).strip(), len(ids), len(new),
                                  (time.perf_counter() - t0) * 1000))
        emit(on_progress, ProgressEvent("generate", i + 1, len(prompts)))
    return results


def _cut_at_eos(ids: list[int], tokenizer: Any) -> list[int]:
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    for j, t in enumerate(ids):
        if t in stops:
            return ids[:j]
    return ids


def generate(model: Any, tokenizer: Any, prompts: Sequence[Chat], *, max_new_tokens: int = 32,
             on_progress: ProgressCallback | None = None, **options: Any) -> list[Generation]:
    """Greedy generation for a list of chats. Options are accepted for faster paths; see module docstring."""
    return generate_sequential(model, tokenizer, prompts, max_new_tokens=max_new_tokens, on_progress=on_progress)
