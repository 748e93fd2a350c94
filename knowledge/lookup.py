"""Pure look-ups over the knowledge tables, for the advisor.

Each function reads only from the loaded data (``k`` defaults to the packaged knowledge) and returns
either the matching row (which has ``.id`` and ``.rule_ids``) or a small result carrying ``rule_ids``,
so every recommendation can cite the rules it used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from knowledge.loader import Knowledge, load
from knowledge.schema import (
    Band,
    ConsistencyRule,
    EpochBand,
    Goal,
    LrBySize,
    Method,
    PerfBand,
    SizeBand,
    SplitRule,
    TaskRule,
    WeightDecay,
)

B = TypeVar("B", bound=Band)


def _k(k: Knowledge | None) -> Knowledge:
    return k if k is not None else load()


def _band(bands: Sequence[B], x: float, what: str) -> B:
    for band in bands:
        if band.contains(x):
            return band
    raise ValueError(f"{what} {x} is outside every band ({bands[0].min}..{bands[-1].max})")


def _non_negative(x: float, what: str) -> None:
    if x < 0 or math.isnan(x):
        raise ValueError(f"{what} must be a non-negative number, got {x}")


def size_band(n_examples: int, *, k: Knowledge | None = None) -> SizeBand:
    """The dataset-size band (``size.band.*``) for this many examples."""
    _non_negative(n_examples, "n_examples")
    return _band(_k(k).rules.dataset_size_bands, n_examples, "n_examples")


def quality_band(q: float, *, k: Knowledge | None = None) -> PerfBand:
    """The band (``perf.quality.*``) for a required quality given as a fraction in 0..1."""
    if not 0 <= q <= 1:
        raise ValueError(f"quality must be a fraction between 0 and 1, got {q} (write 95% as 0.95)")
    return _band(_k(k).rules.quality_bands, q, "quality")


def latency_band(ms: float, *, k: Knowledge | None = None) -> PerfBand:
    """The band (``perf.latency.*``) for a latency budget in milliseconds."""
    _non_negative(ms, "latency budget (ms)")
    return _band(_k(k).rules.latency_bands, ms, "latency budget (ms)")


def consistency_rule(level: str, *, k: Knowledge | None = None) -> ConsistencyRule:
    """The rule (``perf.consistency.*``) for a consistency level: variable, high or perfect."""
    rows = _k(k).rules.consistency_levels
    for row in rows:
        if row.level == level:
            return row
    raise ValueError(f"unknown consistency level '{level}'; known: {', '.join(r.level for r in rows)}")


def task_rule(task: str, *, k: Knowledge | None = None) -> TaskRule:
    """The task-complexity rule (``task.*``) for a task id."""
    rows = _k(k).rules.task_complexity
    for row in rows:
        if row.task == task:
            return row
    raise ValueError(f"unknown task '{task}'; known: {', '.join(r.task for r in rows)}")


def goal_rule(goal: str, *, k: Knowledge | None = None) -> Goal:
    """The goal row (``goal.*``) for a goal id; ``.rule`` names the fine-tune-when or don't rule."""
    rows = _k(k).rules.goals
    for row in rows:
        if row.goal == goal:
            return row
    raise ValueError(f"unknown goal '{goal}'; known: {', '.join(r.goal for r in rows)}")


def epochs_for(n_examples: int, *, k: Knowledge | None = None) -> EpochBand:
    """The epoch band (``hp.epochs.*``): ``min_epochs``, ``max_epochs`` and ``recommended``."""
    _non_negative(n_examples, "n_examples")
    return _band(_k(k).hyperparameters.epochs_by_dataset_size, n_examples, "n_examples")


def weight_decay_for(n_examples: int, *, k: Knowledge | None = None) -> WeightDecay:
    """Weight decay (``hp.wd.*``): strong for small data, light for large, standard between."""
    _non_negative(n_examples, "n_examples")
    for row in _k(k).hyperparameters.weight_decay:
        if row.applies_to.contains(n_examples):
            return row
    raise ValueError(f"no weight-decay row covers {n_examples} examples")


@dataclass(frozen=True)
class LrAdvice:
    """A learning-rate range for one method and model size, with the seed's full fine-tuning range."""

    method: Method
    size: str
    lr_min: float
    lr_max: float
    recommended: float
    seed_lr_min: float
    seed_lr_max: float
    rule_ids: tuple[str, ...]


def size_row(model_params_b: float, *, k: Knowledge | None = None) -> LrBySize:
    """The learning-rate table row (``hp.lr.<size>``) that a model size maps onto."""
    if not model_params_b > 0:
        raise ValueError(f"model size must be positive (billions of parameters), got {model_params_b}")
    for row in _k(k).hyperparameters.learning_rate_by_model_size:
        if row.applies_to.contains(model_params_b):
            return row
    raise ValueError(f"no learning-rate row covers a {model_params_b}B model")


METHODS: dict[str, Method] = {"full": "full", "lora": "lora", "qlora": "qlora"}


def as_method(name: str) -> Method:
    """A method name (any case) as the tables' ``Method``; ``ValueError`` for one they do not know."""
    try:
        return METHODS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown method '{name}'; known: {', '.join(METHODS)}") from None


def lr_for(model_params_b: float, method: Method, *, k: Knowledge | None = None) -> LrAdvice:
    """Learning-rate range and starting value for a model size (billions) and method (full/lora/qlora)."""
    kn = _k(k)
    size = size_row(model_params_b, k=kn)
    for row in kn.hyperparameters.learning_rate_by_method:
        if row.method == method and row.size == size.size:
            ids: tuple[str, ...] = (size.id, row.id)
            if method != "full":  # adapter rates depart from the seed's table; cite why
                ids += (kn.hyperparameters.lr_method_correction.id,)
            return LrAdvice(
                method,
                size.size,
                row.lr_min,
                row.lr_max,
                row.recommended,
                size.finetune_lr_min,
                size.finetune_lr_max,
                ids,
            )
    raise ValueError(f"unknown method '{method}'; known: full, lora, qlora")


@dataclass(frozen=True)
class BatchAdvice:
    """Per-device batch for a 7B model on this GPU, and the accumulation that reaches the target."""

    min_batch: int
    max_batch: int
    per_device: int
    gradient_accumulation: int
    effective: int
    below_table: bool
    rule_ids: tuple[str, ...]


def batch_for(gpu_memory_gb: float, *, k: Knowledge | None = None) -> BatchAdvice:
    """Batch size from the 7B table: the largest row not above the GPU's memory, starting at its low end.

    Below the smallest row (16 GB) the 16 GB row applies with batch 1 and ``below_table`` set.
    """
    _non_negative(gpu_memory_gb, "gpu_memory_gb")
    hp = _k(k).hyperparameters
    rows = hp.batch_by_gpu_memory.rows
    fitting = [r for r in rows if r.gpu_memory_gb <= gpu_memory_gb]
    row = fitting[-1] if fitting else rows[0]
    # The low end of each range leaves headroom for longer sequences; accumulation restores the effective batch.
    per_device = row.min_batch if fitting else 1
    accumulation = math.ceil(hp.effective_batch.target / per_device)
    return BatchAdvice(
        row.min_batch,
        row.max_batch,
        per_device,
        accumulation,
        per_device * accumulation,
        not fitting,
        (row.id, hp.effective_batch.id),
    )


@dataclass(frozen=True)
class MethodChoice:
    """The training method the seed's selection chain picks."""

    method: Method
    rule_ids: tuple[str, ...]


def method_for(
    gpu_memory_gb: float, gpus: int = 1, n_examples: int = 0, *, k: Knowledge | None = None
) -> MethodChoice:
    """QLoRA under 24 GB, LoRA under 80 GB, full FT with 100k+ examples on 2+ GPUs, else LoRA."""
    _non_negative(gpu_memory_gb, "gpu_memory_gb")
    for row in _k(k).rules.method_selection:
        if row.max_gpu_memory_gb is not None and not gpu_memory_gb < row.max_gpu_memory_gb:
            continue
        if row.min_examples is not None and n_examples < row.min_examples:
            continue
        if row.min_gpus is not None and gpus < row.min_gpus:
            continue
        return MethodChoice(row.method, (row.id,))
    raise ValueError("method_selection has no catch-all row")


@dataclass(frozen=True)
class SplitPlan:
    """Split fractions and row counts, after the 100-row minimums for validation and test."""

    train: float
    val: float
    test: float
    n_train: int
    n_val: int
    n_test: int
    seed: int
    stratify_by: str
    feasible: bool
    rule_ids: tuple[str, ...]


def split_ratios(n_rows: int, *, k: Knowledge | None = None) -> SplitPlan:
    """Train/val/test plan for ``n_rows``; ``feasible`` is False when the minimums leave no training rows."""
    _non_negative(n_rows, "n_rows")
    data = _k(k).data
    rule: SplitRule = _band(data.split_rules, n_rows, "n_rows")
    ids = [rule.id, data.split_settings.id]
    counts = {}
    for minimum in data.split_minimums:
        share = round(n_rows * getattr(rule, minimum.split))
        counts[minimum.split] = max(share, minimum.min_rows)
        if share < minimum.min_rows:
            ids.append(minimum.id)
    n_train = n_rows - counts["val"] - counts["test"]
    return SplitPlan(
        rule.train,
        rule.val,
        rule.test,
        max(n_train, 0),
        counts["val"],
        counts["test"],
        data.split_settings.seed,
        data.split_settings.stratify_by,
        n_train > 0,
        tuple(ids),
    )


@dataclass(frozen=True)
class RoiResult:
    """Prompt vs fine-tuning cost, their ratio, and the quality gain that would justify it."""

    prompt_cost: float
    fine_tune_cost: float
    ratio: float
    min_quality_improvement: float
    rule_ids: tuple[str, ...]


def roi(
    prompt_dev_hours: float,
    hourly_rate: float,
    data_prep_hours: float,
    training_cost: float,
    *,
    k: Knowledge | None = None,
) -> RoiResult:
    """The seed's ROI formula; ``ratio`` is infinite when prompting costs nothing."""
    for value, name in (
        (prompt_dev_hours, "prompt_dev_hours"),
        (hourly_rate, "hourly_rate"),
        (data_prep_hours, "data_prep_hours"),
        (training_cost, "training_cost"),
    ):
        _non_negative(value, name)
    r = _k(k).rules.roi
    prompt_cost = prompt_dev_hours * hourly_rate
    fine_tune_cost = data_prep_hours * hourly_rate + training_cost
    ratio = fine_tune_cost / prompt_cost if prompt_cost > 0 else math.inf
    return RoiResult(
        prompt_cost, fine_tune_cost, ratio, r.worth_it.min_quality_improvement, (r.id, r.worth_it.id)
    )
