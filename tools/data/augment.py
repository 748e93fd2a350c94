"""``augment``: paraphrase, back-translation or few-shot synthetic rows through a chat model.

Generated rows carry ``meta.synthetic = true`` (written into the output JSONL), so ``split`` keeps them in
train only and ``spotcheck`` samples them first; ``data.augment.validate``: every synthetic row must be read
by a person before it is trained on. The generating function is injectable (``generate_fn``) so tests and
other back ends (an OpenAI-compatible endpoint) can stand in for the local model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tools.data.formats import load
from tools.errors import InputError
from tools.fileio import write_jsonl
from tools.types import Example, Message, ProgressCallback, ProgressEvent, emit

METHODS = ("paraphrase", "back_translation", "synthetic")
GenerateFn = Callable[[Sequence[list[dict[str, str]]]], list[str]]

_PROMPTS = {
    "paraphrase": "Rewrite this request in different words, keeping its meaning. Reply with the rewritten "
                  "request only.\n\n{input}",
    "to_pivot": "Translate into French. Reply with the translation only.\n\n{input}",
    "from_pivot": "Translate into English. Reply with the translation only.\n\n{input}",
    "synthetic": "Here are examples of requests:\n{shots}\nWrite one new request of the same kind, different from "
                 "these. Reply with the request only.",
}


def _local_generate(model: str | None, max_new_tokens: int) -> GenerateFn:
    def run(prompts: Sequence[list[dict[str, str]]]) -> list[str]:
        from tools import generation, models

        mdl, tok = models.load_cached(model)
        return [g.text for g in generation.generate(mdl, tok, list(prompts), max_new_tokens=max_new_tokens)]

    return run


@dataclass
class AugmentResult:
    """What ``augment`` wrote: the output file, how many original and synthetic rows, by which method."""

    out: str
    original: int
    synthetic: int
    method: str
    rule_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def augment(path: str | Path, out: str | Path, *, method: str = "paraphrase", n: int = 20,
            model: str | None = None, seed: int = 0, generate_fn: GenerateFn | None = None,
            max_new_tokens: int = 64, on_progress: ProgressCallback | None = None) -> AugmentResult:
    """Write the original rows plus ``n`` synthetic rows (inputs rewritten, outputs kept) to ``out``."""
    if method not in METHODS:
        raise InputError(f"unknown augmentation method {method!r}", fix=f"use one of: {', '.join(METHODS)}")
    src = load(path, skip_invalid=True).examples
    if not src:
        raise InputError("no valid rows to augment", where=str(path))
    gen = generate_fn or _local_generate(model, max_new_tokens)
    rng = np.random.default_rng(seed)
    picks = [src[int(i)] for i in rng.integers(0, len(src), size=n)]

    def ask(text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": text}]

    emit(on_progress, ProgressEvent("augment", 0, n))
    if method == "paraphrase":
        new_inputs = gen([ask(_PROMPTS["paraphrase"].format(input=e.input_text)) for e in picks])
    elif method == "back_translation":
        pivot = gen([ask(_PROMPTS["to_pivot"].format(input=e.input_text)) for e in picks])
        new_inputs = gen([ask(_PROMPTS["from_pivot"].format(input=p)) for p in pivot])
    else:
        prompts = []
        for e in picks:
            same = [x for x in src if x.output_text == e.output_text] or src
            shots = [same[int(i)] for i in rng.integers(0, len(same), size=min(3, len(same)))]
            prompts.append(ask(_PROMPTS["synthetic"].format(shots="\n".join(f"- {s.input_text}" for s in shots))))
        new_inputs = gen(prompts)
    emit(on_progress, ProgressEvent("augment", n, n))
    synthetic = []
    for e, text in zip(picks, new_inputs, strict=True):
        text = (text or "").strip()
        if not text or text.lower() == e.input_text.strip().lower():
            continue  # nothing new: not worth a row
        prompt = list(e.prompt_messages)
        last_user = max((i for i, m in enumerate(prompt) if m.role == "user"), default=None)
        if last_user is None:
            continue
        prompt[last_user] = Message("user", text)
        msgs = [*prompt, Message("assistant", e.output_text)]
        synthetic.append(Example(msgs, {"synthetic": True, "method": method, "source_line": e.meta.get("line"),
                                        "flags": ["synthetic"]}))
    rows = [e.to_dict(with_meta=False) for e in src] + [s.to_dict(with_meta=True) for s in synthetic]
    for r in rows:
        r.get("meta", {}).pop("source", None)
    write_jsonl(out, rows)
    return AugmentResult(out=str(out), original=len(src), synthetic=len(synthetic), method=method,
                         rule_ids=["data.augment.validate", f"data.augment.{method}"])
