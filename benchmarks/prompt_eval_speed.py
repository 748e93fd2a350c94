"""Prompt evaluation speed: the batched, shared-prefix path against the sequential reference, same prompts.

banking77, the 77 labels in the system message plus 5 few-shot pairs (about 750 prompt tokens), the first
N test rows, the embedded SmolLM2, greedy. Both paths run in this one process on the same loaded model; the
script checks the predictions are identical and writes ``benchmarks/results/prompt_eval.json``.

    PYTHONPATH=. python benchmarks/prompt_eval_speed.py --limit 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "banking77"))
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--sequential-limit", type=int, default=None,
                    help="run the slow reference on only the first K rows (speedup per example); default: all")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "prompt_eval.json"))
    ap.add_argument("--note", default="", help="free text stored with the result (e.g. machine load)")
    args = ap.parse_args()

    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import machine, save_result

    from tools import generation, metrics, models
    from tools.data.formats import load_examples
    from tools.prompt.evaluation import build_messages, format_spec, select_shots

    data = Path(args.data)
    test = load_examples(data / "test.csv")[: args.limit]
    train = load_examples(data / "train.csv")
    labels = sorted({e.output_text for e in train})
    shots = select_shots(train, args.shots, labels=True, seed=0,
                         exclude={metrics.normalize(e.input_text) for e in test})
    system = "Classify the customer's banking question.\n\n" + format_spec(labels, None)
    prompts = [build_messages(system, shots, e) for e in test]
    refs = [e.output_text for e in test]

    device = args.device or models.pick_device()
    model, tok = models.load_model(None, device=device)
    prompt_tokens = [len(generation.chat_ids(tok, p)) for p in prompts]
    generation.generate_sequential(model, tok, prompts[:1], max_new_tokens=2)  # warm-up, both paths benefit

    result: dict[str, object] = {}
    # Wall time and this process's CPU time: on a shared machine the CPU time is the fairer measure of work.
    t0, c0 = time.perf_counter(), time.process_time()
    fast = generation.generate(model, tok, prompts, max_new_tokens=args.max_new_tokens,
                               batch_size=args.batch_size)
    fast_s, fast_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"batched: {fast_s:.1f} s wall, {fast_cpu:.1f} s CPU ({fast_s / len(prompts):.3f} s/example)", flush=True)
    fast_q = metrics.score([g.text for g in fast], refs, "label_accuracy", labels=labels)
    load_before = os.getloadavg()
    k = len(prompts) if args.sequential_limit is None else min(args.sequential_limit, len(prompts))
    if k > 0:
        t0, c0 = time.perf_counter(), time.process_time()
        seq = generation.generate_sequential(model, tok, prompts[:k], max_new_tokens=args.max_new_tokens)
        seq_s, seq_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"sequential: {seq_s:.1f} s wall, {seq_cpu:.1f} s CPU on {k} rows ({seq_s / k:.3f} s/example)",
              flush=True)
        same = [a.text for a in seq] == [b.text for b in fast[:k]]
        diff = [i for i, (a, b) in enumerate(zip(seq, fast[:k], strict=True)) if a.text != b.text]
        seq_q = metrics.score([g.text for g in seq], refs[:k], "label_accuracy", labels=labels)
        speedup = (seq_s / k) / (fast_s / len(prompts))
        result.update({"speedup": round(speedup, 2), "same_predictions": same, "differing_rows": diff,
                       "speedup_cpu_time": round((seq_cpu / k) / (fast_cpu / len(prompts)), 2),
                       "sequential_rows": k, "sequential_s": round(seq_s, 2), "sequential_cpu_s": round(seq_cpu, 2),
                       "sequential_s_per_example": round(seq_s / k, 3),
                       "sequential_accuracy": round(seq_q.quality, 4),
                       "speedup_basis": "seconds per example, sequential vs batched" + (
                           "" if k == len(prompts) else f" (sequential timed on the first {k} rows only)")})
        print(f"speedup {speedup:.1f}x, same predictions: {same}", flush=True)
    result.update({
        "batched_s": round(fast_s, 2), "batched_cpu_s": round(fast_cpu, 2), "batched_s_per_example": round(fast_s / len(prompts), 3),
        "batched_accuracy": round(fast_q.quality, 4), "batched_accuracy_ci95": [round(x, 4) for x in fast_q.ci95],
        "recomputed_near_ties": sum(g.recomputed for g in fast),
        "rows": len(prompts), "shots": len(shots), "labels_in_system": len(labels),
        "prompt_tokens_mean": round(sum(prompt_tokens) / len(prompt_tokens), 1),
        "shared_prefix_tokens": generation.common_prefix_len([generation.chat_ids(tok, p) for p in prompts]),
        "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "device": device,
        "dtype": str(next(model.parameters()).dtype), "model": models.EMBEDDED_NAME,
        "machine": {**machine(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "note": args.note,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "load_average_after_batched": [round(x, 2) for x in load_before],
        "gpu": "not measured: no GPU was available to this task",
    })
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
