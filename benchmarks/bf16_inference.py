"""bf16 inference on the CPU against fp32: time and agreement of the outputs, for prompt evaluation's generation.

What the CPU can run is asked of torch at run time (``torch.cpu._is_avx512_bf16_supported`` /
``_is_amx_tile_supported``: the instruction set *and* the kernel's permission to use it), beside what
/proc/cpuinfo advertises; a machine may list AMX that it cannot run. A 1024x1024 matmul in both dtypes says
which one is faster here. Then the same chats go through ``tools.generation.generate`` with the model in fp32
and in bf16 (near ties decided by the reference path in each dtype, as always): banking77 (labels in the
system message, 16 new tokens) and MBPP (up to 256 new tokens). Reported: wall time of each, the ratio, and how
many replies are identical to fp32's. Writes ``benchmarks/results/bf16_inference.json``.

    PYTHONPATH=. python benchmarks/bf16_inference.py --labels-rows 100 --code-rows 24
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = REPO.parent / "shared" / "data"


def matmul_s(dtype: object, n: int = 1024, reps: int = 20) -> float:
    import torch

    a = torch.randn(n, n).to(dtype)  # type: ignore[arg-type]
    b = torch.randn(n, n).to(dtype)  # type: ignore[arg-type]
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return (time.perf_counter() - t0) / reps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels-rows", type=int, default=100)
    ap.add_argument("--code-rows", type=int, default=24)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bf16_inference.json"))
    args = ap.parse_args()

    import torch
    from eval_metrics_speed import machine, save_result
    from prompt_eval_generation_speed import mbpp_prompts

    from tools import generation, models
    from tools.data.formats import load_examples
    from tools.device import cpu_flags
    from tools.prompt.evaluation import build_messages, format_spec

    runs = {"avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
            "amx_tile": bool(torch.cpu._is_amx_tile_supported()),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
    listed = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))
    mm = {"fp32_ms": round(1000 * matmul_s(torch.float32), 2), "bf16_ms": round(1000 * matmul_s(torch.bfloat16), 2)}
    print(runs, listed, mm, flush=True)

    test = load_examples(DATA / "banking77" / "test.csv")[: args.labels_rows]
    labels = sorted({e.output_text for e in load_examples(DATA / "banking77" / "train.csv")})
    system = "Classify the customer's banking question.\n\n" + format_spec(labels, None)
    sets = {"banking77": ([build_messages(system, [], e) for e in test], 16),
            "mbpp": (mbpp_prompts(args.code_rows)[0], 256)}
    fp32, tok = models.load_model(None, device="cpu")
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    results = {}
    for name, (prompts, new_tokens) in sets.items():
        row = {"rows": len(prompts), "max_new_tokens": new_tokens}
        outs = {}
        for label, model in (("fp32", fp32), ("bf16", bf16)):
            generation.generate(model, tok, prompts[:2], max_new_tokens=2)  # warm-up
            stats = generation.GenerationStats()
            t0 = time.perf_counter()
            outs[label] = generation.generate(model, tok, prompts, max_new_tokens=new_tokens, stats=stats)
            row[f"{label}_s"] = round(time.perf_counter() - t0, 1)
            row[f"{label}_near_ties"] = stats.tie_resolutions
            row[f"{label}_tie_s"] = round(stats.tie_s, 1)
            print(name, label, row[f"{label}_s"], flush=True)
        row["speedup_bf16"] = round(row["fp32_s"] / row["bf16_s"], 2)
        row["identical_replies"] = sum(a.text == b.text for a, b in zip(outs["fp32"], outs["bf16"], strict=True))
        row["of"] = len(prompts)
        results[name] = row
        print(name, row, flush=True)
    save_result({
        "benchmark": "bf16_inference",
        "what": "tools.generation.generate with the model in bf16 against fp32 on this CPU: time and replies "
                "identical to fp32's; what torch can run here beside what /proc/cpuinfo lists",
        "command": " ".join(["PYTHONPATH=. python benchmarks/bf16_inference.py", *sys.argv[1:]]),
        "torch_can_run": runs, "cpuinfo_lists": listed, "matmul_1024": mm, "sets": results,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "machine": machine(),
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
