"""Two exact-in-kind speed-ups for small-batch training on a CPU (measured in benchmarks/train_throughput.py).

* ``FastDropout``: LoRA's dropout draws one random number per input element. torch's CPU Bernoulli is as
  slow as the 576x576 matmul it guards (measured: 1.9 ms vs 1.6 ms on a SmolLM2 batch), so the masks cost a
  quarter of a LoRA step. Here the mask comes from 16-bit slices of 64-bit random words: a quarter of the
  draws, the same keep probability to 1/65536, the same scaling, seeded by torch's generator.
* Shared-prefix encoding: examples in a batch usually start with the same tokens (chat header and system
  prompt). ``prefix_length`` finds that run; ``completion_loss_sums`` then encodes it once, expands its
  keys and values over the batch (a view), and runs only the rest per example. Autograd sums the
  gradient over the expanded batch, so the loss and gradients are those of the plain forward
  (checked in tests to float precision; in bf16 they differ by rounding only).

torch is imported by the caller's module (tools.train.hf), which only training imports.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tools.train.data import IGNORE

MIN_PREFIX = 4  # shorter shared runs are not worth the second forward call


def bernoulli_keep_mask(shape: torch.Size | tuple[int, ...], p: float, *, dtype: torch.dtype,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """A dropout mask with entries 0 (probability ``p``) or ``1/(1-p)``, from 16 random bits per entry."""
    n = 1
    for s in shape:
        n *= int(s)
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=device)
    bits = words.view(torch.int16)[:n].view(shape)  # uniform over [-32768, 32767]
    threshold = round(p * 65536) - 32768
    return (bits >= threshold).to(dtype).mul_(1.0 / (1.0 - p))


class FastDropout(nn.Module):
    """Drop-in for ``nn.Dropout`` on the CPU (inverted dropout: scales kept entries by 1/(1-p))."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * bernoulli_keep_mask(x.shape, self.p, dtype=x.dtype, device=x.device)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_fast_dropout(model: Any) -> int:
    """Swap the ``nn.Dropout`` modules inside PEFT's ``lora_dropout`` dicts for ``FastDropout``; returns
    how many were swapped. Adapters carry no dropout weights, so saved files are unchanged."""
    swapped = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, nn.ModuleDict):
            continue
        for name, d in list(drops.items()):
            if isinstance(d, nn.Dropout) and d.p > 0:
                drops[name] = FastDropout(d.p)
                swapped += 1
    return swapped


def prefix_length(input_ids: torch.Tensor, labels: torch.Tensor) -> int:
    """Tokens every row of the batch starts with, stopping before the first position whose next token is
    a target (so every prediction that counts comes from the per-example part). 0 when not worth it."""
    if input_ids.shape[0] < 2:
        return 0
    same = (input_ids == input_ids[:1]).all(0).long()
    shared = int(same.cumprod(0).sum())
    labelled = labels != IGNORE
    if not bool(labelled.any()):
        return 0
    first_target = int(torch.where(labelled.any(1), labelled.float().argmax(1), labels.shape[1]).min())
    p = min(shared, first_target - 1, input_ids.shape[1] - 1)
    return p if p >= MIN_PREFIX else 0


def hidden_with_shared_prefix(decoder: Any, config: Any, input_ids: torch.Tensor,
                              attention_mask: torch.Tensor | None, p: int) -> torch.Tensor:
    """Last hidden states of positions ``p..`` for every row, the first ``p`` tokens encoded once."""
    from transformers import DynamicCache

    from tools.generation import cache_kwarg

    b = input_ids.shape[0]
    cache = DynamicCache(config=config)
    name = cache_kwarg(decoder)  # transformers 5 renamed past_key_values to cache
    decoder(input_ids=input_ids[:1, :p], use_cache=True, **{name: cache})
    if cache.get_seq_length() != p:  # e.g. activation checkpointing while training turns the cache off
        raise RuntimeError(f"the model kept {cache.get_seq_length()} of {p} prefix positions in its cache; "
                           "shared-prefix encoding needs the cache (turn it off with gradient checkpointing)")
    layer: Any
    for layer in cache.layers:  # a DynamicCache's layers hold keys and values after the forward above
        layer.keys = layer.keys.expand(b, *layer.keys.shape[1:])
        layer.values = layer.values.expand(b, *layer.values.shape[1:])
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    out = decoder(input_ids=input_ids[:, p:], attention_mask=attention_mask, use_cache=True, **{name: cache})
    return out.last_hidden_state
