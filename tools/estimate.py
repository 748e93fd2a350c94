"""How much memory a training run needs: weights, gradients, optimizer states, activations, overhead.

The arithmetic follows the seed's breakdown for a full fine-tune (4 bytes of weights, 4 of gradients and
8 of Adam state per parameter, plus activations) and extends it to LoRA (a frozen 16-bit base, with
gradients and optimizer state only for the adapters) and QLoRA (the linear layers stored as 4-bit NF4
with double-quantised block scales). Activations are counted per token and per layer from the tensors a
Llama-style block keeps for its backward pass. The seed's memory table is reported beside the estimate as
a sanity reference (``seed_reference_gb``), never used in place of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GB = 1e9  # the seed's "GB" are decimal: 7B x 4 bytes = 28 GB
NF4_BYTES = 0.5 + 1 / 256 + 4 / (64 * 256)  # 4-bit weights + 8-bit block scales (per 64) + fp32 second-level (per 256)
CUDA_CONTEXT_GB = 0.5  # CUDA context and kernels, outside torch's allocator
FRAGMENTATION = 0.10  # caching-allocator slack on activations


@dataclass
class Shape:
    """The sizes that decide a decoder's memory."""

    params: float  # total parameters
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool = False

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def linear_params(self) -> int:
        """Weights of the attention and MLP projections (what LoRA adapts and NF4 quantises)."""
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        return self.layers * (2 * h * h + 2 * h * kv + 3 * h * i)


# Reference Llama-family shapes; a bare --params-b picks the nearest (in log size) and scales its depth.
_REFERENCE_SHAPES = [
    Shape(0.135e9, 576, 30, 1536, 9, 3, 49152, True),  # SmolLM2-135M
    Shape(0.36e9, 960, 32, 2560, 15, 5, 49152, True),  # SmolLM2-360M
    Shape(1.1e9, 2048, 22, 5632, 32, 4, 32000),  # TinyLlama-1.1B
    Shape(6.74e9, 4096, 32, 11008, 32, 32, 32000),  # Llama-2-7B
    Shape(13.0e9, 5120, 40, 13824, 40, 40, 32000),  # Llama-2-13B
    Shape(69.0e9, 8192, 80, 28672, 64, 8, 32000),  # Llama-2-70B
]


def shape_from_config(cfg: dict[str, Any]) -> Shape:
    from tools.models import estimate_params_b

    h = int(cfg["hidden_size"])
    heads = int(cfg.get("num_attention_heads", 1))
    pb = estimate_params_b(cfg) or 0.0
    return Shape(pb * 1e9, h, int(cfg["num_hidden_layers"]), int(cfg.get("intermediate_size", 4 * h)), heads,
                 int(cfg.get("num_key_value_heads", heads)), int(cfg["vocab_size"]),
                 bool(cfg.get("tie_word_embeddings", False)))


def shape_for_params(params_b: float) -> Shape:
    ref = min(_REFERENCE_SHAPES, key=lambda s: abs(math.log(s.params / (params_b * 1e9))))
    per_layer = (ref.params - ref.embedding_params) / ref.layers
    layers = max(1, round((params_b * 1e9 - ref.embedding_params) / per_layer))
    return Shape(params_b * 1e9, ref.hidden, layers, ref.intermediate, ref.heads, ref.kv_heads, ref.vocab, ref.tied)


def _shape(model: str | None, params_b: float | None) -> tuple[Shape, str]:
    if model:
        p = Path(model)
        if not (p / "config.json").exists():
            from tools import models

            p = models.base_path(models.resolve(model))
        return shape_from_config(json.loads((p / "config.json").read_text())), str(model)
    if params_b is None or params_b <= 0:
        from tools.errors import InputError

        raise InputError("give a model or a positive parameter count", where="--model/--params-b",
                         fix="e.g. `tunewise estimate --params-b 7 --method lora`")
    return shape_for_params(params_b), f"{params_b:g}B (Llama-shaped)"


def lora_params(shape: Shape, r: int) -> int:
    """Adapter weights for rank r on every attention and MLP projection: r x (fan_in + fan_out) each."""
    h, kv, i = shape.hidden, shape.kv_dim, shape.intermediate
    per_layer = (h + h) + (h + kv) * 2 + (h + h) + (h + i) * 2 + (i + h)
    return shape.layers * r * per_layer


def activation_bytes_per_token(shape: Shape, method: str, bf16: bool, checkpointing: bool) -> float:
    """Bytes one token keeps for backward across the whole stack.

    Per layer, a Llama block saves roughly 13 hidden-size vectors (norm inputs and outputs, q, rotary
    copies, attention output, projection inputs), 4 key/value-size vectors and 5 MLP-size vectors (gate, up,
    their activation and product, the down-projection input). LoRA adds a dropout copy of each adapted
    layer's input. With gradient checkpointing only each layer's input is kept, plus one layer recomputed.
    """
    h, kv, i = shape.hidden, shape.kv_dim, shape.intermediate
    elems = 13 * h + 4 * kv + 5 * i
    if method in ("lora", "qlora"):
        elems += 6 * h + i
    b = 2 if bf16 else 4
    per_layer = elems * b
    if method == "qlora":
        # prepare_model_for_kbit_training keeps the norms in fp32: their 6 hidden-size tensors take 4 bytes
        per_layer += 6 * h * (4 - b)
    if checkpointing:
        return shape.layers * h * b + per_layer
    return shape.layers * per_layer + 4 * h * b  # + embeddings output and final norm


@dataclass
class Estimate:
    model: str
    method: str
    params_b: float
    trainable_params: int
    seq_len: int
    batch: int
    bf16: bool
    gradient_checkpointing: bool
    weights_gb: float
    quantization_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    logits_gb: float
    overhead_gb: float
    allocated_gb: float  # what torch's allocator would hold at peak (compare with max_memory_allocated)
    total_gb: float  # allocated + CUDA context: what the device must have free
    seed_reference_gb: float | None
    seed_reference_rule: str | None
    notes: list[str]
    device_gb: float | None = None  # set by ``fits``: the memory the device has for the run

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document and the LangChain tool's answer (``device_gb`` only once ``fits`` set it)."""
        d = asdict(self)
        if d["device_gb"] is None:
            del d["device_gb"]
        return d


def estimate_memory(params_b: float | None = None, model: str | None = None, method: str = "lora",
                    seq_len: int = 512, batch: int = 8, *, lora_r: int = 8, gradient_checkpointing: bool = False,
                    bf16: bool = True, label_fraction: float = 1.0, device: str = "cuda") -> Estimate:
    """Estimate peak training memory (decimal GB) for full / LoRA / QLoRA, per component, with ``total_gb``.

    ``label_fraction`` is the share of positions that carry a loss (tunewise computes logits only there).
    """
    if method not in ("full", "lora", "qlora"):
        from tools.errors import InputError

        raise InputError(f"unknown method {method!r}", where="--method", fix="use full, lora or qlora")
    shape, name = _shape(model, params_b)
    P = shape.params
    notes: list[str] = []
    quant = 0.0
    if method == "full":
        trainable = int(P)
        weights = 4 * P  # fp32 master weights (the seed's breakdown); bf16 only in the compute
    else:
        trainable = lora_params(shape, lora_r)
        adapters = 4 * trainable
        if method == "lora":
            weights = (2 if bf16 else 4) * P + adapters
        else:
            linear = shape.linear_params
            rest = P - linear  # embeddings, norms: upcast to fp32 by prepare_model_for_kbit_training
            weights = NF4_BYTES * linear + 4 * rest + adapters
            notes.append("QLoRA: linear layers in NF4 with double-quantised scales; other weights fp32")
    gradients = 4 * trainable
    optimizer = 8 * trainable  # AdamW: two fp32 moments
    tokens = batch * seq_len
    act = tokens * activation_bytes_per_token(shape, method, bf16, gradient_checkpointing)
    if method == "full" and bf16:
        # autocast keeps a bf16 copy of each fp32 projection weight for the backward pass
        act += 2 * shape.linear_params
        notes.append("full + bf16: autocast's bf16 copies of the projection weights are counted with activations")
    logits = tokens * label_fraction * shape.vocab * (4 + 4 + (2 if bf16 else 0))  # fp32 logits, grad, bf16 copy
    if method == "qlora":
        # one layer's weights dequantised to the compute dtype at a time (forward and backward)
        quant = (shape.linear_params / shape.layers) * (2 if bf16 else 4) * 2
    overhead = FRAGMENTATION * (act + logits) + 0.02 * weights
    allocated = weights + quant + gradients + optimizer + act + logits + overhead
    context = CUDA_CONTEXT_GB * GB if device.startswith("cuda") else 0.0
    total = allocated + context
    seed_gb, seed_rule = _seed_reference(P / 1e9, method)
    if seed_gb is not None:
        notes.append(f"seed table ({seed_rule}): {seed_gb:g} GB; the seed does not state its batch or sequence length")
    r = lambda x: round(x / GB, 3)  # noqa: E731
    return Estimate(name, method, round(P / 1e9, 4), trainable, seq_len, batch, bf16, gradient_checkpointing,
                    r(weights), r(quant), r(gradients), r(optimizer), r(act), r(logits), r(overhead + context),
                    r(allocated), r(total), seed_gb, seed_rule, notes)


def _seed_reference(params_b: float, method: str) -> tuple[float | None, str | None]:
    """The seed's memory table value when the model is close (within 15%) to 7B, 13B or 70B."""
    from knowledge import load

    k = load()
    rows = getattr(k.hyperparameters, "memory_by_method", None) or []
    for row in rows:
        if row.method != method:
            continue
        for size, gb in dict(row.gb).items():
            b = float(str(size).rstrip("b"))
            if abs(params_b - b) / b <= 0.15:
                return float(gb), row.id
    return None, None


def device_capacity_gb(dev: Any) -> float | None:
    """Memory a run may use on this device: per-GPU memory, or the RAM available now on a CPU."""
    if getattr(dev, "kind", "cpu") == "cuda":
        return float(dev.gpu_memory_gb) * 2**30 / GB if dev.gpu_memory_gb else None
    import psutil

    return psutil.virtual_memory().available / GB


def fits(est: Estimate, dev: Any, *, headroom: float = 0.9) -> bool:
    """True when the estimate fits within ``headroom`` of the device's memory (records ``est.device_gb``)."""
    cap = device_capacity_gb(dev)
    est.device_gb = round(cap, 2) if cap is not None else None
    if cap is None:
        return True
    total = est.total_gb if getattr(dev, "kind", "cpu") == "cuda" else est.allocated_gb
    return bool(total <= headroom * cap)
