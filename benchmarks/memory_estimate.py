"""Memory estimate vs measurement, on what this machine allows (a CPU): per component, per method, two sizes.

For full fine-tuning, LoRA and QLoRA on two real model shapes (SmolLM2-135M and SmolLM2-360M, random
initialised from their configs), build the model exactly as ``tunewise train`` does, run one training step
and measure:
- weights: bytes of every parameter and buffer after loading (NF4 storage for QLoRA);
- gradients: bytes of every ``.grad`` after backward;
- optimizer: bytes of AdamW state after one step;
- activations (+ logits): bytes of the distinct tensors autograd saves for backward during the forward
  (``torch.autograd.graph.saved_tensors_hooks``), parameters excluded;
- peak RSS growth of the process over the step (noisy on a shared machine; reported, not judged).
Each is compared with ``tools.estimate.estimate_memory`` for the same shape, batch and sequence length.

A GPU peak (torch.cuda.max_memory_allocated) on an H100/H200 is the measurement the issue asks for; no GPU was
available here, so that part is recorded as not done.

    python benchmarks/memory_estimate.py [--batch 4] [--seq-len 128]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHAPES = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True),
    "smollm2-360m": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                         num_key_value_heads=5, vocab_size=49152, tie_word_embeddings=True),
}


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def make_model_dir(name: str, root: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = root / name
    if (out / "config.json").exists():
        return out
    cfg = LlamaConfig(max_position_embeddings=2048, rms_norm_eps=1e-5, **SHAPES[name])
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    return out


def measure(path: Path, method: str, batch: int, seq: int, bf16: bool) -> dict:
    import torch

    from tools.train.config import TrainConfig
    from tools.train.hf import completion_loss_sums
    from tools.train.model import build_model

    gc.collect()
    cfg = TrainConfig(train="x", method=method, lora_alpha=16, gradient_checkpointing=False)  # type: ignore[arg-type]
    model = build_model(path, cfg, bf16=bf16)
    model.train()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    torch.manual_seed(1)
    ids = torch.randint(0, 49152, (batch, seq))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}

    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            st = t.untyped_storage()
            ptr = st.data_ptr()
            if ptr not in params:
                saved[ptr] = max(saved.get(ptr, 0), st.nbytes())
        except (RuntimeError, NotImplementedError):
            pass
        return t

    r0 = rss_mb()
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_sum, _, n = completion_loss_sums(model, inputs, autocast_dtype=torch.bfloat16 if bf16 else None)
    (loss_sum / n).backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in trainable if p.grad is not None)
    opt.step()
    optim = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                if torch.is_tensor(v) and v.dim() > 0)
    step_s = time.perf_counter() - t0
    r1 = rss_mb()
    del model, opt
    gc.collect()
    return {"weights_gb": weights / 1e9, "gradients_gb": grads / 1e9, "optimizer_gb": optim / 1e9,
            "activations_and_logits_gb": sum(saved.values()) / 1e9, "rss_growth_gb": (r1 - r0) * 2**20 / 1e9,
            "trainable_params": sum(p.numel() for p in trainable), "step_seconds": round(step_s, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--shapes", default="smollm2-135m,smollm2-360m")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "memory_estimate.json"))
    args = ap.parse_args()

    import torch

    from tools.device import detect
    from tools.estimate import estimate_memory

    dev = detect()
    bf16 = dev.bf16
    root = Path(tempfile.mkdtemp(prefix="tw-mem-"))
    rows = []
    for name in args.shapes.split(","):
        path = make_model_dir(name, root)
        for method in ("full", "lora", "qlora"):
            m = measure(path, method, args.batch, args.seq_len, bf16)
            e = estimate_memory(model=str(path), method=method, seq_len=args.seq_len, batch=args.batch, bf16=bf16,
                                device="cpu").to_dict()
            pred_act = e["activations_gb"] + e["logits_gb"]
            row = {"shape": name, "method": method, "params_b": e["params_b"], "batch": args.batch,
                   "seq_len": args.seq_len, "bf16": bf16, "measured": {k: round(v, 4) if isinstance(v, float) else v
                                                                       for k, v in m.items()},
                   "predicted": {k: e[k] for k in ("weights_gb", "gradients_gb", "optimizer_gb", "activations_gb",
                                                   "logits_gb", "overhead_gb", "allocated_gb", "trainable_params")}}
            ratios = {
                "weights": e["weights_gb"] / m["weights_gb"],
                "gradients": e["gradients_gb"] / m["gradients_gb"] if m["gradients_gb"] else None,
                "optimizer": e["optimizer_gb"] / m["optimizer_gb"] if m["optimizer_gb"] else None,
                "activations_and_logits": pred_act / m["activations_and_logits_gb"],
                "static_total": (e["weights_gb"] + e["gradients_gb"] + e["optimizer_gb"] + pred_act)
                / (m["weights_gb"] + m["gradients_gb"] + m["optimizer_gb"] + m["activations_and_logits_gb"]),
            }
            row["predicted_over_measured"] = {k: None if v is None else round(v, 3) for k, v in ratios.items()}
            row["within_15pct"] = abs(ratios["static_total"] - 1) <= 0.15
            rows.append(row)
            print(json.dumps({"shape": name, "method": method, **row["predicted_over_measured"]}), flush=True)
    doc = {
        "benchmark": "memory_estimate",
        "what": "predicted (tools.estimate) vs measured bytes per component on CPU: weights, gradients, AdamW "
                "state, tensors saved for backward (activations + logits) during one training step",
        "rows": rows,
        "all_within_15pct": all(r["within_15pct"] for r in rows),
        "gpu": "NOT MEASURED: no H100/H200 was available in this task. The issue's GPU check (peak "
               "torch.cuda.max_memory_allocated for full/LoRA/QLoRA on two model sizes, goal within 15%) remains "
               "to be run; the CPU measurement above checks the same components except the CUDA context and "
               "caching-allocator slack.",
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "device": dev.to_dict(), "note": "shared machine; RSS growth is noisy and not judged"},
        "command": "python benchmarks/memory_estimate.py " + " ".join(sys.argv[1:]),
    }
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(doc, args.out)


if __name__ == "__main__":
    main()
