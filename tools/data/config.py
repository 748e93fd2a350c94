"""``CleanConfig``: every cleaning filter's switch and thresholds, defaulting to the knowledge tables.

Defaults come from ``knowledge/data.yaml`` (``data.clean.*``, ``data.output_kinds``) and
``knowledge/cleaning.yaml``; the resolved config is stored verbatim in the run log with each cleaning.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from typing import Any, Literal

import yaml

PiiAction = Literal["flag", "mask", "remove"]
PII_ACTIONS: tuple[PiiAction, ...] = ("flag", "mask", "remove")


@functools.lru_cache(maxsize=1)
def cleaning_knowledge() -> dict[str, Any]:
    """``knowledge/cleaning.yaml`` as a dict."""
    return yaml.safe_load((files("knowledge") / "cleaning.yaml").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    from knowledge import loader

    data = loader.load().data
    f = data.filters
    kinds = data.output_kinds
    ck = cleaning_knowledge()
    pii_action = {"redact": "mask", "drop": "remove"}.get(f.pii.action, f.pii.action)
    return {
        "error_patterns": list(f.error_markers.patterns),
        "min_chars": f.min_length.min_chars,
        "max_chars": f.max_length.max_chars,
        "terminal_chars": "".join(f.completeness.terminal_chars)
        + "".join(kind_rule("data.clean.completeness.truncation")["extra_terminal_chars"]),
        "trailing_closers": "".join(f.completeness.allow_trailing_closers),
        "language_min_chars": f.language.min_chars,
        "language_min_probability": f.language.min_probability,
        "near_dup_threshold": f.near_duplicates.threshold,
        "num_perm": f.near_duplicates.num_perm,
        "shingle_size": f.near_duplicates.shingle_size,
        "max_cluster_size": f.near_duplicates.max_cluster_size,
        "near_dup_seed": f.near_duplicates.seed,
        "pii_kinds": [k.model_dump() for k in f.pii.kinds],
        "pii_action": pii_action,
        "quality_action": ck["quality_action"]["default"],
        "quality_min_chars": f.quality_heuristics.min_chars,
        "max_duplicate_line_fraction": f.quality_heuristics.max_duplicate_line_fraction,
        "max_top_trigram_fraction": f.quality_heuristics.max_top_trigram_fraction,
        "max_symbol_ratio": f.quality_heuristics.max_symbol_ratio,
        "min_alpha_word_fraction": f.quality_heuristics.min_alpha_word_fraction,
        "min_mean_word_length": f.quality_heuristics.min_mean_word_length,
        "max_mean_word_length": f.quality_heuristics.max_mean_word_length,
        "label_max_chars": max(kinds.label.max_chars, ck["label_detection"]["max_chars"]),
        "label_max_distinct": kinds.label.max_distinct_values,
        "label_max_distinct_fraction": kinds.label.max_distinct_fraction,
        "label_min_short_fraction": ck["label_detection"]["min_short_fraction"],
        "code_markers": list(kinds.code.markers),
        "max_bucket": ck["near_duplicates_lsh"]["max_bucket"],
        "boilerplate_min_fraction": ck["near_duplicates_lsh"]["boilerplate_min_fraction"],
        "boilerplate_min_rows": ck["near_duplicates_lsh"]["boilerplate_min_rows"],
        "profile_min_share": ck["profile"]["min_share"],
        "short_answer_min_share": ck["profile"]["short_answer_min_share"],
        "reasoning_min_share": ck["profile"]["reasoning_min_share"],
        "reasoning_min_working_chars": ck["profile"]["reasoning_min_working_chars"],
        "label_min_repeated_share": ck["profile"]["label_min_repeated_share"],
        "label_min_name_share": ck["profile"]["label_min_name_share"],
        "label_max_words": ck["profile"]["label_max_words"],
        "input_language_min_probability": kind_rule("data.clean.language.carrier")["input_min_probability"],
        "short_answer_min_share_in_text":
            kind_rule("data.clean.min_length.short_answers")["short_answer_min_share_in_text"],
        "request_min_words": kind_rule("data.clean.error_markers.outputs")["request_min_words"],
        "min_fragment_words": kind_rule("data.clean.completeness.truncation")["min_fragment_words"],
        "repeated_ngram": kind_rule("data.clean.quality.scope")["repeated_ngram"],
        "dangling_words": kind_rule("data.clean.completeness.truncation")["dangling_words"].split(),
        "language_vocabulary": {k: v for k, v in kind_rule("data.clean.language.vocabulary").items()
                                if k in ("learn_texts", "min_known_fraction", "min_words")},
        "long_form_max_chars": kind_rule("data.clean.max_length.long_form")["long_form_max_chars"],
        "examples_per_reason": ck["report"]["examples_per_reason"],
        "histogram_bins": list(ck["report"]["histogram_bins"]),
    }


def kind_rule(rule_id: str) -> dict[str, Any]:
    """One of the kind-aware rows of ``knowledge/cleaning.yaml`` (``kind_rules``) by its id."""
    for row in cleaning_knowledge()["kind_rules"]:
        if row["id"] == rule_id:
            return dict(row)
    raise KeyError(rule_id)


def _d(name: str) -> Any:
    return field(default_factory=lambda: _defaults()[name])


# Each filter's rule id, cited in the report.
RULE_IDS = {
    "empty": "data.clean.empty",
    "error_marker": "data.clean.error_markers",
    "length": "data.clean.min_length",
    "incomplete": "data.clean.completeness",
    "language": "data.clean.language",
    "exact_duplicate": "data.clean.exact_duplicates",
    "near_duplicate": "data.clean.near_duplicates",
    "conflicting_label": "data.clean.conflicting_labels",
    "pii": "data.clean.pii",
    "quality": "data.clean.quality_heuristics",
}


@dataclass
class CleanConfig:
    """What ``clean`` does. Every filter can be switched off; thresholds default to the knowledge tables."""

    # switches
    empty: bool = field(default=True, metadata={"help": "Drop rows with an empty input or output."})
    error_markers: bool = field(default=True, metadata={"help": "Drop rows holding error dumps (tracebacks, 'Error:' lines)."})
    length: bool = field(default=True, metadata={"help": "Drop rows outside the length bounds (labels/JSON exempt from the minimum)."})
    completeness: bool = field(default=True, metadata={"help": "Drop free-text outputs without terminal punctuation."})
    language: bool = field(default=True, metadata={"help": "Drop free-text outputs not in the data set's main language."})
    exact_duplicates: bool = field(default=True, metadata={"help": "Keep one copy of rows equal after normalisation."})
    near_duplicates: bool = field(default=True, metadata={"help": "Keep one row per MinHash near-duplicate cluster."})
    conflicting_labels: bool = field(default=True, metadata={"help": "Drop inputs that carry different labels."})
    pii: bool = field(default=True, metadata={"help": "Look for personal data (see pii_action)."})
    quality: bool = field(default=True, metadata={"help": "Repetition / symbol / gibberish checks on long free text."})
    # thresholds
    error_patterns: list[str] = _d("error_patterns")
    min_chars: int = _d("min_chars")
    max_chars: int = _d("max_chars")
    terminal_chars: str = _d("terminal_chars")
    trailing_closers: str = _d("trailing_closers")
    expected_language: str | None = field(default=None, metadata={"help": "ISO code; default: the majority language."})
    language_min_chars: int = _d("language_min_chars")
    language_min_probability: float = _d("language_min_probability")
    near_dup_threshold: float = _d("near_dup_threshold")
    num_perm: int = _d("num_perm")
    shingle_size: int = _d("shingle_size")
    max_cluster_size: int = _d("max_cluster_size")
    near_dup_seed: int = _d("near_dup_seed")
    max_bucket: int = _d("max_bucket")
    boilerplate_min_fraction: float = _d("boilerplate_min_fraction")
    boilerplate_min_rows: int = _d("boilerplate_min_rows")
    pii_kinds: list[dict[str, Any]] = _d("pii_kinds")
    pii_action: PiiAction = _d("pii_action")
    quality_action: Literal["flag", "remove"] = _d("quality_action")
    quality_min_chars: int = _d("quality_min_chars")
    max_duplicate_line_fraction: float = _d("max_duplicate_line_fraction")
    max_top_trigram_fraction: float = _d("max_top_trigram_fraction")
    max_symbol_ratio: float = _d("max_symbol_ratio")
    min_alpha_word_fraction: float = _d("min_alpha_word_fraction")
    min_mean_word_length: float = _d("min_mean_word_length")
    max_mean_word_length: float = _d("max_mean_word_length")
    label_max_chars: int = _d("label_max_chars")
    label_max_distinct: int = _d("label_max_distinct")
    label_max_distinct_fraction: float = _d("label_max_distinct_fraction")
    label_min_short_fraction: float = _d("label_min_short_fraction")
    code_markers: list[str] = _d("code_markers")
    profile_min_share: float = _d("profile_min_share")
    short_answer_min_share: float = _d("short_answer_min_share")
    reasoning_min_share: float = _d("reasoning_min_share")
    reasoning_min_working_chars: int = _d("reasoning_min_working_chars")
    label_min_repeated_share: float = _d("label_min_repeated_share")
    label_min_name_share: float = _d("label_min_name_share")
    label_max_words: int = _d("label_max_words")
    input_language_min_probability: float = _d("input_language_min_probability")
    short_answer_min_share_in_text: float = _d("short_answer_min_share_in_text")
    request_min_words: int = _d("request_min_words")
    min_fragment_words: int = _d("min_fragment_words")
    repeated_ngram: int = _d("repeated_ngram")
    long_form_max_chars: int = _d("long_form_max_chars")
    dangling_words: list[str] = _d("dangling_words")
    language_vocabulary: dict[str, Any] = _d("language_vocabulary")
    task_kind: str | None = field(default=None, metadata={
        "help": "The task kind (label, structured, code, short_answer, reasoning, text); default: detected from the rows."})
    # reading and reporting
    fmt: str | None = None
    skip_invalid: bool = False
    columns: tuple[str, str] | None = None
    examples_per_reason: int = _d("examples_per_reason")
    histogram_bins: list[int] = _d("histogram_bins")
    batch_size: int = 20_000
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1),
                         metadata={"help": "Processes for the first pass over large JSONL files (1 = serial)."})
    parallel_min_bytes: int = 32 << 20

    SWITCHES = ("empty", "error_markers", "length", "completeness", "language", "exact_duplicates",
                "near_duplicates", "conflicting_labels", "pii", "quality")

    def __post_init__(self) -> None:
        if self.pii_action not in ("flag", "mask", "remove"):
            raise ValueError(f"pii_action must be flag, mask or remove, not {self.pii_action!r}")
        if self.quality_action not in ("flag", "remove"):
            raise ValueError(f"quality_action must be flag or remove, not {self.quality_action!r}")
        if not 0 < self.near_dup_threshold <= 1:
            raise ValueError("near_dup_threshold must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
