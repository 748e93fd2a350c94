"""Curve diagnosis on synthetic curves, and the memory estimate's arithmetic (no model needed)."""

from __future__ import annotations

import math

import pytest

from tools.estimate import GB, estimate_memory, lora_params, shape_for_params
from tools.train.diagnose import analyse

CFG = {"method": "lora", "learning_rate": 2e-4, "num_train_epochs": 3}


def _series(values: list[float], every: int = 1) -> list[tuple[int, float]]:
    return [((i + 1) * every, v) for i, v in enumerate(values)]


def test_healthy_curve() -> None:
    train = _series([3.0 * math.exp(-i / 8) + 0.5 for i in range(30)])
    val = _series([2.0, 1.2, 0.9, 0.85, 0.84, 0.84], every=5)
    d = analyse(train, val, config=CFG)
    assert d.verdict == "healthy" and "diag.healthy" in d.rule_ids and d.next_config == {}


def test_overfitting_proposes_fewer_epochs_and_more_decay() -> None:
    train = _series([3.0 * math.exp(-i / 5) for i in range(30)])
    val = _series([2.0, 1.2, 1.0, 1.1, 1.3, 1.5], every=5)
    d = analyse(train, val, config=CFG)
    assert d.verdict == "overfitting"
    assert d.next_config["num_train_epochs"] == 2  # best at step 15 of 30, 3 epochs -> ceil(1.5)
    assert d.next_config["weight_decay"] == 0.1
    assert {"diag.overfitting", "diag.sign.overfitting", "diag.overfitting.fix.fewer_epochs"} <= set(d.rule_ids)


def test_oscillating_means_learning_rate_too_high() -> None:
    train = _series([2.0 + (0.8 if i % 2 else -0.6) for i in range(30)])
    d = analyse(train, [], config={"method": "full", "learning_rate": 1e-4})
    assert d.verdict == "lr_too_high"
    assert d.next_config["learning_rate"] == pytest.approx(3e-5)
    assert "hp.lr.too_high" in d.rule_ids and "diag.catastrophic_forgetting.fix.lower_lr" in d.rule_ids


def test_flat_means_learning_rate_too_low() -> None:
    train = _series([2.0 - 0.001 * i for i in range(30)])
    d = analyse(train, [], config={"method": "lora", "learning_rate": 1e-5})
    assert d.verdict == "lr_too_low"
    assert d.next_config["learning_rate"] == pytest.approx(3e-5)
    assert "hp.lr.too_low" in d.rule_ids and "diag.sign.not_decreasing" in d.rule_ids


def test_still_falling_means_not_converged() -> None:
    train = _series([3.0 - 0.05 * i for i in range(30)])
    val = _series([2.5, 2.3, 2.1, 1.9, 1.7], every=6)
    d = analyse(train, val, config=CFG)
    assert d.verdict == "not_converged" and d.next_config["num_train_epochs"] > 3
    assert "diag.epochs.too_few" in d.rule_ids


def test_nan_means_diverged() -> None:
    d = analyse(_series([2.0, 1.9, float("nan")]), [], config=CFG)
    assert d.verdict == "diverged" and d.next_config["learning_rate"] < 2e-4


def test_estimate_full_7b_matches_the_seed_breakdown() -> None:
    e = estimate_memory(params_b=7, method="full", seq_len=512, batch=8).to_dict()
    # seed: 28 GB weights, 28 gradients, 56 Adam states for 7B in fp32
    assert e["weights_gb"] == pytest.approx(28, rel=0.001)
    assert e["gradients_gb"] == pytest.approx(28, rel=0.001)
    assert e["optimizer_gb"] == pytest.approx(56, rel=0.001)
    assert e["seed_reference_gb"] == 120 and e["seed_reference_rule"] == "hp.memory.full"


def test_estimate_orders_methods_and_checkpointing_saves_memory() -> None:
    full, lora, qlora = (estimate_memory(params_b=7, method=m, seq_len=512, batch=1) for m in ("full", "lora", "qlora"))
    assert full.total_gb > lora.total_gb > qlora.total_gb
    assert qlora.weights_gb < lora.weights_gb / 2.5  # NF4 linears; embeddings stay 32-bit
    ckpt = estimate_memory(params_b=7, method="lora", seq_len=2048, batch=8, gradient_checkpointing=True)
    plain = estimate_memory(params_b=7, method="lora", seq_len=2048, batch=8)
    assert ckpt.activations_gb < plain.activations_gb / 5


def test_lora_params_match_the_seed_layer_example() -> None:
    # one 4096x4096 layer at rank 8: 32K + 32K = 64K adapter weights (hp.lora.param_example)
    s = shape_for_params(6.74)  # Llama-2-7B
    assert s.hidden == 4096 and s.layers == 32
    per_layer = lora_params(s, 8) / s.layers
    assert per_layer == 8 * (4096 * 2 * 4 + 2 * (4096 + 11008) + (11008 + 4096))


def test_estimate_weights_match_a_real_parameter_count(tiny_model_dir: object) -> None:
    from tools.models import load_model

    model, _ = load_model(str(tiny_model_dir))
    n = sum(p.numel() for p in model.parameters())
    e = estimate_memory(model=str(tiny_model_dir), method="full", seq_len=16, batch=1)
    assert e.weights_gb * GB == pytest.approx(4 * n, rel=0.01)


def test_estimate_is_a_typed_result_and_fits_records_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from tools import estimate as E

    e = estimate_memory(params_b=7, method="qlora", seq_len=512, batch=1)
    assert isinstance(e, E.Estimate) and "device_gb" not in e.to_dict()  # the --json keys, as before
    assert set(e.to_dict()) >= {"total_gb", "allocated_gb", "weights_gb", "seed_reference_gb", "notes"}
    gpu = SimpleNamespace(kind="cuda", gpu_memory_gb=80)
    assert E.fits(e, gpu) and e.device_gb == pytest.approx(80 * 2**30 / GB, abs=0.01)
    assert e.to_dict()["device_gb"] == e.device_gb
    assert not E.fits(e, SimpleNamespace(kind="cuda", gpu_memory_gb=1))
