"""The tiny random Llama the fast tests run on (2 layers, hidden 64, the real tokenizer's vocabulary)."""

from __future__ import annotations

from typing import Any


def tiny_llama(tok: Any, *, seed: int = 0, initializer_range: float = 0.02) -> Any:
    """A random-initialised 2-layer Llama sized for ``tok``. ``initializer_range=0.5`` gives large weights, whose
    greedy replies vary from prompt to prompt (the default's replies are nearly all the same token)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True, initializer_range=initializer_range)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()
