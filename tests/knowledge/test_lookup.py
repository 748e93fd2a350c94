"""Look-up helpers at the edges of every band, and the rule ids they cite."""

from __future__ import annotations

import math

import pytest

from knowledge import (
    batch_for,
    consistency_rule,
    epochs_for,
    goal_rule,
    latency_band,
    load,
    lr_for,
    method_for,
    quality_band,
    roi,
    rule,
    size_band,
    split_ratios,
    task_rule,
    weight_decay_for,
)


@pytest.mark.parametrize(
    ("n", "rid"),
    [
        (0, "size.band.lt_100"),
        (99, "size.band.lt_100"),
        (100, "size.band.100_1k"),
        (999, "size.band.100_1k"),
        (1000, "size.band.1k_10k"),
        (10000, "size.band.1k_10k"),
        (10001, "size.band.gt_10k"),
        (10**7, "size.band.gt_10k"),
    ],
)
def test_size_band_edges(n: int, rid: str) -> None:
    band = size_band(n)
    assert band.id == rid and band.rule_ids == (rid,)


@pytest.mark.parametrize(
    ("n", "rid", "recommended"),
    [
        (999, "hp.epochs.lt_1k", 5),
        (1000, "hp.epochs.1k_5k", 3),
        (4999, "hp.epochs.1k_5k", 3),
        (5000, "hp.epochs.5k_10k", 2),
        (10000, "hp.epochs.5k_10k", 2),
        (10001, "hp.epochs.gt_10k", 1),
    ],
)
def test_epochs_edges(n: int, rid: str, recommended: int) -> None:
    row = epochs_for(n)
    assert (row.id, row.recommended) == (rid, recommended)


@pytest.mark.parametrize(("n", "value"), [(0, 0.1), (999, 0.1), (1000, 0.01), (10000, 0.01), (10001, 0.001)])
def test_weight_decay_edges(n: int, value: float) -> None:
    assert weight_decay_for(n).value == value


@pytest.mark.parametrize(
    ("gb", "gpus", "n", "method", "rid"),
    [
        (0, 1, 0, "qlora", "method.select.qlora"),
        (23.9, 1, 0, "qlora", "method.select.qlora"),
        (24, 1, 0, "lora", "method.select.lora"),
        (79, 1, 0, "lora", "method.select.lora"),
        (79.9, 8, 10**6, "lora", "method.select.lora"),
        (80, 1, 0, "lora", "method.select.default"),
        (80, 1, 100000, "lora", "method.select.default"),
        (80, 2, 99999, "lora", "method.select.default"),
        (80, 2, 100000, "full", "method.select.full"),
        (141, 8, 10**6, "full", "method.select.full"),
    ],
)
def test_method_for_edges(gb: float, gpus: int, n: int, method: str, rid: str) -> None:
    choice = method_for(gb, gpus, n)
    assert (choice.method, choice.rule_ids) == (method, (rid,))


@pytest.mark.parametrize(
    ("gb", "rid", "per_device", "accumulation", "below"),
    [
        (8, "hp.batch.16gb", 1, 32, True),
        (15.9, "hp.batch.16gb", 1, 32, True),
        (16, "hp.batch.16gb", 1, 32, False),
        (23.9, "hp.batch.16gb", 1, 32, False),
        (24, "hp.batch.24gb", 2, 16, False),
        (40, "hp.batch.40gb", 4, 8, False),
        (79, "hp.batch.40gb", 4, 8, False),
        (80, "hp.batch.80gb", 8, 4, False),
        (141, "hp.batch.80gb", 8, 4, False),
    ],
)
def test_batch_for_edges(gb: float, rid: str, per_device: int, accumulation: int, below: bool) -> None:
    b = batch_for(gb)
    assert (b.rule_ids[0], b.per_device, b.gradient_accumulation, b.below_table) == (
        rid,
        per_device,
        accumulation,
        below,
    )
    assert 16 <= b.effective <= 64 and b.min_batch <= b.per_device or below


@pytest.mark.parametrize(
    ("params_b", "method", "size", "lo", "hi", "rec"),
    [
        (0.135, "full", "1b", 1e-5, 3e-5, 3e-5),
        (1, "full", "1b", 1e-5, 3e-5, 3e-5),
        (2.99, "lora", "1b", 1e-4, 3e-4, 2e-4),
        (3, "full", "7b", 1e-6, 1e-5, 1e-5),
        (7, "lora", "7b", 1e-4, 2e-4, 2e-4),
        (7, "qlora", "7b", 1e-4, 2e-4, 2e-4),
        (10, "full", "13b", 1e-6, 5e-6, 5e-6),
        (13, "lora", "13b", 1e-4, 2e-4, 2e-4),
        (30, "full", "70b", 1e-7, 1e-6, 1e-6),
        (70, "qlora", "70b", 5e-5, 1e-4, 1e-4),
        (405, "full", "70b", 1e-7, 1e-6, 1e-6),
    ],
)
def test_lr_for(params_b: float, method: str, size: str, lo: float, hi: float, rec: float) -> None:
    a = lr_for(params_b, method)  # type: ignore[arg-type]
    assert (a.size, a.lr_min, a.lr_max, a.recommended) == (size, lo, hi, rec)
    assert a.rule_ids[:2] == (f"hp.lr.{size}", f"hp.lr.{method}.{size}")
    assert ("hp.lr.correction.lora" in a.rule_ids) == (method != "full")
    seed = rule(f"hp.lr.{size}").raw
    assert (a.seed_lr_min, a.seed_lr_max) == (seed["finetune_lr_min"], seed["finetune_lr_max"])


def test_lr_for_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        lr_for(0, "lora")
    with pytest.raises(ValueError, match="unknown method"):
        lr_for(7, "prefix")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("q", "rid"),
    [
        (0.5, "perf.quality.below_90"),
        (0.8999, "perf.quality.below_90"),
        (0.90, "perf.quality.90_95"),
        (0.9499, "perf.quality.90_95"),
        (0.95, "perf.quality.95_98"),
        (0.98, "perf.quality.98_plus"),
        (1.0, "perf.quality.98_plus"),
    ],
)
def test_quality_band_edges(q: float, rid: str) -> None:
    assert quality_band(q).id == rid


def test_quality_band_rejects_percentages() -> None:
    with pytest.raises(ValueError, match="0.95"):
        quality_band(95)


@pytest.mark.parametrize(
    ("ms", "rid"),
    [
        (0, "perf.latency.lt_200"),
        (199.9, "perf.latency.lt_200"),
        (200, "perf.latency.200_1000"),
        (1000, "perf.latency.200_1000"),
        (1000.1, "perf.latency.gt_1000"),
        (5000, "perf.latency.gt_1000"),
    ],
)
def test_latency_band_edges(ms: float, rid: str) -> None:
    assert latency_band(ms).id == rid


def test_consistency_task_goal_rules() -> None:
    assert consistency_rule("high").id == "perf.consistency.high"
    assert consistency_rule("perfect").recommendation == "fine_tuning_with_validation"
    with pytest.raises(ValueError, match="variable, high, perfect"):
        consistency_rule("total")
    assert task_rule("classification").recommendation == "prompts"
    assert task_rule("domain_language").recommendation == "consider_fine_tuning"
    assert goal_rule("recent_information").rule == "dft.recent_information"
    with pytest.raises(ValueError, match="unknown task"):
        task_rule("poetry")


@pytest.mark.parametrize(
    ("n", "rid", "counts"),
    [
        (3000, "data.split.lt_5k", (2100, 450, 450)),
        (4999, "data.split.lt_5k", (3499, 750, 750)),
        (5000, "data.split.5k_10k", (3750, 625, 625)),
        (10000, "data.split.5k_10k", (7500, 1250, 1250)),
        (10001, "data.split.gt_10k", (8001, 1000, 1000)),
        (20000, "data.split.gt_10k", (16000, 2000, 2000)),
    ],
)
def test_split_ratios(n: int, rid: str, counts: tuple[int, int, int]) -> None:
    plan = split_ratios(n)
    assert plan.rule_ids[0] == rid
    assert (plan.n_train, plan.n_val, plan.n_test) == counts
    assert plan.n_train + plan.n_val + plan.n_test == n
    assert (plan.seed, plan.stratify_by, plan.feasible) == (42, "label", True)


def test_split_minimums_apply_to_small_sets() -> None:
    plan = split_ratios(500)  # 15% would be 75 rows, below the 100-row minimum
    assert (plan.n_train, plan.n_val, plan.n_test) == (300, 100, 100)
    assert {"data.split.min_val", "data.split.min_test"} <= set(plan.rule_ids)
    tiny = split_ratios(200)
    assert tiny.feasible is False and tiny.n_train == 0


def test_roi_seed_example() -> None:
    r = roi(4, 100, 40, 500)
    assert (r.prompt_cost, r.fine_tune_cost) == (400, 4500)
    assert r.ratio == pytest.approx(11.25) and round(r.ratio) == 11
    assert r.min_quality_improvement == 0.10
    assert r.rule_ids == ("roi.formula", "roi.worth_it")
    ex = load().rules.roi.example
    assert (r.prompt_cost, r.fine_tune_cost) == (ex.prompt_cost, ex.fine_tune_cost)


def test_roi_edge_cases() -> None:
    assert math.isinf(roi(0, 100, 40, 500).ratio)
    with pytest.raises(ValueError, match="training_cost"):
        roi(4, 100, 40, -1)


def test_negative_inputs_are_rejected() -> None:
    for call in (
        lambda: size_band(-1),
        lambda: epochs_for(-5),
        lambda: batch_for(-1),
        lambda: latency_band(-1),
    ):
        with pytest.raises(ValueError):
            call()
