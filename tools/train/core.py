"""``train(config)``: one training run from data files to a saved adapter, recorded in the run log.

The steps read top to bottom: load and split the data, fill defaults from the knowledge tables, check the
memory estimate against the device, encode with completion-only labels, build the model for the method,
run transformers' Trainer with our loss and callback, then save the adapter and record the outcome.
Faults are outcomes, not crashes: Ctrl-C/SIGTERM checkpoint and mark the run ``interrupted``; NaN loss
and out-of-memory mark it ``failed`` with a diagnosis and a fix (and, with ``auto_retry``, try the fix).
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from tools import paths
from tools.errors import InputError, OutOfMemoryError, TunewiseError
from tools.fileio import atomic_dir, sha256_file, write_json
from tools.runlog import RunLog, new_id
from tools.train.config import TrainConfig, resolve_defaults
from tools.types import Example, ProgressCallback, ProgressEvent, emit

VAL_FRACTION = 0.1


# ---------------------------------------------------------------------------------------------- data

def load_examples(path: str) -> list[Example]:
    """Examples from any format the data tools read (falls back to the minimal loader)."""
    try:
        from tools.data import load  # type: ignore[attr-defined]

        return list(load(path).examples)
    except ImportError:
        from tools.data.formats import load_examples as _load

        return _load(path)


def split_holdout(examples: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    idx = list(range(len(examples)))
    random.Random(seed).shuffle(idx)
    n_val = max(1, round(len(examples) * VAL_FRACTION))
    val = set(idx[:n_val])
    return [e for i, e in enumerate(examples) if i not in val], [e for i, e in enumerate(examples) if i in val]


# ---------------------------------------------------------------------------------------------- faults

class _StopFlag:
    """Set by SIGINT/SIGTERM: the trainer checkpoints at the end of the current step and stops.
    A second Ctrl-C falls through to the default handler (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.set = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            if self.set:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            self.set = True

        for s in old:
            signal.signal(s, handler)
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def oom_fixes(cfg: TrainConfig) -> list[tuple[str, dict[str, Any]]]:
    """The seed's out-of-memory fixes (diag.out_of_memory.fix.*), in order, that would change this config."""
    out: list[tuple[str, dict[str, Any]]] = []
    if cfg.method == "lora":
        out.append(("diag.out_of_memory.fix.qlora", {"method": "qlora"}))
    if cfg.per_device_train_batch_size > 1:
        bs = max(1, cfg.per_device_train_batch_size // 2)
        acc = (cfg.gradient_accumulation_steps or 1) * cfg.per_device_train_batch_size // bs
        out.append(("diag.out_of_memory.fix.batch_one",
                    {"per_device_train_batch_size": bs, "gradient_accumulation_steps": acc}))
    if not cfg.gradient_checkpointing:
        out.append(("diag.out_of_memory.fix.gradient_checkpointing", {"gradient_checkpointing": True}))
    if cfg.max_seq_length > 512:
        out.append(("diag.out_of_memory.fix.shorter_sequences", {"max_seq_length": 512}))
    return out


def _oom_fix_text(cfg: TrainConfig) -> str:
    fixes = oom_fixes(cfg)
    if not fixes:
        return "use a smaller model (diag.out_of_memory.fix.smaller_model)"
    words = []
    for rid, params in fixes:
        words.append(", ".join(f"{k}={v}" for k, v in params.items()) + f" ({rid})")
    return "try, in order: " + "; ".join(words) + "; or rerun with --auto-retry"


# ---------------------------------------------------------------------------------------------- model

def _params_b(path: Path) -> float | None:
    import json

    from tools.models import estimate_params_b

    return estimate_params_b(json.loads((path / "config.json").read_text()))


def attention_for(device: str, seq_len: int, packing: bool) -> str | None:
    """Plain (eager) attention on CPU for short sequences: the CPU flash-attention backward is slower than
    two small matmuls there (measured: 12% of a SmolLM2 LoRA step at 62 tokens). None keeps the default."""
    if device == "cpu" and not packing and seq_len <= 256:
        return "eager"
    return None


def build_model(path: Path, cfg: TrainConfig, *, bf16: bool, attn_implementation: str | None = None,
                device: str = "cpu") -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    kw: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
    if attn_implementation:
        kw["attn_implementation"] = attn_implementation
    if cfg.method == "full":
        kw["dtype"] = torch.float32  # fp32 master weights; bf16 autocast does the compute
    else:
        kw["dtype"] = torch.bfloat16 if bf16 else torch.float32  # the frozen base never needs fp32
    if cfg.method == "qlora":
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32)
    model: Any = AutoModelForCausalLM.from_pretrained(path, **kw)
    model.config.use_cache = False
    if cfg.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(cfg.gradient_checkpointing),
            gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.method in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        tm = cfg.target_modules
        lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r, lora_dropout=cfg.lora_dropout,
                          target_modules=tm if isinstance(tm, str) else list(tm), bias="none",
                          task_type="CAUSAL_LM")
        model = get_peft_model(model, lcfg)
        if device == "cpu":  # torch's CPU Bernoulli is slow; CUDA's is not (tools.train.speed)
            from tools.train.speed import use_fast_dropout

            use_fast_dropout(model)
    return model


# ---------------------------------------------------------------------------------------------- train

def train(config: TrainConfig, *, on_progress: ProgressCallback | None = None,
          should_stop: Callable[[], bool] | None = None, resume: str | None = None) -> dict[str, Any]:
    """Run one training job; returns the run summary (``run_id``, ``status``, ``best_val_loss``, ``steps``,
    ``train_seconds``, ``peak_memory_mb``, ``artifacts``, ...). ``resume`` continues a run from its last
    checkpoint with the same data order and schedule. User errors raise TunewiseError before the run starts."""
    log = RunLog()
    attempts: list[dict[str, Any]] = []
    cfg = config
    while True:
        try:
            return _train_once(cfg, log, on_progress=on_progress, should_stop=should_stop, resume=resume,
                               attempts=attempts)
        except _OOM as oom:
            fixes = oom_fixes(oom.config)
            if not (oom.config.auto_retry and fixes):
                raise OutOfMemoryError(f"training ran out of memory ({oom.message})", where=f"run {oom.run_id}",
                                       fix=_oom_fix_text(oom.config), run_id=oom.run_id,
                                       retries=attempts) from None
            rid, params = fixes[0]
            attempts.append({"run_id": oom.run_id, "error": oom.message, "fix": rid, "params": params})
            emit(on_progress, ProgressEvent("retry", len(attempts), None, message=f"out of memory; retrying with "
                                            f"{params} ({rid})"))
            cfg = replace(oom.config, run_id=None, **params)
            resume = None


class _OOM(Exception):
    def __init__(self, run_id: str, config: TrainConfig, message: str) -> None:
        super().__init__(message)
        self.run_id, self.config, self.message = run_id, config, message


def _quiet_transformers() -> None:
    from tools.models import quiet_notices

    quiet_notices()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Could not find a config file")  # peft, for a named base


def _train_once(config: TrainConfig, log: RunLog, *, on_progress: ProgressCallback | None,
                should_stop: Callable[[], bool] | None, resume: str | None,
                attempts: list[dict[str, Any]]) -> dict[str, Any]:
    from tools import models

    _quiet_transformers()
    from tools.device import detect

    resume_ckpt: str | None = None
    if resume:
        run = log.find_run(resume)
        config = TrainConfig.from_dict(run["config"] or {})
        config = replace(config, run_id=run["run_id"])
        resume_ckpt = _last_checkpoint(run["run_id"])
        if resume_ckpt is None:
            raise InputError(f"run {run['run_id']} has no checkpoint to resume from",
                             where=str(paths.run_dir(run["run_id"]) / "checkpoints"),
                             fix="start a new run with the same settings")

    if not config.train:
        raise InputError("no training file given", where="--train", fix="pass --train FILE")
    emit(on_progress, ProgressEvent("prepare", 0, 4, message="loading data"))
    train_ex = load_examples(config.train)
    if config.limit:
        train_ex = train_ex[: config.limit]
    if config.val:
        val_ex = load_examples(config.val)
        if config.limit:
            val_ex = val_ex[: max(1, config.limit // 5)]
    else:
        train_ex, val_ex = split_holdout(train_ex, config.seed)
    if len(train_ex) < 1 or len(val_ex) < 1:
        raise InputError(f"need at least one training and one validation example (got {len(train_ex)} and "
                         f"{len(val_ex)})", where=config.train, fix="add examples")

    spec = models.resolve(config.model)
    if spec.adapter is not None:
        raise InputError("training on top of a tuned run's adapter is not supported", where="--model",
                         fix="merge it first with `tunewise export RUN_ID --merged DIR` and train on DIR")
    base = models.base_path(spec, on_progress=on_progress)
    params_b = _params_b(base)
    if not resume:
        config = resolve_defaults(config, n_train=len(train_ex), params_b=params_b)
    dev = detect()
    device = "cuda" if dev.kind == "cuda" else "cpu"
    bf16 = dev.bf16 if config.bf16 is None else bool(config.bf16)

    tok = models.load_tokenizer(spec)
    from tools.train.data import encode_all

    emit(on_progress, ProgressEvent("prepare", 1, 4, message="tokenising"))
    train_rows = encode_all(tok, train_ex, config.max_seq_length)
    val_rows = encode_all(tok, val_ex, config.max_seq_length)

    # Pre-flight: does the estimate fit the device? Turn on checkpointing if that is what it takes.
    from tools.estimate import estimate_memory, fits

    lens = sorted(len(r["input_ids"]) for r in train_rows)
    seq_len = lens[min(len(lens) - 1, int(0.95 * len(lens)))] if not config.packing else config.max_seq_length
    est = estimate_memory(model=str(base), method=config.method, seq_len=seq_len,
                          batch=config.per_device_train_batch_size, lora_r=config.lora_r,
                          gradient_checkpointing=bool(config.gradient_checkpointing), bf16=bf16)
    if config.gradient_checkpointing is None:
        ok = fits(est, dev)
        if not ok:
            est = estimate_memory(model=str(base), method=config.method, seq_len=seq_len,
                                  batch=config.per_device_train_batch_size, lora_r=config.lora_r,
                                  gradient_checkpointing=True, bf16=bf16)
        config = replace(config, gradient_checkpointing=not ok,
                         rule_ids=config.rule_ids + ([] if ok else ["diag.out_of_memory.fix.gradient_checkpointing"]))
    if not fits(est, dev):
        raise OutOfMemoryError(
            f"the memory estimate ({est['total_gb']:.1f} GB) exceeds this device ({est.get('device_gb')} GB)",
            where=f"--model {config.model} --method {config.method}", fix=_oom_fix_text(config))

    data_hashes = {"train": sha256_file(config.train)}
    if config.val:
        data_hashes["val"] = sha256_file(config.val)
    if resume:
        run_id = config.run_id or ""
        log.update_run(run_id, status="running", error=None)
    else:
        run_id = log.start_run("train", config=config.to_dict(), method=config.method, model=config.model,
                               data_hashes=data_hashes, run_id=config.run_id or new_id("train-"))
        config = replace(config, run_id=run_id)
        log.update_run(run_id, config=config.to_dict())
    rdir = paths.run_dir(run_id)
    write_json(rdir / "config.json", config.to_dict())

    emit(on_progress, ProgressEvent("prepare", 2, 4, message=f"loading {spec.label} for {config.method}"))
    result: dict[str, Any] = {"run_id": run_id, "status": "failed", "best_val_loss": None, "steps": 0,
                              "train_seconds": 0.0, "peak_memory_mb": None, "artifacts": {},
                              "method": config.method, "model": config.model, "device": dev.to_dict(),
                              "estimate": est, "rule_ids": config.rule_ids, "retries": attempts}
    t0 = time.perf_counter()
    flag = _StopFlag()
    try:
        import torch

        from tools.train import hf

        torch.manual_seed(config.seed)
        attn = attention_for(device, lens[-1], config.packing)
        result["attn_implementation"] = attn or "default"
        model = build_model(base, config, bf16=bf16, attn_implementation=attn, device=device)
        trainer, cb, collator = _make_trainer(model, tok, config, train_rows, val_rows, rdir, run_id, log,
                                              bf16=bf16, device=device, on_progress=on_progress,
                                              should_stop=should_stop, interrupted=lambda: flag.set)
        emit(on_progress, ProgressEvent("prepare", 3, 4, message="training"))
        # models.load_model (inference) turns autograd off process-wide; training needs it on
        with flag.installed(), torch.enable_grad():
            trainer.train(resume_from_checkpoint=resume_ckpt)
    except Exception as e:
        from tools.train import hf

        if "cb" in locals():
            with contextlib.suppress(Exception):
                cb.flush()
        seconds = time.perf_counter() - t0
        if hf.is_oom(e):
            msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            fix = _oom_fix_text(config)
            log.update_run(run_id, status="failed", error=f"out of memory: {msg}\nWhat to do: {fix}",
                           train_seconds=seconds,
                           summary={"failure": "out_of_memory", "fix": fix, "rule_ids": ["diag.out_of_memory"]})
            shutil.rmtree(rdir / "checkpoints", ignore_errors=True)
            raise _OOM(run_id, config, msg) from None
        err = e.render() if isinstance(e, TunewiseError) else f"{type(e).__name__}: {e}"
        log.update_run(run_id, status="failed", error=err, train_seconds=seconds)
        raise
    except KeyboardInterrupt:
        log.update_run(run_id, status="interrupted", error="stopped by a second Ctrl-C before a checkpoint",
                       train_seconds=time.perf_counter() - t0)
        raise

    seconds = time.perf_counter() - t0
    state = trainer.state
    status = {"nan": "failed", "interrupted": "interrupted"}.get(cb.stop_reason or "", "completed")
    artifacts: dict[str, Any] = {"config": str(rdir / "config.json"), "checkpoints": str(rdir / "checkpoints")}
    if status != "failed" or state.best_model_checkpoint:
        artifacts.update(_save_outputs(trainer.model, tok, config, rdir, spec, base))
    best = state.best_metric if state.best_metric is not None else cb.best_val
    prev = log.get_run(run_id) or {}
    total_seconds = seconds + (float(prev.get("train_seconds") or 0) if resume else 0.0)
    result.update(status=status, best_val_loss=best, steps=state.global_step,
                  train_seconds=round(total_seconds, 2),
                  peak_memory_mb=round(hf.peak_memory_mb(device), 1), artifacts=artifacts,
                  train_examples=len(train_rows), val_examples=len(val_rows), train_tokens=trainer.train_tokens,
                  tokens_per_s=round(trainer.train_tokens / max(seconds, 1e-9), 1),
                  best_checkpoint=state.best_model_checkpoint, config=config.to_dict(),
                  shared_prefix=trainer.shared_prefix_check or {"enabled": False})
    error = None
    if cb.nan:
        from tools.diagnose import nan_diagnosis

        result["diagnosis"] = nan_diagnosis(cb.nan, config)
        error = (f"loss became {cb.nan['loss']} at step {cb.nan['step']}; "
                 f"what to do: {result['diagnosis']['next_config']}")
        result["error"] = {"what": f"non-finite loss at step {cb.nan['step']}", "fix": result["diagnosis"]["fix"]}
    log.update_run(run_id, status=status, best_val_loss=best, steps=state.global_step,
                   train_seconds=result["train_seconds"], peak_memory_mb=result["peak_memory_mb"],
                   artifacts=artifacts, error=error,
                   summary={k: result.get(k) for k in ("train_examples", "val_examples", "train_tokens", "tokens_per_s",
                                                       "estimate", "retries", "diagnosis", "best_checkpoint",
                                                       "shared_prefix")})
    if status == "completed":
        with contextlib.suppress(Exception):
            from tools.diagnose import diagnose

            d = diagnose(run_id)
            result["diagnosis"] = {k: d[k] for k in ("verdict", "issues", "next_config", "rule_ids")}
    emit(on_progress, ProgressEvent("done", state.global_step, state.max_steps,
                                    {k: v for k, v in (("best_val_loss", best),) if v is not None},
                                    message=status))
    return result


def _make_trainer(model: Any, tok: Any, config: TrainConfig, train_rows: list[dict[str, Any]],
                  val_rows: list[dict[str, Any]], rdir: Path, run_id: str, log: RunLog, *, bf16: bool,
                  device: str, on_progress: ProgressCallback | None, should_stop: Callable[[], bool] | None,
                  interrupted: Callable[[], bool]) -> tuple[Any, Any, Any]:
    import torch
    from transformers import EarlyStoppingCallback, TrainingArguments

    from tools.train import hf
    from tools.train.data import CompletionCollator, PackingCollator

    bs = config.per_device_train_batch_size
    acc = config.gradient_accumulation_steps or 1
    steps_per_epoch = max(1, math.ceil(len(train_rows) / bs / acc))
    total = config.max_steps if config.max_steps > 0 else math.ceil((config.num_train_epochs or 1) * steps_per_epoch)
    eval_steps = config.eval_steps or max(1, min(100, math.ceil(total / 10)))
    collator: Any = PackingCollator() if config.packing else CompletionCollator(tok.pad_token_id)
    args = TrainingArguments(
        output_dir=str(rdir / "checkpoints"),
        per_device_train_batch_size=bs, per_device_eval_batch_size=max(bs, 8),
        gradient_accumulation_steps=acc, learning_rate=float(config.learning_rate or 2e-4),
        num_train_epochs=config.num_train_epochs or 1, max_steps=config.max_steps,
        weight_decay=float(config.weight_decay or 0.0), warmup_steps=max(0, round(config.warmup_ratio * total)),
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
    )
    counter: dict[str, Any] = {}
    cb = hf.RunCallback(run_id, log, lambda: counter["trainer"].train_tokens if "trainer" in counter else 0,
                        on_progress=on_progress, should_stop=should_stop, interrupted=interrupted)
    from transformers.trainer_callback import PrinterCallback
    trainer = hf.CompletionTrainer(
        model=model, args=args, data_collator=collator, train_dataset=_Rows(train_rows),
        eval_dataset=_Rows(val_rows), callbacks=[cb, EarlyStoppingCallback(
            early_stopping_patience=config.early_stopping_patience,
            early_stopping_threshold=config.early_stopping_threshold)],
        autocast_dtype=torch.bfloat16 if bf16 else None,
        # the prefix needs the decoder's key/value cache, which activation checkpointing turns off in training
        # (for QLoRA it is switched on in the model by prepare_model_for_kbit_training, not in the Trainer args)
        shared_prefix=config.shared_prefix and not config.gradient_checkpointing)
    counter["trainer"] = trainer
    trainer.remove_callback(PrinterCallback)  # progress goes through on_progress; stdout stays clean
    return trainer, cb, collator


class _Rows:
    """A list of encoded rows as a map-style dataset."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _last_checkpoint(run_id: str) -> str | None:
    d = paths.run_dir(run_id) / "checkpoints"
    if not d.exists():
        return None
    cks = sorted((p for p in d.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                 key=lambda p: int(p.name.split("-")[-1]))
    return str(cks[-1]) if cks else None


def _save_outputs(model: Any, tok: Any, config: TrainConfig, rdir: Path, spec: Any, base: Path) -> dict[str, str]:
    """The adapter (safetensors + config) in run_dir/adapter, or the full model in run_dir/model."""
    out: dict[str, str] = {}
    if config.method in ("lora", "qlora"):
        # Name the base by its spec so the adapter resolves on any machine that has the same model.
        base_name = spec.name if spec.kind == "embedded" else str(base)
        for c in model.peft_config.values():
            c.base_model_name_or_path = base_name
        with atomic_dir(rdir / "adapter") as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
        out["adapter"] = str(rdir / "adapter")
        if config.save_merged:
            out["merged"] = str(export_merged(config.run_id or rdir.name, rdir / "merged"))
    else:
        with atomic_dir(rdir / "model") as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        out["model"] = str(rdir / "model")
    return out


def export_merged(run_id: str, out_dir: str | Path) -> Path:
    """Fold a run's adapter into its (unquantised) base and save the result as a plain HF model folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tools import models

    spec = models.resolve(f"run:{run_id}")
    out_dir = Path(out_dir)
    base = models.base_path(spec)
    tok = models.load_tokenizer(spec)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, use_safetensors=True)
    if spec.adapter is not None:
        model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return out_dir
