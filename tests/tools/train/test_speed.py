"""The training speed-ups keep the maths: the fast dropout is a dropout (rate, scaling, gradient, seeding),
and shared-prefix encoding gives the plain forward's loss and gradients."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.train.data import IGNORE
from tools.types import Example


def test_fast_dropout_rate_scaling_gradient_and_seed() -> None:
    import torch

    from tools.train.speed import FastDropout

    drop = FastDropout(0.05).train()
    x = torch.ones(1000, 1000, requires_grad=True)
    torch.manual_seed(3)
    y = drop(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.95, abs=0.002)  # 1e6 draws: sd 0.0002
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.95))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x*mask)/dx = mask
    torch.manual_seed(3)
    assert torch.equal(drop(x.detach()), y.detach())  # torch's seed makes it reproducible
    assert not torch.equal(drop(x.detach()), y.detach())
    # rows and columns are independent: no stripes from the 16-bit slicing of 64-bit words
    col = kept.float().mean(0)
    assert col.std().item() < 0.02 and kept[:, ::4].float().mean().item() == pytest.approx(0.95, abs=0.004)
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError):
        FastDropout(1.0)


def test_fast_dropout_replaces_lora_dropout_only(tiny_model_dir: Path) -> None:
    from tools.train.config import TrainConfig
    from tools.train.model import build_model
    from tools.train.speed import FastDropout

    model = build_model(tiny_model_dir, TrainConfig(train="x", lora_dropout=0.1), bf16=False, device="cpu")
    fast = [m for m in model.modules() if isinstance(m, FastDropout)]
    lora_layers = [m for m in model.modules() if hasattr(m, "lora_A")]
    assert len(fast) == len(lora_layers) == 2 * 7 and all(d.p == 0.1 for d in fast)
    gpu_style = build_model(tiny_model_dir, TrainConfig(train="x", lora_dropout=0.1), bf16=False, device="cuda-x")
    assert not any(isinstance(m, FastDropout) for m in gpu_style.modules())


def test_prefix_length() -> None:
    import torch

    from tools.train.speed import prefix_length

    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 9, 9, 0], [1, 2, 3, 4, 5, 6, 7, 0, 0]])
    labels = torch.full_like(ids, IGNORE)
    labels[:, 8] = 5
    assert prefix_length(ids, labels) == 6  # the shared run
    labels[1, 5] = 6  # a target at position 5 is predicted from position 4: the prefix stops before it
    assert prefix_length(ids, labels) == 4
    labels[1, 4] = 5
    assert prefix_length(ids, labels) == 0  # 3 tokens: not worth a second forward call
    assert prefix_length(ids[:1], labels[:1]) == 0  # one row shares with nobody


def _batch(tok: Any, n: int) -> dict[str, Any]:
    from tools.train.data import CompletionCollator, encode_all

    exs = [Example.from_pair(f"my card number {i} was {'lost ' * (i % 3)}stolen", f"label_{i % 4}",
                             system="Classify the customer's message. Answer with the label only.")
           for i in range(n)]
    return CompletionCollator(tok.pad_token_id)(encode_all(tok, exs, 256))


def test_shared_prefix_gives_the_plain_loss_and_gradients(tiny_model_dir: Path) -> None:
    import torch

    from tools.models import load_tokenizer
    from tools.train.config import TrainConfig
    from tools.train.hf import completion_loss_sums
    from tools.train.model import build_model
    from tools.train.speed import prefix_length

    tok = load_tokenizer(str(tiny_model_dir))
    batch = _batch(tok, 6)
    assert prefix_length(batch["input_ids"], batch["labels"]) >= 10  # the chat header and the system prompt
    torch.manual_seed(0)
    model = build_model(tiny_model_dir, TrainConfig(train="x", lora_dropout=0.0), bf16=False, device="cpu")
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)  # B starts at zero; make A's gradient non-zero too
    params = [p for p in model.parameters() if p.requires_grad]
    results = []
    for shared in (False, True):
        loss, correct, count = completion_loss_sums(model, batch, autocast_dtype=None, shared_prefix=shared)
        loss.backward()
        results.append((float(loss), int(correct), int(count), [p.grad.clone() for p in params]))
        model.zero_grad()
    (l0, c0, n0, g0), (l1, c1, n1, g1) = results
    assert (c0, n0) == (c1, n1) and l1 == pytest.approx(l0, rel=1e-5)
    assert all(float(a.norm()) > 0 for a in g0)
    assert max(float((a - b).norm() / a.norm()) for a, b in zip(g0, g1, strict=True)) < 1e-4


def _write(path: Path, n: int, system: bool) -> Path:
    rows = []
    for i in range(n):
        msgs = [{"role": "system", "content": "Answer with the sum only."}] if system else []
        msgs += [{"role": "user", "content": f"What is {i} plus {i}?"}, {"role": "assistant", "content": str(2 * i)}]
        rows.append(json.dumps({"messages": msgs}))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("packing", [False, True])
def test_training_reports_the_shared_prefix_check(tiny_model_dir: Path, tmp_path: Path, packing: bool) -> None:
    from tools.train import TrainConfig, train

    cfg = TrainConfig(train=str(_write(tmp_path / "t.jsonl", 24, True)), val=str(_write(tmp_path / "v.jsonl", 6, True)),
                      model=str(tiny_model_dir), max_steps=2, eval_steps=2, per_device_train_batch_size=4,
                      packing=packing)
    res = train(cfg)
    assert res.status == "completed"
    if packing:
        assert res.shared_prefix == {"enabled": False}  # packed rows have no common start
    else:
        assert res.shared_prefix["enabled"] is True, res.shared_prefix
        assert "relative loss difference" in res.shared_prefix["check"]
    off = train(TrainConfig(**(cfg.to_dict() | {"shared_prefix": False, "packing": False, "run_id": None})))
    assert off.shared_prefix == {"enabled": False}


def test_checkpointing_turns_the_shared_prefix_off(tiny_model_dir: Path, tmp_path: Path) -> None:
    """QLoRA switches activation checkpointing on inside the model (not in the Trainer's arguments); with it,
    the cache stays empty while training, so the run must use the plain forward, and the low-level call
    must refuse rather than compute a loss without the prefix."""
    import torch

    from tools.models import load_tokenizer
    from tools.train import TrainConfig, train
    from tools.train.hf import completion_loss_sums
    from tools.train.model import build_model

    cfg = TrainConfig(train=str(_write(tmp_path / "t.jsonl", 16, True)), val=str(_write(tmp_path / "v.jsonl", 4, True)),
                      model=str(tiny_model_dir), method="qlora", gradient_checkpointing=True, max_steps=1,
                      eval_steps=1, per_device_train_batch_size=4)
    res = train(cfg)
    assert res.status == "completed" and res.shared_prefix == {"enabled": False}

    model = build_model(tiny_model_dir, TrainConfig(train="x", lora_dropout=0.0), bf16=False, device="cpu")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    batch = _batch(load_tokenizer(str(tiny_model_dir)), 4)
    with pytest.raises(RuntimeError, match="needs the cache"):
        completion_loss_sums(model, batch, autocast_dtype=None, shared_prefix=True)
    assert torch.isfinite(completion_loss_sums(model, batch, autocast_dtype=None)[0])
