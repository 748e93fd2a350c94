"""Turn Examples into token ids with completion-only labels, and batch them with little wasted padding.

Each example becomes ``prompt ids`` (the chat template up to and including the assistant header) followed
by ``completion ids`` (the final assistant message) and EOS, so the model learns to stop. Only the
assistant's tokens carry labels: the final answer, and in a multi-turn chat each earlier answer with its
end-of-turn token; system and user tokens and the template's markup are labelled -100 and cost no loss. torch is imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.errors import InputError, where
from tools.types import Example

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def _prompt_ids(tok: Any, ex: Example) -> tuple[list[int], list[int]]:
    """The prompt's token ids and their labels: -100 everywhere except the answers of earlier assistant
    turns in a multi-turn chat (and the end-of-turn token after each), which are trained on too."""
    msgs = [m.to_dict() for m in ex.prompt_messages]
    if not getattr(tok, "chat_template", None):
        text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
        ids = list(tok(text, add_special_tokens=True)["input_ids"])
        return ids, [IGNORE] * len(ids)
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    turns = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
    if not turns or not getattr(tok, "is_fast", False):
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        return ids, [IGNORE] * len(ids)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    labels = [IGNORE] * len(ids)
    for i in turns:
        span = _answer_span(tok, msgs, i, text)
        if span is None:
            continue  # the template rewrites this turn (some drop earlier reasoning): leave it masked
        start, end = span
        inside = [k for k, (a, b) in enumerate(offsets) if a >= start and b <= end and b > a]
        for k in inside:
            labels[k] = ids[k]
        after = inside[-1] + 1 if inside else None
        if after is not None and after < len(ids) and ids[after] == tok.eos_token_id:
            labels[after] = ids[after]  # the turn's end: the model learns to stop here too
    return ids, labels


def _answer_span(tok: Any, msgs: list[dict[str, str]], i: int, text: str) -> tuple[int, int] | None:
    """Character span of assistant message ``i``'s content in the rendered conversation ``text``, when the
    template renders the conversation up to that turn as a prefix of the whole (most templates do)."""
    head = tok.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True)
    upto = tok.apply_chat_template(msgs[: i + 1], tokenize=False)
    content = msgs[i]["content"]
    if not content or not text.startswith(head):
        return None
    start = upto.find(content, len(head))
    if start < 0 or not text.startswith(upto[: start + len(content)]):
        return None
    return start, start + len(content)


def encode_example(tok: Any, ex: Example, max_len: int) -> Encoded:
    """Prompt (masked) + completion + EOS (labelled). Over-long prompts lose their left end, not the answer."""
    completion = ex.output_text
    loc = where(ex.meta.get("source", "data"), ex.meta.get("line"), "assistant")
    if not completion.strip():
        raise InputError("this example has no assistant answer, so it has no tokens to learn from "
                         "(every label would be masked)", where=loc,
                         fix="give every example a non-empty final assistant message, or drop it "
                             "(`tunewise data clean` does)")
    prompt, prompt_labels = _prompt_ids(tok, ex)
    comp = list(tok(completion, add_special_tokens=False)["input_ids"])
    eos = tok.eos_token_id
    if eos is not None and (not comp or comp[-1] != eos):
        comp.append(eos)
    if len(comp) >= max_len:  # keep at least one prompt token (the assistant header's end)
        comp = comp[: max_len - 1]
    if len(prompt) + len(comp) > max_len:
        cut = len(prompt) + len(comp) - max_len
        prompt, prompt_labels = prompt[cut:], prompt_labels[cut:]
    return Encoded(prompt + comp, prompt_labels + comp)


def encode_all(tok: Any, examples: list[Example], max_len: int) -> list[dict[str, list[int]]]:
    rows = []
    for ex in examples:
        enc = encode_example(tok, ex, max_len)
        rows.append({"input_ids": enc.input_ids, "labels": enc.labels})
    return rows


class CompletionCollator:
    """Dynamic padding to the longest sequence in the batch (right side), counting the real tokens it saw.

    A batch whose labels are all -100 would train on nothing; it raises an InputError that says why.
    """

    def __init__(self, pad_id: int, *, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.tokens_seen = 0  # non-padding tokens handed to training so far
        self.label_tokens_seen = 0

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        n = max(len(r["input_ids"]) for r in rows)
        if self.pad_to_multiple_of:
            n = -(-n // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(rows), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), n), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[i, :k] = torch.tensor(r["input_ids"])
            labels[i, :k] = torch.tensor(r["labels"])
            mask[i, :k] = 1
        _check_labels(labels)
        self.tokens_seen += int(mask.sum())
        self.label_tokens_seen += int((labels != IGNORE).sum())
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class PackingCollator:
    """Concatenate a batch into one row with per-example ``position_ids`` and no attention mask.

    transformers reads restarting position ids as sequence boundaries and builds a block-diagonal mask
    (or uses varlen flash attention), so no example attends to another. Labels at each boundary are masked.
    """

    def __init__(self) -> None:
        self.tokens_seen = 0
        self.label_tokens_seen = 0

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for r in rows:
            ids += r["input_ids"]
            # the first token of each example has no predecessor in it: never a target
            labels += [IGNORE] + r["labels"][1:]
            pos += list(range(len(r["input_ids"])))
        t_labels = torch.tensor([labels])
        _check_labels(t_labels)
        self.tokens_seen += len(ids)
        self.label_tokens_seen += int((t_labels != IGNORE).sum())
        return {"input_ids": torch.tensor([ids]), "labels": t_labels, "position_ids": torch.tensor([pos])}


def _check_labels(labels: Any) -> None:
    # labels are shifted inside the loss: position 0 is never a target
    if not bool((labels[:, 1:] != IGNORE).any()):
        raise InputError(
            "a training batch has every label masked (-100), so its loss is undefined and it would teach nothing",
            where="training batch",
            fix="every example needs a non-empty assistant answer that survives truncation; raise --max-seq-length "
                "or shorten the prompts")
