"""Near ties on long replies: the reference path kept between a row's ties against restarting it at each tie.

``tools.generation.generate`` decides each near tie (top-2 logits closer than the rounding could explain) with
the reference's own computation (``generate_sequential``: the prompt's prefill, then one token at a time).
Issue 25 found that on MBPP's 256-token programs about 9.5 s of 35 s went to these decisions: each tie ran
the reference from the prompt again, so a row with several ties paid its prefill and every step several times.
Now a row keeps its reference state (``_Reference``, a batch-1 cache) from one tie to the next.

Same model, same MBPP prompts as ``prompt_eval_generation_speed.py``, in one process:
1. ``kept``: the default (the reference kept between ties);
2. ``restart``: each tie runs the reference from the prompt (the code before, patched in for this run);
3. ``sequential``: ``generate_sequential`` itself, the outputs both must equal (``--no-reference`` skips it).
Writes the times, the tie counts, the tie seconds and whether every output is identical.

    PYTHONPATH=. python benchmarks/tie_resolution.py --limit 24
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def restart_from_prompt(self, i: int, step: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The reference's tokens as before this change: its computation from the prompt up to ``step``, at every tie."""
    from tools import generation

    return generation._sequential_one(self.model, self.tokenizer, self.all_ids[i], step + 1, self.device).token_ids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--no-reference", action="store_true", help="skip the (slow) sequential reference")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tie_resolution.json"))
    args = ap.parse_args()

    from eval_metrics_speed import machine, save_result
    from prompt_eval_generation_speed import mbpp_prompts

    from tools import generation, models

    prompts, _ = mbpp_prompts(args.limit)
    model, tok = models.load_model(None, device="cpu")
    generation.generate_sequential(model, tok, prompts[:1], max_new_tokens=2)  # warm-up

    def run(label: str) -> tuple[float, generation.GenerationStats, list[generation.Generation]]:
        stats = generation.GenerationStats()
        t0 = time.perf_counter()
        out = generation.generate(model, tok, prompts, max_new_tokens=args.max_new_tokens,
                                  batch_size=args.batch_size, stats=stats)
        took = time.perf_counter() - t0
        print(f"{label}: {took:.1f} s, {stats.tie_resolutions} ties in {stats.tie_s:.1f} s", flush=True)
        return took, stats, out

    kept_s, kept, kept_out = run("kept")
    real = generation._ContinuousBatch._reference_tokens
    generation._ContinuousBatch._reference_tokens = restart_from_prompt  # type: ignore[method-assign]
    try:
        restart_s, restart, restart_out = run("restart")
    finally:
        generation._ContinuousBatch._reference_tokens = real  # type: ignore[method-assign]
    same_as_each_other = [g.token_ids for g in kept_out] == [g.token_ids for g in restart_out]
    reference: dict[str, object] = {}
    if not args.no_reference:
        t0 = time.perf_counter()
        seq = generation.generate_sequential(model, tok, prompts, max_new_tokens=args.max_new_tokens)
        reference = {"sequential_s": round(time.perf_counter() - t0, 1),
                     "kept_equals_sequential": [g.token_ids for g in kept_out] == [g.token_ids for g in seq],
                     "restart_equals_sequential": [g.token_ids for g in restart_out] == [g.token_ids for g in seq]}
    save_result({
        "benchmark": "tie_resolution",
        "what": "near ties on MBPP programs: the reference path kept between a row's ties vs restarted at each tie "
                "(tools.generation.generate), same model and prompts, one process",
        "command": " ".join(["PYTHONPATH=. python benchmarks/tie_resolution.py", *sys.argv[1:]]),
        "rows": len(prompts), "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
        "output_tokens_total": sum(g.output_tokens for g in kept_out),
        "kept": {"seconds": round(kept_s, 1), "ties": kept.tie_resolutions, "tie_seconds": round(kept.tie_s, 1),
                 "rows_with_ties": kept.recomputed_rows},
        "restart": {"seconds": round(restart_s, 1), "ties": restart.tie_resolutions,
                    "tie_seconds": round(restart.tie_s, 1), "rows_with_ties": restart.recomputed_rows},
        "tie_seconds_ratio_restart_over_kept": round(restart.tie_s / kept.tie_s, 2) if kept.tie_s else None,
        "total_ratio_restart_over_kept": round(restart_s / kept_s, 2),
        "identical_outputs": same_as_each_other, **reference,
        "dtype": str(next(model.parameters()).dtype), "machine": machine(),
    }, args.out)
    return 0 if same_as_each_other and reference.get("kept_equals_sequential", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
