"""TrainConfig: every training setting, with its help text, serialised verbatim into the run log.

``None`` means "let tunewise choose": ``resolve_defaults`` fills those fields from the knowledge tables
(learning rate by model size and method, epochs and weight decay by data size, effective batch, warmup,
early stopping) and records the ids of the rules it used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

Method = Literal["lora", "qlora", "full"]
METHODS: tuple[str, ...] = ("lora", "qlora", "full")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class TrainConfig:
    """One training run. Fields left at ``None`` are filled from the knowledge tables (see ``rule_ids``)."""

    train: str = _f("", "Training data file (any format tools.data reads: chat JSONL, prompt/completion, CSV).")
    val: str | None = _f(None, "Validation file; when absent, 10% of the training rows are held out (seeded).")
    method: Method = _f("lora", "lora (adapters on a frozen base), qlora (adapters on a 4-bit NF4 base) or full.")
    model: str = _f("smollm2-135m-instruct", "Base model: the embedded name, a local HF folder, or run:RUN_ID.")
    # -- optimisation
    learning_rate: float | None = _f(None, "Peak learning rate; default from hp.lr.<method>.<size>.")
    num_train_epochs: float | None = _f(None, "Passes over the data; default from hp.epochs.* by data size.")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (overrides epochs when > 0).")
    per_device_train_batch_size: int = _f(8, "Sequences per forward pass.")
    gradient_accumulation_steps: int | None = _f(None, "Forward passes per optimizer step; default reaches the "
                                                       "effective batch of hp.batch.effective (capped for small data).")
    weight_decay: float | None = _f(None, "AdamW weight decay; default from hp.wd.* by data size.")
    warmup_ratio: float = _f(0.1, "Share of steps spent warming the learning rate up (hp.warmup).")
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule after warm-up (hp.lr.schedule).")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    seed: int = _f(0, "Seed for initialisation, data order and the held-out split.")
    # -- LoRA
    lora_r: int = _f(8, "LoRA rank (hp.lora.rank.start).")
    lora_alpha: int | None = _f(None, "LoRA scaling numerator; default 2 x r (hp.lora.alpha).")
    lora_dropout: float = _f(0.05, "Dropout on the LoRA input.")
    target_modules: str | list[str] = _f("all-linear", "Layers to adapt: 'all-linear' or a list of module names.")
    # -- data and efficiency
    max_seq_length: int = _f(512, "Longest sequence in tokens; longer prompts are cut from the left.")
    packing: bool = _f(False, "Pack several examples per row (no attention across examples) instead of padding.")
    group_by_length: bool = _f(True, "Batch examples of similar length together to waste less padding.")
    shared_prefix: bool = _f(True, "Encode the tokens every example of a batch starts with (chat header, system "
                                   "prompt) once per batch; same loss and gradients, less compute.")
    bf16: bool | None = _f(None, "bf16 compute; default on where the hardware has it (CUDA bf16, AVX512-BF16).")
    gradient_checkpointing: bool | None = _f(None, "Recompute activations in backward; default on only when the "
                                                   "memory estimate says the run would not fit.")
    limit: int | None = _f(None, "Use only the first N training rows (quick runs).")
    # -- evaluation, checkpoints, stopping
    eval_steps: int | None = _f(None, "Evaluate (and checkpoint) every N optimizer steps; default ~10 per run.")
    early_stopping_patience: int = _f(3, "Stop after this many evaluations without improvement (hp.early_stopping).")
    early_stopping_threshold: float = _f(0.01, "Smallest eval-loss improvement that counts (hp.early_stopping).")
    save_total_limit: int = _f(2, "Checkpoints kept on disk (the best one is always kept).")
    logging_steps: int = _f(1, "Log loss, learning rate and gradient norm every N steps.")
    # -- outputs and faults
    save_merged: bool = _f(False, "Also save the merged model (adapter folded into the base) as run_dir/merged.")
    auto_retry: bool = _f(False, "After an out-of-memory failure, retry once per fix with the cheaper setting.")
    run_id: str | None = _f(None, "Run id; generated when absent.")
    rule_ids: list[str] = _f([], "Knowledge rules behind the defaults (filled in by resolve_defaults).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_overrides(self, **kw: Any) -> TrainConfig:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def field_help() -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(TrainConfig)}


def resolve_defaults(cfg: TrainConfig, *, n_train: int, params_b: float | None) -> TrainConfig:
    """Fill every ``None`` field from the knowledge tables; record the rules used in ``rule_ids``."""
    from knowledge import lookup

    if cfg.method not in METHODS:
        from tools.errors import InputError

        raise InputError(f"unknown method {cfg.method!r}", where="--method", fix="use lora, qlora or full")
    ids: list[str] = list(cfg.rule_ids)
    upd: dict[str, Any] = {}
    if cfg.learning_rate is None:
        lr = lookup.lr_for(params_b or 0.135, cfg.method)
        upd["learning_rate"] = lr.recommended
        ids += lr.rule_ids
    if cfg.num_train_epochs is None:
        ep = lookup.epochs_for(n_train)
        upd["num_train_epochs"] = float(ep.recommended)
        ids.append(ep.id)
    if cfg.weight_decay is None:
        wd = lookup.weight_decay_for(n_train)
        upd["weight_decay"] = wd.value
        ids.append(wd.id)
    if cfg.gradient_accumulation_steps is None:
        target = lookup.load().hyperparameters.effective_batch
        acc = max(1, math.ceil(target.target / cfg.per_device_train_batch_size))
        # A small data set with a large effective batch leaves only a handful of optimizer steps per epoch.
        while acc > 1 and n_train / (cfg.per_device_train_batch_size * acc) < 10:
            acc //= 2
        upd["gradient_accumulation_steps"] = acc
        ids.append(target.id)
    if cfg.lora_alpha is None:
        upd["lora_alpha"] = 2 * cfg.lora_r
        ids.append("hp.lora.alpha")
    if cfg.method != "full" and cfg.target_modules == "all-linear":
        ids.append("hp.lora.target_modules")
    ids += ["hp.warmup", "hp.lr.schedule", "hp.early_stopping"]
    upd["rule_ids"] = list(dict.fromkeys(ids))
    return replace(cfg, **upd)
