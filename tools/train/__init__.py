"""Training: LoRA, QLoRA and full fine-tuning on transformers' Trainer, recorded in the run log.

``TrainConfig`` holds every setting (defaults from the knowledge tables); ``train(config)`` runs it and
returns the run summary; ``export_merged(run_id, dir)`` folds an adapter into its base. torch and
transformers load only when a run starts.
"""

from __future__ import annotations

from typing import Any

from tools.train.config import METHODS, TrainConfig, field_help, resolve_defaults


def train(config: TrainConfig, *, on_progress: Any = None, should_stop: Any = None,
          resume: str | None = None) -> dict[str, Any]:
    """Run one training job (see ``tools.train.core.train``)."""
    from tools.train.core import train as _train

    return _train(config, on_progress=on_progress, should_stop=should_stop, resume=resume)


def resume(run_id: str, *, on_progress: Any = None, should_stop: Any = None) -> dict[str, Any]:
    """Continue an interrupted run from its last checkpoint."""
    return train(TrainConfig(), on_progress=on_progress, should_stop=should_stop, resume=run_id)


def export_merged(run_id: str, out_dir: Any) -> Any:
    from tools.train.core import export_merged as _export

    return _export(run_id, out_dir)


__all__ = ["METHODS", "TrainConfig", "export_merged", "field_help", "resolve_defaults", "resume", "train"]
