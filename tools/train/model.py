"""Build the model a method trains: the base in the right dtype (4-bit NF4 for QLoRA), LoRA adapters on top,
and the attention kernel that is fastest for the device and sequence length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.train.config import TrainConfig


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
