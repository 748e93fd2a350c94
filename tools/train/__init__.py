"""Training: LoRA, QLoRA and full fine-tuning on transformers' Trainer, recorded in the run log.

``TrainConfig`` holds every setting (defaults from the knowledge tables); ``train(config)`` runs it and
returns a ``TrainResult``; ``export_merged(run_id, dir)`` folds an adapter into its base. torch and
transformers load only when a run starts.

Modules, one reason each: ``config`` (the settings), ``loading`` (examples), ``data`` (tokens and
batches), ``model`` (building the model), ``arguments`` (the Trainer and its arguments), ``hf`` (loss,
sampler, callback), ``speed`` (CPU speed-ups), ``signals`` (Ctrl-C), ``checkpoints`` (which one a resume
trusts), ``threads`` (CPU threads), ``export`` (adapter and merged model), ``result`` (what a run
reports) and ``core`` (the run, top to bottom). Out-of-memory fixes live in ``tools.train.diagnose``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.train.config import METHODS, TrainConfig, resolve_defaults
from tools.train.result import TrainResult
from tools.types import ProgressCallback


def train(config: TrainConfig, *, on_progress: ProgressCallback | None = None, should_stop: Any = None,
          resume: str | None = None) -> TrainResult:
    """Run one training job (see ``tools.train.core.train``)."""
    from tools.train.core import train as _train

    return _train(config, on_progress=on_progress, should_stop=should_stop, resume=resume)


def export_merged(run_id: str, out_dir: str | Path) -> Path:
    """Fold a run's adapter into its base and save the result as a plain Hugging Face model folder."""
    from tools.train.export import export_merged as _export

    return _export(run_id, out_dir)


__all__ = ["METHODS", "TrainConfig", "TrainResult", "export_merged", "resolve_defaults", "train"]
