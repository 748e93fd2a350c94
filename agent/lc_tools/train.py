"""LangChain tools for training: train a model, estimate memory, diagnose a run, export a merged model."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool


@tool
def train_model(train: str, val: str | None = None, method: str = "lora", model: str = "smollm2-135m-instruct",
                max_steps: int = -1, learning_rate: float | None = None, num_train_epochs: float | None = None,
                per_device_train_batch_size: int = 8, limit: int | None = None) -> dict[str, Any]:
    """Fine-tune a model (LoRA, QLoRA or full) on a data file; unset settings come from the knowledge tables.

    Returns run_id, status (completed/interrupted/failed), best_val_loss, steps, train_seconds,
    peak_memory_mb, artifacts (adapter path) and a diagnosis of the loss curves.
    """
    from tools.errors import OutOfMemoryError, one_of
    from tools.train import TrainConfig
    from tools.train import train as run
    from tools.train.config import METHODS

    cfg = TrainConfig(train=train, val=val, method=one_of(method, METHODS, what="method"), model=model,
                      max_steps=max_steps, learning_rate=learning_rate, num_train_epochs=num_train_epochs,
                      per_device_train_batch_size=per_device_train_batch_size, limit=limit)
    try:
        res = run(cfg)
    except OutOfMemoryError as e:
        return {"run_id": e.run_id, "status": "failed", "error": e.to_dict()}
    return {k: v for k, v in res.to_dict().items() if k not in ("device", "config")}


@tool
def estimate_training_memory(method: str = "lora", params_b: float | None = None, model: str | None = None,
                             seq_len: int = 512, batch: int = 8, gradient_checkpointing: bool = False) -> dict[str, Any]:
    """Estimate the memory (GB) a training run needs: weights, gradients, optimizer states, activations,
    quantisation and overhead, with the seed's table value as a reference. Give params_b or a model."""
    from tools.estimate import estimate_memory

    return estimate_memory(params_b=params_b, model=model, method=method, seq_len=seq_len, batch=batch,
                           gradient_checkpointing=gradient_checkpointing).to_dict()


@tool
def diagnose_run(run_id: str) -> dict[str, Any]:
    """Read a training run's loss curves: overfitting, learning rate too high or too low, not converged or
    healthy, with the knowledge-base fixes as a concrete next config (rule ids cited)."""
    from tools.train.diagnose import diagnose

    return diagnose(run_id).to_dict()


@tool
def export_merged_model(run_id: str, out_dir: str) -> dict[str, Any]:
    """Fold a run's LoRA adapter into its base model and save a plain Hugging Face model folder."""
    from tools.train import export_merged

    return {"run_id": run_id, "merged": str(export_merged(run_id, out_dir))}


TOOLS = [train_model, estimate_training_memory, diagnose_run, export_merged_model]
