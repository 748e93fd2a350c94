"""The torch/transformers side of training: a Trainer whose loss only looks at completion tokens, and the
callback that streams progress, writes the run log and stops on NaN, Ctrl-C or a cancel request.

It also keeps resume exact: the training order of each epoch is drawn from (seed, epoch) alone
(``EpochSampler``), so a run resumed in epoch 2 sees the batches an uninterrupted run would, and the
callback stamps a heartbeat so a killed run reads as crashed.

Imported only from inside ``tools.train.core.train`` (never at package import), so the CLI starts fast.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback

from tools.train import speed
from tools.train.data import IGNORE
from tools.train.result import StepMetrics
from tools.train.signals import agreed
from tools.types import ProgressCallback, ProgressEvent, emit


def _causal_parts(model: Any) -> tuple[Any, Any] | None:
    """(decoder, lm_head) of a plain or PEFT-wrapped causal LM; None when the model is wrapped for
    distributed training (DDP/FSDP), where the forward must go through the wrapper."""
    m = model
    if hasattr(m, "get_base_model"):
        m = m.get_base_model()
    prefix = getattr(m, "base_model_prefix", None)
    decoder = getattr(m, prefix, None) if prefix else None
    head = m.get_output_embeddings() if hasattr(m, "get_output_embeddings") else None
    if decoder is None or head is None:
        return None
    return decoder, head


def completion_loss_sums(model: Any, inputs: dict[str, Any], *, autocast_dtype: torch.dtype | None,
                         fast: bool = True, shared_prefix: bool = False,
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy, correct-token count and token count over the labelled positions only.

    The vocabulary projection is the biggest single matmul of a small LM; computing it only at the few
    labelled positions (the assistant's answer), instead of at every position, is most of the saving.
    With ``shared_prefix`` the tokens every row starts with are encoded once (``tools.train.speed``).
    """
    parts = _causal_parts(model) if fast else None
    labels = inputs["labels"]
    device_type = labels.device.type
    ctx = (torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype is not None
           else torch.autocast(device_type, enabled=False))
    kwargs = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}
    with ctx:
        if parts is None:
            logits_all = model(**kwargs).logits[:, :-1]
            shift = labels[:, 1:]
            sel = shift != IGNORE
            logits = logits_all[sel].float()
        else:
            decoder, head = parts
            p = (speed.prefix_length(inputs["input_ids"], labels)
                 if shared_prefix and "position_ids" not in inputs else 0)
            if p:
                hidden = speed.hidden_with_shared_prefix(decoder, model.config, inputs["input_ids"],
                                                         inputs.get("attention_mask"), p)
            else:
                hidden = decoder(**kwargs, use_cache=False).last_hidden_state
            shift = labels[:, p + 1:]
            sel = shift != IGNORE
            logits = head(hidden[:, :-1][sel]).float()
    targets = shift[sel]
    loss_sum = F.cross_entropy(logits, targets, reduction="sum")
    correct = (logits.argmax(-1) == targets).sum()
    return loss_sum, correct, sel.sum()


class EpochSampler(torch.utils.data.Sampler[int]):
    """The training order for one epoch, a function of (seed, epoch) only.

    transformers' samplers draw from the global torch generator, whose state at the start of an epoch
    differs between an uninterrupted run and one resumed mid-run (the RNG state is restored only after
    the resumed epoch's order was drawn), so a resume in epoch 2 trained on other batches. Here the
    Trainer's ``set_epoch`` picks the generator's seed. With ``lengths`` the order groups similar lengths
    (transformers' length-grouped megabatches) to waste less padding; without, it is a plain shuffle.
    """

    def __init__(self, n: int, *, seed: int, lengths: list[int] | None = None, group_size: int = 1) -> None:
        self.n, self.seed, self.lengths, self.group_size = n, seed, lengths, group_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.lengths is None:
            return iter(torch.randperm(self.n, generator=g).tolist())
        from transformers.trainer_pt_utils import get_length_grouped_indices

        return iter(get_length_grouped_indices(self.lengths, self.group_size, generator=g))


class CompletionTrainer(Trainer):
    """Trainer with completion-only loss computed at labelled positions, and token accuracy in evaluation."""

    def __init__(self, *args: Any, autocast_dtype: torch.dtype | None = None, shared_prefix: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.autocast_dtype = autocast_dtype
        self.model_accepts_loss_kwargs = True  # count label tokens across accumulation steps
        self.loss_is_scaled_for_ga = True
        self._eval_sums = [0.0, 0, 0]
        self.train_tokens = 0  # non-padding tokens trained on (evaluation batches not counted)
        # Calling the decoder directly skips the wrapper that DDP/FSDP/DeepSpeed put around the model.
        self.fast_loss = self.accelerator.num_processes == 1
        # None = not yet checked against the plain forward on this model (done on the first batch that has
        # a shared prefix; packed batches never do).
        self.shared_prefix: bool | None = None if (self.fast_loss and shared_prefix) else False
        self.shared_prefix_check: dict[str, Any] = {}

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        group = self.args.train_sampling_strategy == "group_by_length"
        lengths = [len(dataset[i]["input_ids"]) for i in range(len(dataset))] if group else None
        return EpochSampler(len(dataset), seed=self.args.data_seed if self.args.data_seed is not None
                            else self.args.seed, lengths=lengths,
                            group_size=self.args.train_batch_size * self.args.gradient_accumulation_steps
                            * self.args.world_size)  # group over the global batch: same order for any world size

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        """Under DDP every rank evaluates the whole validation set (it is small): the Trainer's sharding pads
        the last batch with repeated rows, which would count twice in our token-weighted loss."""
        if self.args.world_size == 1:
            return super().get_eval_dataloader(eval_dataset)
        dataset: Any = eval_dataset if eval_dataset is not None else self.eval_dataset
        return torch.utils.data.DataLoader(dataset, batch_size=self.args.eval_batch_size, shuffle=False,
                                           collate_fn=self.data_collator)

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        mask = inputs.get("attention_mask")
        self.train_tokens += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
        return super().training_step(model, inputs, num_items_in_batch)

    def _check_shared_prefix(self, model: Any, inputs: dict[str, Any]) -> bool:
        """Once per run: does the shared-prefix forward give this model's plain loss on a real batch?
        (Models whose cache or masks work differently fall back to the plain forward, and say so.)"""
        if self.shared_prefix is None:
            if "position_ids" in inputs or not speed.prefix_length(inputs["input_ids"], inputs["labels"]):
                return False  # nothing shared in this batch: check on a later one
            was = model.training
            model.eval()
            try:
                with torch.no_grad():
                    plain = completion_loss_sums(model, inputs, autocast_dtype=self.autocast_dtype)[0]
                    shared = completion_loss_sums(model, inputs, autocast_dtype=self.autocast_dtype,
                                                  shared_prefix=True)[0]
                rel = abs(float(shared) - float(plain)) / max(abs(float(plain)), 1e-6)
                ok, why = rel < 2e-2, f"relative loss difference {rel:.1e} against the plain forward"
            except Exception as e:  # noqa: BLE001 - an unsupported cache: use the plain forward
                ok, why = False, f"{type(e).__name__}: {e}"
            finally:
                model.train(was)
            self.shared_prefix = ok
            self.shared_prefix_check = {"enabled": ok, "check": why}
        return bool(self.shared_prefix)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        loss_sum, _, count = completion_loss_sums(model, inputs, autocast_dtype=self.autocast_dtype,
                                                  fast=self.fast_loss,
                                                  shared_prefix=self._check_shared_prefix(model, inputs))
        if num_items_in_batch is not None:
            denom = num_items_in_batch.to(loss_sum.device) if torch.is_tensor(num_items_in_batch) \
                else float(num_items_in_batch)
            loss = loss_sum / denom
            if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                # ``denom`` counts every process's tokens and DDP averages the gradients over the processes:
                # scale back up so the gradient is the one of the whole batch on one process
                loss = loss * self.accelerator.num_processes
        else:
            loss = loss_sum / count.clamp(min=1) / self.current_gradient_accumulation_steps
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> tuple[Any, None, None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss_sum, correct, count = completion_loss_sums(model, inputs, autocast_dtype=self.autocast_dtype,
                                                           fast=self.fast_loss,
                                                           shared_prefix=self._check_shared_prefix(model, inputs))
        self._eval_sums[0] += float(loss_sum)
        self._eval_sums[1] += int(correct)
        self._eval_sums[2] += int(count)
        return (loss_sum / count.clamp(min=1)).detach(), None, None

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
        self._eval_sums = [0.0, 0, 0]
        out = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        total_loss, correct, n = self._eval_sums
        if n and out.metrics is not None:
            out.metrics[f"{prefix}_loss"] = total_loss / n  # token-weighted, not batch-weighted
            out.metrics[f"{prefix}_token_accuracy"] = correct / n
        return out


class RunCallback(TrainerCallback):
    """Streams one ProgressEvent per logged step, writes metric rows, and stops on NaN or a stop request."""

    def __init__(self, run_id: str, log: Any, tokens: Callable[[], int], *, on_progress: ProgressCallback | None,
                 should_stop: Callable[[], bool] | None, interrupted: Callable[[], bool],
                 flush_every_s: float = 5.0, heartbeat_every_s: float = 15.0, seconds_before: float = 0.0,
                 device: str = "cpu") -> None:
        self.run_id = run_id
        self.log = log
        self.heartbeat_every_s = heartbeat_every_s
        self.seconds_before = seconds_before  # training time of earlier segments (before a resume)
        self.device = device
        self._last_beat = time.perf_counter()
        self.segment_t0 = time.perf_counter()
        self.tokens = tokens
        self.flush_every_s = flush_every_s
        self._pending: list[tuple[int, str, dict[str, float]]] = []
        self._last_flush = time.perf_counter()
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.interrupted = interrupted
        self.stop_reason: str | None = None
        self.nan: dict[str, Any] | None = None
        self.t0 = time.perf_counter()
        self.t_last = self.t0
        self.tok_last = 0
        self.first_step: int | None = None
        self.best_val: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.t0 = self.t_last = time.perf_counter()
        self.tok_last = self.tokens()
        self.first_step = state.global_step
        emit(self.on_progress, ProgressEvent("train", state.global_step, state.max_steps,
                                             message=f"training {state.max_steps} steps"))

    def train_seconds(self) -> float:
        """Training time over every segment of the run so far."""
        return self.seconds_before + (time.perf_counter() - self.segment_t0)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        local = self.interrupted() or (self.should_stop is not None and _safe(self.should_stop))
        if agreed(local):  # every rank stops after the same step
            self.stop_reason = "interrupted"
            control.should_save = True
            control.should_training_stop = True
        if state.is_world_process_zero and time.perf_counter() - self._last_beat >= self.heartbeat_every_s:
            self.beat()

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.is_world_process_zero:  # a checkpoint is a natural beat: the time up to it is kept
            self.beat()

    def beat(self) -> None:
        """Stamp the run as alive, with the training time so far (so a kill -9 loses neither)."""
        self._last_beat = time.perf_counter()
        try:
            self.log.heartbeat(self.run_id, train_seconds=round(self.train_seconds(), 2))
        except Exception:  # noqa: BLE001 - a busy run log must not stop training; the next beat retries
            logging.getLogger("tunewise").warning("heartbeat for %s failed", self.run_id, exc_info=True)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        logs = logs or {}
        if "loss" not in logs:
            return
        now = time.perf_counter()
        toks = self.tokens()
        dt = max(now - self.t_last, 1e-9)
        tps = (toks - self.tok_last) / dt
        self.t_last, self.tok_last = now, toks
        done = state.global_step - (self.first_step or 0)
        eta = (now - self.t0) / max(done, 1) * max(state.max_steps - state.global_step, 0)
        m = StepMetrics(loss=float(logs["loss"]), lr=float(logs.get("learning_rate", 0.0)),
                        grad_norm=float(logs.get("grad_norm", float("nan"))), tokens_per_s=tps, eta_s=eta,
                        epoch=float(logs.get("epoch", 0.0)), **memory_now(self.device)).to_dict()
        self._pending.append((state.global_step, "train",
                              {k: v for k, v in m.items() if k != "eta_s" and math.isfinite(v)}
                              | ({"loss": m["loss"]} if not math.isfinite(m["loss"]) else {})))
        if now - self._last_flush >= self.flush_every_s:
            self.flush()
        emit(self.on_progress, ProgressEvent("train", state.global_step, state.max_steps, m))
        if not (math.isfinite(m["loss"]) and (math.isfinite(m["grad_norm"]) or "grad_norm" not in logs)):
            self.nan = {"step": state.global_step, "loss": m["loss"], "grad_norm": m["grad_norm"],
                        "lr": m["lr"]}
            self.stop_reason = "nan"
            control.should_training_stop = True
            control.should_save = False

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                    **kw: Any) -> None:
        metrics = metrics or {}
        raw = {"loss": metrics.get("eval_loss"), "token_accuracy": metrics.get("eval_token_accuracy")}
        vals: dict[str, float] = {k: float(v) for k, v in raw.items() if v is not None}
        if not vals:
            return
        self._pending.append((state.global_step, "val", vals))
        self.flush()
        if "loss" in vals and math.isfinite(vals["loss"]):
            self.best_val = vals["loss"] if self.best_val is None else min(self.best_val, vals["loss"])
        emit(self.on_progress, ProgressEvent("eval", state.global_step, state.max_steps,
                                             {f"val_{k}": v for k, v in vals.items()}))


    def flush(self) -> None:
        """Write pending metric rows in one transaction (one run-log connection per flush, not per step)."""
        pending, self._pending = self._pending, []
        self._last_flush = time.perf_counter()
        for step, split, vals in pending:
            self.log.log_metrics(self.run_id, step, split, vals)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.flush()


def _safe(fn: Callable[[], bool]) -> bool:
    try:
        return bool(fn())
    except Exception:  # noqa: BLE001 - a broken cancel hook must not kill the run
        return False


def is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg
                                            or "failed to allocate" in msg)


def memory_now(device: str) -> dict[str, float]:
    """This process's memory now, in MB: resident set size, and what torch has allocated on the GPU; the
    ``memory_mb`` the progress view shows is the GPU's on CUDA, the RSS on a CPU."""
    rss = _rss_mb()
    out = {"rss_mb": round(rss, 1), "memory_mb": round(rss, 1)}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["cuda_allocated_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        out["memory_mb"] = out["cuda_allocated_mb"]
    return out


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
