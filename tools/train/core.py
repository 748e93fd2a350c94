"""``train(config)``: one training run from data files to a saved adapter, recorded in the run log.

The steps read top to bottom, each in the module named after it: load and split the data
(``loading``), fill defaults from the knowledge tables (``config``), check the memory estimate against
the device (``tools.estimate``), encode with completion-only labels (``data``), build the model for the
method (``model``), run transformers' Trainer with our loss and callback (``arguments``, ``hf``), then
save the adapter (``export``) and record the outcome.

Faults are outcomes, not crashes: Ctrl-C/SIGTERM checkpoint and mark the run ``interrupted``
(``signals``); a resume starts from the newest complete checkpoint (``checkpoints``); NaN loss and
out-of-memory mark it ``failed`` with a diagnosis and a fix (the fixes come from
``tools.train.diagnose``, which builds them from knowledge/diagnosis.yaml; with ``auto_retry`` each is tried).
A process killed outright leaves its pid, host and heartbeat in the run log, which then reads it as
``crashed``. Under several processes (``accelerate launch``) only rank 0 writes the run log and reports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from tools import paths
from tools.errors import InputError, OutOfMemoryError, TunewiseError
from tools.fileio import sha256_file, write_json
from tools.runlog import RunLog, new_id
from tools.train import checkpoints
from tools.train.config import TrainConfig, resolve_defaults
from tools.train.diagnose import nan_diagnosis, oom_fix_text, oom_fixes
from tools.train.result import Retry, TrainResult
from tools.types import ProgressCallback, ProgressEvent, emit


def rank() -> int:
    """This process's rank under ``accelerate launch``/torchrun (0 when training alone)."""
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


class _ReadOnlyLog:
    """The run log as ranks other than 0 see it: they read (a resumed run's config) but never write."""

    _WRITES = frozenset({"update_run", "log_metrics", "heartbeat", "execute", "executemany"})

    def __init__(self, log: RunLog) -> None:
        self._log = log

    def start_run(self, kind: str, *, run_id: str, **kw: Any) -> str:
        return run_id  # rank 0 records it under the same id (given to every process by the launcher)

    def __getattr__(self, name: str) -> Any:
        if name in self._WRITES:
            return lambda *a, **k: None
        return getattr(self._log, name)


def train(config: TrainConfig, *, on_progress: ProgressCallback | None = None,
          should_stop: Callable[[], bool] | None = None, resume: str | None = None) -> TrainResult:
    """Run one training job and return its ``TrainResult``. ``resume`` (a run id) continues that run from its
    newest complete checkpoint with the same data order, RNG state and schedule. User errors raise
    TunewiseError before the run starts; running out of memory raises ``OutOfMemoryError`` (with the run id
    and the fixes), unless ``auto_retry`` finds a setting that fits."""
    log: Any = RunLog() if rank() == 0 else _ReadOnlyLog(RunLog())
    if rank() != 0:
        on_progress = None
    attempts: list[Retry] = []
    cfg = config
    while True:
        try:
            return _train_once(cfg, log, on_progress=on_progress, should_stop=should_stop, resume=resume,
                               attempts=attempts)
        except _OOM as oom:
            fixes = oom_fixes(oom.config.to_dict())
            if not (oom.config.auto_retry and fixes):
                raise OutOfMemoryError(f"training ran out of memory ({oom.message})", where=f"run {oom.run_id}",
                                       fix=oom_fix_text(oom.config.to_dict()), run_id=oom.run_id,
                                       retries=[asdict(a) for a in attempts]) from None
            fix = fixes[0]
            attempts.append(Retry(oom.run_id, oom.message, fix.id, fix.params))
            emit(on_progress, ProgressEvent("retry", len(attempts), None, message=f"out of memory; retrying with "
                                            f"{fix.params} ({fix.id})"))
            cfg = replace(oom.config, run_id=None, **fix.params)
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


def _train_once(config: TrainConfig, log: Any, *, on_progress: ProgressCallback | None,
                should_stop: Callable[[], bool] | None, resume: str | None,
                attempts: list[Retry]) -> TrainResult:
    from tools import models
    from tools.device import detect
    from tools.estimate import Estimate, estimate_memory, fits
    from tools.train.data import encode_all
    from tools.train.loading import params_b, train_and_val
    from tools.train.threads import apply as apply_threads
    from tools.train.threads import choose_threads

    _quiet_transformers()
    processes = world_size()
    main = rank() == 0

    # -- the run to continue, or a new one
    resume_ckpt: str | None = None
    seconds_before = 0.0
    if resume:
        run = log.find_run(resume)
        config = replace(TrainConfig.from_dict(run["config"] or {}), run_id=run["run_id"])
        ck = checkpoints.newest_complete(paths.run_dir(run["run_id"]) / "checkpoints", remove_incomplete=main)
        if ck is None:
            raise InputError(f"run {run['run_id']} has no complete checkpoint to resume from",
                             where=str(paths.run_dir(run["run_id"]) / "checkpoints"),
                             fix="start a new run with the same settings")
        resume_ckpt = str(ck)
        seconds_before = float(run.get("train_seconds") or 0.0)
    elif processes > 1 and not config.run_id:
        raise InputError("a run over several processes needs its run id given to every process", where="--run-id",
                         fix="start it with `tunewise train --launcher accelerate ...`, which names the run")

    # -- data, defaults, threads
    if not config.train:
        raise InputError("no training file given", where="--train", fix="pass --train FILE")
    emit(on_progress, ProgressEvent("prepare", 0, 4, message="loading data"))
    train_ex, val_ex = train_and_val(config.train, config.val, limit=config.limit, seed=config.seed)
    spec = models.resolve(config.model)
    if spec.adapter is not None:
        raise InputError("training on top of a tuned run's adapter is not supported", where="--model",
                         fix="merge it first with `tunewise export RUN_ID --merged DIR` and train on DIR")
    base = models.base_path(spec, on_progress=on_progress)
    size_b = params_b(base)
    if not resume:
        config = resolve_defaults(config, n_train=len(train_ex), params_b=size_b)
    threads = choose_threads(config.threads, processes=int(os.environ.get("LOCAL_WORLD_SIZE", processes)))
    apply_threads(threads)
    dev = detect()
    device = "cuda" if dev.kind == "cuda" else "cpu"
    bf16 = dev.bf16 if config.bf16 is None else bool(config.bf16)

    tok = models.load_tokenizer(spec)
    emit(on_progress, ProgressEvent("prepare", 1, 4, message="tokenising"))
    train_rows = encode_all(tok, train_ex, config.max_seq_length)
    val_rows = encode_all(tok, val_ex, config.max_seq_length)

    # -- pre-flight: does the estimate fit the device? Turn on checkpointing if that is what it takes.
    lens = sorted(len(r["input_ids"]) for r in train_rows)
    seq_len = lens[min(len(lens) - 1, int(0.95 * len(lens)))] if not config.packing else config.max_seq_length

    def estimate(checkpointing: bool) -> Estimate:
        return estimate_memory(model=str(base), method=config.method, seq_len=seq_len,
                               batch=config.per_device_train_batch_size, lora_r=config.lora_r,
                               gradient_checkpointing=checkpointing, bf16=bf16)

    est = estimate(bool(config.gradient_checkpointing))
    if config.gradient_checkpointing is None:
        ok = fits(est, dev)
        if not ok:
            est = estimate(True)
        config = replace(config, gradient_checkpointing=not ok,
                         rule_ids=config.rule_ids + ([] if ok else ["diag.out_of_memory.fix.gradient_checkpointing"]))
    if not fits(est, dev):
        raise OutOfMemoryError(
            f"the memory estimate ({est.total_gb:.1f} GB) exceeds this device ({est.device_gb} GB)",
            where=f"--model {config.model} --method {config.method}", fix=oom_fix_text(config.to_dict()))

    # -- the run-log record: pid and host first, so a kill from here on reads as crashed
    if resume:
        run_id = config.run_id or ""
        log.update_run(run_id, status="running", error=None)
    else:
        data_hashes = {"train": sha256_file(config.train)}
        if config.val:
            data_hashes["val"] = sha256_file(config.val)
        run_id = log.start_run("train", config=config.to_dict(), method=config.method, model=config.model,
                               data_hashes=data_hashes, run_id=config.run_id or new_id("train-"))
        config = replace(config, run_id=run_id)
        log.update_run(run_id, config=config.to_dict())
    log.heartbeat(run_id, pid=os.getpid(), host=socket.gethostname(), train_seconds=seconds_before)
    rdir = paths.run_dir(run_id)
    if main:
        write_json(rdir / "config.json", config.to_dict())

    emit(on_progress, ProgressEvent("prepare", 2, 4, message=f"loading {spec.label} for {config.method}"))
    result = TrainResult(run_id=run_id, method=config.method, model=config.model, device=dev.to_dict(),
                         estimate=est.to_dict(), rule_ids=config.rule_ids, retries=attempts, threads=threads.to_dict(),
                         processes=processes, resumed_from=resume_ckpt)
    t0 = time.perf_counter()
    from tools.train.signals import StopFlag

    flag = StopFlag()
    cb: Any = None
    try:
        import torch

        from tools.train import hf
        from tools.train.arguments import make_trainer
        from tools.train.model import attention_for, build_model

        torch.manual_seed(config.seed)
        attn = attention_for(device, lens[-1], config.packing)
        result.attn_implementation = attn or "default"
        model = build_model(base, config, bf16=bf16, attn_implementation=attn, device=device)
        trainer, cb = make_trainer(model, tok, config, train_rows, val_rows, rdir, run_id, log, bf16=bf16,
                                   device=device, on_progress=on_progress, should_stop=should_stop,
                                   interrupted=lambda: flag.set, seconds_before=seconds_before,
                                   processes=processes, heartbeat_every_s=_heartbeat_every_s())
        cb.segment_t0 = t0
        emit(on_progress, ProgressEvent("prepare", 3, 4, message="training"))
        # models.load_model (inference) turns autograd off process-wide; training needs it on
        with flag.installed(), torch.enable_grad():
            trainer.train(resume_from_checkpoint=resume_ckpt)
    except Exception as e:
        from tools.train import hf

        if cb is not None:
            with contextlib.suppress(Exception):
                cb.flush()
        seconds = round(seconds_before + time.perf_counter() - t0, 2)
        if hf.is_oom(e):
            msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            fix = oom_fix_text(config.to_dict())
            log.update_run(run_id, status="failed", error=f"out of memory: {msg}\nWhat to do: {fix}",
                           train_seconds=seconds,
                           summary={"failure": "out_of_memory", "fix": fix, "rule_ids": ["diag.out_of_memory"]})
            if main:
                shutil.rmtree(rdir / "checkpoints", ignore_errors=True)
            raise _OOM(run_id, config, msg) from None
        err = e.render() if isinstance(e, TunewiseError) else f"{type(e).__name__}: {e}"
        log.update_run(run_id, status="failed", error=err, train_seconds=seconds)
        raise
    except KeyboardInterrupt:
        log.update_run(run_id, status="interrupted", error="stopped by a second Ctrl-C before a checkpoint",
                       train_seconds=round(seconds_before + time.perf_counter() - t0, 2))
        raise

    # A stop now comes after the last step: the flag takes it (the outputs are saved and the run recorded), and
    # a second one records the run as interrupted (its checkpoints are complete) instead of leaving it running.
    with flag.installed():
        try:
            segment = time.perf_counter() - t0
            state = trainer.state
            status = {"nan": "failed", "interrupted": "interrupted"}.get(cb.stop_reason or "", "completed")
            artifacts: dict[str, str] = {"config": str(rdir / "config.json"), "checkpoints": str(rdir / "checkpoints")}
            if main and (status != "failed" or state.best_model_checkpoint):
                from tools.train.export import save_outputs

                artifacts.update(save_outputs(trainer.model, tok, config, rdir, spec, base))
            best = state.best_metric if state.best_metric is not None else cb.best_val
            result.status, result.best_val_loss, result.steps = status, best, state.global_step
            result.train_seconds = round(seconds_before + segment, 2)
            result.peak_memory_mb = round(hf.peak_memory_mb(device), 1)
            result.artifacts = artifacts
            result.train_examples, result.val_examples = len(train_rows), len(val_rows)
            result.train_tokens = trainer.train_tokens
            result.tokens_per_s = round(trainer.train_tokens / max(segment, 1e-9), 1)
            result.best_checkpoint = state.best_model_checkpoint
            result.config = config.to_dict()
            result.shared_prefix = trainer.shared_prefix_check or {"enabled": False}
            error = None
            if cb.nan:
                result.diagnosis = nan_diagnosis(cb.nan, config.to_dict())
                error = (f"loss became {cb.nan['loss']} at step {cb.nan['step']}; "
                         f"what to do: {result.diagnosis.next_config}")
                result.error = {"what": f"non-finite loss at step {cb.nan['step']}", "fix": result.diagnosis.fix}
            log.update_run(run_id, status=status, best_val_loss=best, steps=state.global_step,
                           train_seconds=result.train_seconds, peak_memory_mb=result.peak_memory_mb,
                           artifacts=artifacts, error=error, summary=result.summary())
            if status == "completed" and main:
                with contextlib.suppress(TunewiseError):
                    from tools.train.diagnose import diagnose

                    result.diagnosis = diagnose(run_id)
            emit(on_progress, ProgressEvent("done", state.global_step, state.max_steps,
                                            {k: v for k, v in (("best_val_loss", best),) if v is not None},
                                            message=status))
            return result
        except KeyboardInterrupt:
            log.update_run(run_id, status="interrupted", error="stopped by a second Ctrl-C while saving the outputs",
                           train_seconds=round(seconds_before + time.perf_counter() - t0, 2))
            raise


def _heartbeat_every_s() -> float:
    from tools.train.diagnose import knowledge_row

    return float(knowledge_row("heartbeat")["every_s"])
