"""The GPU measurements issue #6 asks for, as one short prepared script for a machine with a CUDA device.

1. Memory: for full / LoRA / QLoRA on the SmolLM2-135M and SmolLM2-360M shapes (random initialised from
   their configs, built exactly as ``tunewise train`` builds them) and on a ~1B Llama shape, run three
   training steps and compare ``torch.cuda.max_memory_allocated`` with ``tools.estimate``'s ``allocated_gb``
   (and the reserved memory plus the CUDA context with ``total_gb``). Goal: within +-15%.
2. Throughput on the ~1B shape (LoRA and full): tokens/s over timed steps after warm-up, and model FLOPs
   utilisation = flops per token x tokens/s / the GPU's dense bf16 peak, with 6N flops per token for full
   fine-tuning and 4N for LoRA/QLoRA (forward 2N + input gradients 2N; the frozen base has no weight
   gradients; attention's sequence-length term left out, as usual for MFU).

Writes benchmarks/results/gpu_checks.json. Without CUDA it measures nothing and writes nothing (exit 2);
``--smoke`` runs the code path on a tiny shape on the CPU (used by a test) and writes to ``--out``.

    python benchmarks/gpu_checks.py [--batch 8] [--seq-len 512] [--steps 10]
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

sys.path.insert(0, str(REPO / "benchmarks"))
from memory_estimate import SHAPES as SMOLLM2_SHAPES  # noqa: E402 - the sibling benchmark's real shapes

SHAPES = {
    **SMOLLM2_SHAPES,
    "llama-1.2b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1024, tie_word_embeddings=True),
}
# Dense bf16 peak (no sparsity), from the vendors' data sheets.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


def make_model_dir(name: str, root: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = root / name
    cfg = LlamaConfig(max_position_embeddings=4096, rms_norm_eps=1e-5, **SHAPES[name])
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    return out


def _batch(vocab: int, batch: int, seq: int, device: str) -> dict:
    import torch

    from tools.train.data import IGNORE

    ids = torch.randint(0, vocab, (batch, seq), device=device)
    labels = ids.clone()
    labels[:, : seq // 2] = IGNORE  # the prompt half carries no loss, as in tunewise's completion-only training
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def run(path: Path, vocab: int, method: str, *, batch: int, seq: int, steps: int, warmup: int, device: str) -> dict:
    """Build as ``tunewise train`` does, train ``warmup + steps`` steps; peak memory and time per step."""
    import torch

    from tools.train.config import TrainConfig
    from tools.train.hf import completion_loss_sums
    from tools.train.model import build_model

    cuda = device == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        free0, total = torch.cuda.mem_get_info()
    cfg = TrainConfig(train="x", method=method, lora_alpha=16, gradient_checkpointing=False)  # type: ignore[arg-type]
    model = build_model(path, cfg, bf16=True, device=device)
    if cuda and method != "qlora":  # bitsandbytes places a 4-bit model on the GPU while loading
        model = model.to("cuda")
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-5, fused=cuda)
    times = []
    for i in range(warmup + steps):
        inputs = _batch(vocab, batch, seq, device)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss_sum, _, n = completion_loss_sums(model, inputs, autocast_dtype=torch.bfloat16)
        (loss_sum / n).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    out = {"trainable_params": sum(p.numel() for p in trainable),
           "params": sum(p.numel() for p in model.parameters()),
           "step_seconds": round(sum(times) / len(times), 4),
           "tokens_per_s": round(batch * seq / (sum(times) / len(times)), 1)}
    if cuda:
        out["peak_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
        out["peak_reserved_gb"] = round(torch.cuda.max_memory_reserved() / 1e9, 3)
        out["process_gb"] = round((total - free0) / 1e9 + torch.cuda.max_memory_reserved() / 1e9, 3)
    del model, opt
    gc.collect()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="tiny shape on the CPU: checks the code path only")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_checks.json"))
    args = ap.parse_args(argv)

    import torch

    from tools.device import detect
    from tools.estimate import estimate_memory

    if args.smoke:
        device, shapes, throughput_shape, batch, seq, steps = "cpu", ["tiny"], "tiny", 2, 32, 1
    elif torch.cuda.is_available():
        device, shapes, throughput_shape = "cuda", ["smollm2-135m", "smollm2-360m", "llama-1.2b"], "llama-1.2b"
        batch, seq, steps = args.batch, args.seq_len, args.steps
    else:
        print("no CUDA device: nothing measured, nothing written (use --smoke to check the code path)",
              file=sys.stderr)
        return 2
    dev = detect()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if gpu and k in gpu), None)
    root = Path(tempfile.mkdtemp(prefix="tw-gpu-"))
    memory, throughput = [], []
    for name in shapes:
        path = make_model_dir(name, root)
        for method in ("full", "lora", "qlora"):
            m = run(path, SHAPES[name]["vocab_size"], method, batch=batch, seq=seq,
                    steps=steps if name == throughput_shape else 1, warmup=1 if args.smoke else 2, device=device)
            e = estimate_memory(model=str(path), method=method, seq_len=seq, batch=batch, bf16=True,
                                label_fraction=0.5, device=device).to_dict()
            row = {"shape": name, "method": method, "params_b": e["params_b"], "batch": batch, "seq_len": seq,
                   "predicted_allocated_gb": e["allocated_gb"], "predicted_total_gb": e["total_gb"], **m}
            if "peak_allocated_gb" in m:
                row["allocated_ratio"] = round(e["allocated_gb"] / m["peak_allocated_gb"], 3)
                row["total_ratio"] = round(e["total_gb"] / m["process_gb"], 3)
                row["within_15pct"] = abs(row["allocated_ratio"] - 1) <= 0.15
            memory.append(row)
            print(json.dumps(row), flush=True)
            if name == throughput_shape and method in ("full", "lora"):
                n = m["params"] if method == "full" else m["params"] - m["trainable_params"]
                flops_per_token = (6 if method == "full" else 4) * n
                throughput.append({"shape": name, "method": method, "tokens_per_s": m["tokens_per_s"],
                                   "flops_per_token": flops_per_token,
                                   "mfu": round(flops_per_token * m["tokens_per_s"] / peak, 4) if peak else None})
    doc = {
        "benchmark": "gpu_checks", "smoke": args.smoke, "gpu": gpu, "peak_bf16_flops": peak,
        "memory": memory, "throughput": throughput,
        "all_within_15pct": all(r.get("within_15pct", False) for r in memory) if device == "cuda" else None,
        "method": "random-initialised models of real shapes; three steps for memory (peak after warm-up), "
                  f"{steps} timed steps after warm-up for throughput; half of each sequence labelled",
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "device": dev.to_dict()},
        "command": "python benchmarks/gpu_checks.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(doc, args.out, echo=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
