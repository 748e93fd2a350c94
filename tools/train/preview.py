"""See what will be trained before paying for it: the first examples as the model will see them.

Loss masking and stop tokens are where fine-tuning most often goes wrong without an error: every label masked
(the run learns nothing), the chat template's markers trained (the model learns to write them), or no
end-of-turn token in the labels (the model never stops). ``preview_training`` encodes the training file exactly
as ``train`` does (``tools.train.data.encode_example``), and reports, per example, which tokens carry a label,
where the end-of-turn token is, and the counts of trained and masked tokens. ``TrainPreview.refusal`` says why
a run must not start: nothing trained, or everything trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.train.config import TrainConfig
from tools.train.data import IGNORE, encode_example


@dataclass
class Segment:
    """A run of tokens that are all trained or all masked; ``eos`` marks the end-of-turn token."""

    text: str
    trained: bool
    eos: bool = False
    tokens: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "trained": self.trained, "eos": self.eos, "tokens": self.tokens}


@dataclass
class ExamplePreview:
    line: int | None
    segments: list[Segment]
    trained_tokens: int
    masked_tokens: int
    ends_with_eos: bool

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "segments": [s.to_dict() for s in self.segments],
                "trained_tokens": self.trained_tokens, "masked_tokens": self.masked_tokens,
                "ends_with_eos": self.ends_with_eos}


@dataclass
class TrainPreview:
    """The first examples as the model sees them, and the token counts over every example checked."""

    train: str
    model: str
    eos_token: str | None
    examples: list[ExamplePreview]
    examples_checked: int
    trained_tokens: int
    masked_tokens: int
    examples_all_masked: int = 0
    examples_all_trained: int = 0
    examples_without_eos: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def trained_share(self) -> float:
        total = self.trained_tokens + self.masked_tokens
        return self.trained_tokens / total if total else 0.0

    @property
    def refusal(self) -> str | None:
        """Why training must not start on this data, or None."""
        if self.trained_tokens == 0:
            return ("no token carries a label: every token is masked, so training would learn nothing "
                    "(check that each example ends with a non-empty assistant message)")
        if self.masked_tokens == 0 or self.examples_all_trained == self.examples_checked:
            return ("every token carries a label: the prompt and the chat template's markers would be trained, "
                    "so the model would learn to write the user's side too (is the data a chat with an "
                    "assistant turn?)")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"train": self.train, "model": self.model, "eos_token": self.eos_token,
                "examples": [e.to_dict() for e in self.examples], "examples_checked": self.examples_checked,
                "trained_tokens": self.trained_tokens, "masked_tokens": self.masked_tokens,
                "trained_share": round(self.trained_share, 4), "examples_all_masked": self.examples_all_masked,
                "examples_all_trained": self.examples_all_trained,
                "examples_without_eos": self.examples_without_eos, "warnings": list(self.warnings),
                "refusal": self.refusal, "ok": self.refusal is None}


def preview_training(config: TrainConfig, *, n: int = 3, check: int = 2000) -> TrainPreview:
    """Encode the first ``check`` training examples as ``train`` would; show the first ``n`` token by token.

    Raises the same ``InputError`` as training for an example with no answer."""
    from tools import models
    from tools.train.loading import load_examples

    examples = load_examples(config.train)
    if config.limit:
        examples = examples[: config.limit]
    examples = examples[:check]
    spec = models.resolve(config.model)
    tok = models.load_tokenizer(spec)
    eos = tok.eos_token_id
    special = set(getattr(tok, "all_special_ids", []) or []) - {eos}
    shown: list[ExamplePreview] = []
    trained = masked = all_masked = all_trained = no_eos = 0
    special_trained = 0
    for i, ex in enumerate(examples):
        enc = encode_example(tok, ex, config.max_seq_length)
        t = sum(1 for lab in enc.labels if lab != IGNORE)
        trained += t
        masked += len(enc.labels) - t
        all_masked += t == 0
        all_trained += t == len(enc.labels)
        last_trained = next((enc.input_ids[k] for k in range(len(enc.labels) - 1, -1, -1)
                             if enc.labels[k] != IGNORE), None)
        ends_eos = eos is not None and last_trained == eos
        no_eos += not ends_eos
        special_trained += sum(1 for k, lab in enumerate(enc.labels) if lab != IGNORE and enc.input_ids[k] in special)
        if i < n:
            shown.append(ExamplePreview(ex.meta.get("line"), _segments(tok, enc.input_ids, enc.labels, eos), t,
                                        len(enc.labels) - t, ends_eos))
    warnings = []
    if no_eos:
        warnings.append(f"{no_eos} of {len(examples)} examples do not end with a trained end-of-turn token: "
                        "the model may not learn to stop")
    if special_trained:
        warnings.append(f"{special_trained} template marker tokens carry labels: the model would learn to write "
                        "them")
    if all_masked and trained:
        warnings.append(f"{all_masked} examples have every token masked (their answer was cut by "
                        f"max_seq_length={config.max_seq_length}?)")
    return TrainPreview(train=str(config.train), model=config.model,
                        eos_token=tok.convert_ids_to_tokens(eos) if eos is not None else None,
                        examples=shown, examples_checked=len(examples), trained_tokens=trained,
                        masked_tokens=masked, examples_all_masked=all_masked, examples_all_trained=all_trained,
                        examples_without_eos=no_eos, warnings=warnings)


def _segments(tok: Any, ids: list[int], labels: list[int], eos: int | None) -> list[Segment]:
    """Runs of equally-labelled tokens, decoded; every end-of-turn token is its own marked segment."""
    out: list[Segment] = []
    run: list[int] = []
    state: bool | None = None

    def flush() -> None:
        if run:
            out.append(Segment(tok.decode(run, skip_special_tokens=False), bool(state), tokens=len(run)))
            run.clear()

    for tid, lab in zip(ids, labels, strict=True):
        is_trained = lab != IGNORE
        if tid == eos:
            flush()
            out.append(Segment(tok.convert_ids_to_tokens(tid), is_trained, eos=True))
            state = None
            continue
        if state is not None and is_trained != state:
            flush()
        state = is_trained
        run.append(tid)
    flush()
    return out
