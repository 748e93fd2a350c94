"""Generation-heavy prompt evaluation (MBPP programs, up to 256 new tokens): the batched path against the
one-at-a-time reference loop, same prompts, same greedy outputs required.

The batched path is ``tools.generation.generate`` (continuous batching, near ties decided by a batch-1 forward);
the reference is ``generate_sequential`` (``model.generate``, one prompt at a time). The JSON adds the batched
path's per-phase breakdown (``batched_phases``) and the load average before, between and after the two runs:
on a CPU shared with other jobs, say so in ``--note`` and compare with ``--threads 1``.

The embedded SmolLM2 writes a Python function for each of the first N MBPP problems (the standard MBPP prompt:
the task and its first test). Both paths run in this process on the same loaded model; the script checks the
outputs are identical, scores both with pass@1 (executed tests, sandboxed) and writes
``benchmarks/results/prompt_eval_generation.json``.

    PYTHONPATH=. python benchmarks/prompt_eval_generation_speed.py --limit 24
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM = "You are an expert Python programmer. Reply with the function in one ```python code block."


def mbpp_prompts(limit: int, offset: int = 10) -> tuple[list[list[dict[str, str]]], list[list[str]]]:
    rows = [json.loads(line) for line in (REPO.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl").read_text()
            .splitlines() if line.strip()][offset:offset + limit]
    prompts = [[{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"{r['text']}\nYour code should pass this test:\n{r['test_list'][0]}"}]
               for r in rows]
    return prompts, [r["test_list"] for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "prompt_eval_generation.json"))
    ap.add_argument("--note", default="")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's choice); on a CPU shared with other jobs 1 can be faster")
    args = ap.parse_args()

    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import machine, save_result

    from tools import generation, metrics, models

    if args.threads:
        torch.set_num_threads(args.threads)
    prompts, tests = mbpp_prompts(args.limit)
    device = args.device or models.pick_device()
    model, tok = models.load_model(None, device=device)
    generation.generate_sequential(model, tok, prompts[:1], max_new_tokens=2)  # warm-up

    loads = {"start": [round(x, 2) for x in os.getloadavg()]}
    stats = generation.GenerationStats()
    t0, c0 = time.perf_counter(), time.process_time()
    fast = generation.generate(model, tok, prompts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                               stats=stats)
    fast_s, fast_cpu = time.perf_counter() - t0, time.process_time() - c0
    loads["after_batched"] = [round(x, 2) for x in os.getloadavg()]
    print(f"batched: {fast_s:.1f} s wall, {fast_cpu:.1f} s CPU; {stats.to_dict()}", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    seq = generation.generate_sequential(model, tok, prompts, max_new_tokens=args.max_new_tokens)
    seq_s, seq_cpu = time.perf_counter() - t0, time.process_time() - c0
    loads["after_sequential"] = [round(x, 2) for x in os.getloadavg()]
    print(f"sequential: {seq_s:.1f} s wall, {seq_cpu:.1f} s CPU", flush=True)
    same = [a.text for a in seq] == [b.text for b in fast]
    differing = [i for i, (a, b) in enumerate(zip(seq, fast, strict=True)) if a.text != b.text]
    fast_q = metrics.score([g.text for g in fast], ["" for _ in fast], "pass_at_1", tests=tests)
    seq_q = metrics.score([g.text for g in seq], ["" for _ in seq], "pass_at_1", tests=tests)
    result = {
        "rows": len(prompts), "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
        "output_tokens_mean": round(sum(g.output_tokens for g in fast) / len(fast), 1),
        "output_tokens_max": max(g.output_tokens for g in fast),
        "batched_s": round(fast_s, 2), "batched_cpu_s": round(fast_cpu, 2),
        "sequential_s": round(seq_s, 2), "sequential_cpu_s": round(seq_cpu, 2),
        "speedup": round(seq_s / fast_s, 2), "speedup_cpu_time": round(seq_cpu / fast_cpu, 2),
        "goal": ">= 5x", "same_predictions": same, "differing_rows": differing,
        "recomputed_near_ties": sum(g.recomputed for g in fast),
        "output_tokens_total": sum(g.output_tokens for g in fast),
        # Where the batched path's time went: the common prefix (once), the rows' own prompt tokens (prefill),
        # the batched decode steps, and the near ties decided by a batch-1 forward (tie_*).
        "batched_phases": stats.to_dict(),
        "decode_ms_per_step": round(1000 * stats.decode_s / max(1, stats.decode_steps), 1),
        "sequential_ms_per_token": round(1000 * seq_s / max(1, sum(g.output_tokens for g in seq)), 1),
        "load_average_during": loads,
        "pass_at_1_batched": round(fast_q.quality, 4), "pass_at_1_batched_ci95": [round(x, 4) for x in fast_q.ci95],
        "pass_at_1_sequential": round(seq_q.quality, 4),
        "python_syntax_batched": fast_q.extra.get("python_syntax"),
        "device": device, "dtype": str(next(model.parameters()).dtype), "model": models.EMBEDDED_NAME,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "machine": machine(),
        "note": args.note,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
