"""What training reports: the typed run result and the metrics of each progress event.

``TrainResult.to_dict()`` is the ``tunewise train --json`` document and the last ``--events jsonl`` line;
its keys are a contract (see tests/cli/test_cli_train.py). The TUI and the agent read the fields.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.train.diagnose import Diagnosis


@dataclass
class StepMetrics:
    """The metrics of one logged training step (a ``ProgressEvent``'s ``metrics`` with stage ``train``)."""

    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    eta_s: float
    epoch: float
    memory_mb: float  # what the device holds for this run: CUDA allocated on a GPU, else the process's RSS
    rss_mb: float
    cuda_allocated_mb: float | None = None

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.grad_norm)


@dataclass
class Retry:
    """One automatic retry after running out of memory: the failed run and the fix tried next."""

    run_id: str
    error: str
    fix: str  # the knowledge rule id (diag.out_of_memory.fix.*)
    params: dict[str, Any]


@dataclass
class TrainResult:
    """One training run's outcome. ``status`` is completed, interrupted or failed."""

    run_id: str | None
    status: str = "failed"
    best_val_loss: float | None = None
    steps: int = 0
    train_seconds: float | None = None  # every segment of the run, across resumes
    peak_memory_mb: float | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    model: str | None = None
    device: dict[str, Any] | None = None
    estimate: dict[str, Any] | None = None
    rule_ids: list[str] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    attn_implementation: str | None = None
    train_examples: int | None = None
    val_examples: int | None = None
    train_tokens: int | None = None
    tokens_per_s: float | None = None
    best_checkpoint: str | None = None
    config: dict[str, Any] | None = None
    shared_prefix: dict[str, Any] | None = None
    threads: dict[str, Any] | None = None  # the torch thread count chosen and why (tools.train.threads)
    processes: int = 1  # training processes (2+ under accelerate/DDP)
    resumed_from: str | None = None  # the checkpoint a resume started from
    diagnosis: Diagnosis | None = None
    error: dict[str, Any] | None = None  # what went wrong and what to do, for a failed run

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["diagnosis"] = self.diagnosis.to_dict() if self.diagnosis is not None else None
        return d

    def summary(self) -> dict[str, Any]:
        """The run log's ``summary`` column."""
        keep = ("train_examples", "val_examples", "train_tokens", "tokens_per_s", "estimate", "best_checkpoint",
                "shared_prefix", "threads", "processes", "resumed_from")
        d = {k: getattr(self, k) for k in keep}
        d["retries"] = [asdict(r) for r in self.retries]
        d["diagnosis"] = self.diagnosis.to_dict() if self.diagnosis is not None else None
        return d
