"""transformers' Trainer for one run: its TrainingArguments from a TrainConfig, our loss, callback, collator and
early stopping. The only place TrainConfig fields turn into Trainer settings."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.runlog import RunLog
from tools.train.config import TrainConfig
from tools.types import ProgressCallback


def steps_for(config: TrainConfig, n_train: int, processes: int = 1) -> int:
    """Optimizer steps the run will take (``max_steps``, or the epochs over the data)."""
    bs = config.per_device_train_batch_size * processes
    acc = config.gradient_accumulation_steps or 1
    per_epoch = max(1, math.ceil(n_train / bs / acc))
    return config.max_steps if config.max_steps > 0 else math.ceil((config.num_train_epochs or 1) * per_epoch)


def training_arguments(config: TrainConfig, output_dir: Path, *, total_steps: int, device: str,
                       processes: int = 1) -> Any:
    """TrainingArguments for ``config``: evaluation and checkpoints every ``eval_steps`` (about ten per run by
    default), the best checkpoint kept and loaded at the end, progress through our callback only."""
    from transformers import TrainingArguments

    bs = config.per_device_train_batch_size
    eval_steps = config.eval_steps or max(1, min(100, math.ceil(total_steps / 10)))
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=bs, per_device_eval_batch_size=max(bs, 8),
        gradient_accumulation_steps=config.gradient_accumulation_steps or 1,
        learning_rate=float(config.learning_rate or 2e-4),
        num_train_epochs=config.num_train_epochs or 1, max_steps=config.max_steps,
        weight_decay=float(config.weight_decay or 0.0), warmup_steps=max(0, round(config.warmup_ratio * total_steps)),
        lr_scheduler_type=config.lr_scheduler_type, max_grad_norm=config.max_grad_norm,
        eval_strategy="steps", eval_steps=eval_steps, save_strategy="steps", save_steps=eval_steps,
        save_total_limit=config.save_total_limit, load_best_model_at_end=True, metric_for_best_model="eval_loss",
        greater_is_better=False, logging_steps=config.logging_steps, logging_nan_inf_filter=False,
        seed=config.seed, data_seed=config.seed, report_to="none", disable_tqdm=True,
        remove_unused_columns=False, use_cpu=device == "cpu",
        train_sampling_strategy="group_by_length" if config.group_by_length and not config.packing else "random",
        gradient_checkpointing=bool(config.gradient_checkpointing) and config.method != "qlora",
        gradient_checkpointing_kwargs={"use_reentrant": False},
        optim="adamw_torch_fused" if device == "cuda" else "adamw_torch",
        save_only_model=False, dataloader_num_workers=0,
        ddp_backend="gloo" if device == "cpu" and processes > 1 else None,  # DDP on a CPU: gloo
        ddp_find_unused_parameters=False,  # every trainable parameter (adapter or weight) is used each step
    )


def make_trainer(model: Any, tok: Any, config: TrainConfig, train_rows: list[dict[str, Any]],
                 val_rows: list[dict[str, Any]], rdir: Path, run_id: str, log: RunLog, *, bf16: bool,
                 device: str, on_progress: ProgressCallback | None, should_stop: Callable[[], bool] | None,
                 interrupted: Callable[[], bool], seconds_before: float = 0.0, processes: int = 1,
                 heartbeat_every_s: float = 15.0) -> tuple[Any, Any]:
    """The Trainer and our callback for one run."""
    import torch
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback

    from tools.train import hf
    from tools.train.data import CompletionCollator, PackingCollator

    total = steps_for(config, len(train_rows), processes)
    args = training_arguments(config, rdir / "checkpoints", total_steps=total, device=device,
                              processes=processes)
    collator: Any = PackingCollator() if config.packing else CompletionCollator(tok.pad_token_id)
    counter: dict[str, Any] = {}
    cb = hf.RunCallback(run_id, log, lambda: counter["trainer"].train_tokens if "trainer" in counter else 0,
                        on_progress=on_progress, should_stop=should_stop, interrupted=interrupted,
                        seconds_before=seconds_before, heartbeat_every_s=heartbeat_every_s, device=device)
    trainer = hf.CompletionTrainer(
        model=model, args=args, data_collator=collator, train_dataset=Rows(train_rows),
        eval_dataset=Rows(val_rows), callbacks=[cb, EarlyStoppingCallback(
            early_stopping_patience=config.early_stopping_patience,
            early_stopping_threshold=config.early_stopping_threshold)],
        autocast_dtype=torch.bfloat16 if bf16 else None,
        # the prefix needs the decoder's key/value cache, which activation checkpointing turns off in training
        # (for QLoRA it is switched on in the model by prepare_model_for_kbit_training, not in the Trainer args)
        shared_prefix=config.shared_prefix and not config.gradient_checkpointing)
    counter["trainer"] = trainer
    trainer.remove_callback(PrinterCallback)  # progress goes through on_progress; stdout stays clean
    return trainer, cb


class Rows:
    """A list of encoded rows as a map-style dataset."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]
