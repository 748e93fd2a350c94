"""How a model is evaluated: one dataclass, stored verbatim with every evaluation in the run log."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalConfig:
    """How a model is evaluated; stored verbatim with every evaluation in the run log."""

    metric: str | None = None
    """None: decided once from the test set's task profile (``tools.scoring.metrics.metric_for_profile``)."""
    max_new_tokens: int | None = None
    """Longest answer generated; None: from the references' token lengths (``tools.scoring.metrics.max_new_tokens_for``)."""
    batch_size: int = 8
    """Prompts per batch, passed to ``tools.generation.generate``."""
    probe_max_new_tokens: int = 40
    """Answers to general-capability probes are one short sentence."""
    forgetting_tolerance: float = 0.02
    """A drop of at most 2 points on the probes counts as preserved."""
    bar: float = 0.10
    """The ROI rule's minimum quality gain (``roi.worth_it``), in absolute points."""
    seed: int = 0
    device: str | None = None
    choice: bool = True
    """Label tasks on a local model: also score every variant in choice mode (each allowed label by its
    log-likelihood, ``tools.generation.choose``), reported beside free generation, which decides."""
