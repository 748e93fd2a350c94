"""Shared types: the canonical Example record and the ProgressEvent every long tool emits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class Example:
    """One training/evaluation example in canonical chat form.

    ``meta`` carries provenance and flags: ``source`` (file), ``line`` (1-based line or row),
    ``label`` (when the output is a label), ``flags`` (list of str), ``synthetic`` (bool).
    """

    messages: list[Message]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pair(cls, prompt: str, completion: str, *, system: str | None = None,
                  meta: dict[str, Any] | None = None) -> Example:
        msgs = [Message("system", system)] if system else []
        msgs += [Message("user", prompt), Message("assistant", completion)]
        return cls(msgs, dict(meta or {}))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        return cls([Message(m["role"], m["content"]) for m in d["messages"]], dict(d.get("meta") or {}))

    def to_dict(self, *, with_meta: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"messages": [m.to_dict() for m in self.messages]}
        if with_meta and self.meta:
            d["meta"] = self.meta
        return d

    @property
    def prompt_messages(self) -> list[Message]:
        """Every message before the last assistant turn (what the model is given)."""
        idx = self._last_assistant_index()
        return self.messages[:idx] if idx is not None else list(self.messages)

    @property
    def input_text(self) -> str:
        """The last user message before the final assistant turn."""
        for m in reversed(self.prompt_messages):
            if m.role == "user":
                return m.content
        return ""

    @property
    def output_text(self) -> str:
        """The final assistant message (the target)."""
        idx = self._last_assistant_index()
        return self.messages[idx].content if idx is not None else ""

    @property
    def system_text(self) -> str | None:
        for m in self.messages:
            if m.role == "system":
                return m.content
        return None

    def _last_assistant_index(self) -> int | None:
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "assistant":
                return i
        return None


@dataclass
class ProgressEvent:
    """A small progress report: one type, three renderers (CLI bar, graph stream, TUI widget)."""

    stage: str
    step: int = 0
    total: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProgressEvent:
        return cls(stage=d["stage"], step=int(d.get("step", 0)), total=d.get("total"),
                   metrics=dict(d.get("metrics") or {}), message=d.get("message", ""))


ProgressCallback = Callable[[ProgressEvent], None]


def emit(on_progress: ProgressCallback | None, event: ProgressEvent) -> None:
    """Send an event if anyone listens; a listener's failure never breaks the work."""
    if on_progress is None:
        return
    try:
        on_progress(event)
    except Exception:  # noqa: BLE001 - a broken renderer must not kill a training run; the log keeps the bug
        logging.getLogger("tunewise").warning("progress listener failed on %s", event.stage, exc_info=True)


# ---------------------------------------------------------------------------------------------- task profile
# What a data set *is*, decided once from the data (tools.data.profile.detect_profile) and overridable by the
# user (--task-kind). Cleaning, metric choice, generation length, prompt evaluation, evaluation and the
# advisor all read this one record; none of them guesses the shape on its own.
#
# The kind names keep the values that `data inspect --json` has always printed under "output_kind"
# ("label", "structured", "text"), and add "code", "short_answer" and "reasoning" (worked steps that end in a
# marked final answer: GSM8K's "#### 18", "\boxed{18}", "Answer: C").
OutputKind = Literal["label", "structured", "code", "short_answer", "reasoning", "text"]
OUTPUT_KINDS: tuple[str, ...] = ("label", "structured", "code", "short_answer", "reasoning", "text")


@dataclass(frozen=True)
class TaskProfile:
    """The shape of a task, from its rows.

    - ``output_kind``: label (a closed label set), structured (JSON), code, short_answer (a few words, an
      open set: "25", "false", "C"), text (free prose).
    - ``code_languages``: for code outputs, the languages found, most common first.
    - ``multi_turn``: rows with more than one user turn.
    - ``input_language`` / ``output_language``: ISO 639-1 of the text that carries the language, or None.
    - ``labels``: the label set, for label outputs only.
    - ``output_tokens_p50`` / ``output_tokens_p95``: reference length in approximate tokens (chars / 4 when
      no tokenizer was given), which sets the generation length.
    - ``has_tests``: rows carry executable tests (MBPP's ``test_list``, a ``tests`` field).
    - ``source``: "detected"; "user" when the user set the kind; "training_data" when a test file took the kind of
      its training data.
    - ``short_answer_share`` / ``code_share``: the share of rows whose output is a short answer / source code
      (a mixed instruction set can be prose with a fifth of short answers).
    - ``answer_marker`` / ``final_answer_share``: for worked solutions, the final-answer marker most references
      end with (``hash`` for ``#### N``, ``boxed``, ``answer`` for "The answer is ..."/"Answer: X";
      ``tools.data.answers``) and the share of rows that end in one.
    - ``reason``: why the kind is what it is, in words; ``detected_kind``: what the rows alone say when that
      differs from the kind used (the user's answer, or the training data's kind for a test file).
    """

    output_kind: OutputKind
    rows: int = 0
    multi_turn: bool = False
    code_languages: tuple[str, ...] = ()
    input_language: str | None = None
    output_language: str | None = None
    labels: tuple[str, ...] = ()
    output_tokens_p50: int = 0
    output_tokens_p95: int = 0
    has_tests: bool = False
    source: Literal["detected", "user", "training_data"] = "detected"
    short_answer_share: float = 0.0
    code_share: float = 0.0
    answer_marker: str | None = None
    final_answer_share: float = 0.0
    reason: str = ""
    detected_kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["code_languages"] = list(self.code_languages)
        d["labels"] = list(self.labels)
        return d

    def summary(self, *, lengths: bool = True) -> str:
        """The profile in one line, as `data inspect` and the TUI Data view show it."""
        parts = [f"task: {self.output_kind}" + (" (set by you)" if self.source == "user" else "")
                 + (" (from the training data)" if self.source == "training_data" else "")]
        if self.detected_kind and self.detected_kind != self.output_kind:
            parts.append(f"the rows alone read as {self.detected_kind}: {self.reason}")
        if self.answer_marker:
            parts.append(f"final answer marked '{self.answer_marker}' on {self.final_answer_share:.0%} of rows")
        if self.code_languages:
            parts.append("code in " + ", ".join(self.code_languages[:4]))
        if self.labels:
            parts.append(f"{len(self.labels)} labels")
        if self.input_language:
            parts.append(f"inputs in {self.input_language}")
        if self.output_language:
            parts.append(f"outputs in {self.output_language}")
        if self.multi_turn:
            parts.append("multi-turn")
        if self.has_tests:
            parts.append("rows carry tests")
        if lengths:
            parts.append(f"output tokens p50 {self.output_tokens_p50}, p95 {self.output_tokens_p95}")
        return "; ".join(parts)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskProfile:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["code_languages"] = tuple(known.get("code_languages") or ())
        known["labels"] = tuple(known.get("labels") or ())
        return cls(**known)
