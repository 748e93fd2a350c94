"""Typed results of the data tools: ``InspectReport``, ``CleanReport``, ``SplitReport``.

Each has ``to_dict()``, which is the ``--json`` document and the run-log payload: its keys are a contract and
stay what they were when the tools returned plain dicts (new keys are only ever added). The CLI, the TUI and
the agent read the fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from tools.types import TaskProfile


@dataclass(eq=False)
class InspectReport:
    """What ``inspect`` found in a data file."""

    path: str
    sha256: str | None
    format: str
    rows: int
    valid_rows: int
    invalid_rows: int
    problems: list[dict[str, Any]]
    profile: TaskProfile
    multi_turn_rows: int
    with_system_prompt: int
    chars: dict[str, dict[str, float]]
    labels: dict[str, int] | None = None
    label_count: int | None = None
    label_imbalance: float | None = None
    tokens: dict[str, Any] | None = None
    columns: dict[str, str | None] | None = None

    @property
    def output_kind(self) -> str:
        return self.profile.output_kind

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path, "sha256": self.sha256, "format": self.format, "rows": self.rows,
            "valid_rows": self.valid_rows, "invalid_rows": self.invalid_rows, "problems": self.problems,
            "output_kind": self.profile.output_kind, "multi_turn_rows": self.multi_turn_rows,
            "with_system_prompt": self.with_system_prompt, "chars": self.chars, "labels": self.labels,
            "label_count": self.label_count,
        }
        if self.label_imbalance is not None:  # present only for label sets, as before
            d["label_imbalance"] = self.label_imbalance
        if self.tokens is not None:  # present only when a model was given, as before
            d["tokens"] = self.tokens
        d["profile"] = self.profile.to_dict()
        d["columns"] = self.columns
        return d


@dataclass(eq=False)
class CleanReport:
    """What ``clean`` did: counts per reason, the profile it cleaned by, examples, histograms, speed."""

    input: str
    out: str
    dataset_sha256: str
    format: str
    input_rows: int
    valid_rows: int
    kept_rows: int
    removed: dict[str, int]
    flagged: dict[str, int]
    rule_ids: dict[str, str]
    profile: TaskProfile
    language: str | None
    label_count: int | None
    label_distribution: dict[str, int] | None
    near_duplicates: dict[str, Any]
    problems: list[dict[str, Any]]
    examples: dict[str, list[dict[str, Any]]]
    histograms: dict[str, Any]
    seconds: float
    rows_per_s: float | None
    config: dict[str, Any] = field(default_factory=dict)
    stale_temp_files_removed: int = 0

    @property
    def output_kind(self) -> str:
        return self.profile.output_kind

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "profile":
                d["output_kind"] = self.profile.output_kind
                d["profile"] = self.profile.to_dict()
            else:
                d[f.name] = getattr(self, f.name)
        return d


@dataclass(eq=False)
class SplitReport:
    """What ``split`` wrote: rows per split, files and their sha256, the rule, warnings."""

    train: int
    val: int
    test: int
    synthetic_in_train: int
    files: dict[str, str]
    sha256: dict[str, str]
    rule: str
    rule_ids: list[str]
    seed: int
    stratified_by: str | None
    groups: int
    grouped_rows: int
    warnings: list[str]
    input_sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
