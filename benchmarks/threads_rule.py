"""One thread or two on a loaded 2-core machine? The thread rule (``tools.train.threads``: the cores this process
may use minus the load, at least one) against both choices, for prompt evaluation's generation.

Other work is simulated by ``--spinners`` busy processes (0: idle, 1: one core taken, 2: both). At each level
the same generation (banking77 rows with the label list in the system message, the batched shared-prefix path)
runs with 1 thread and with 2, alternating, ``--reps`` times each; the median wall time of each is kept, and
the thread count the rule picks at that level (sampled with the spinners running) is compared with the faster
one. Writes ``benchmarks/results/threads_rule.json``.

    PYTHONPATH=. python benchmarks/threads_rule.py --rows 60 --reps 2 --spinners 0,1,2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = REPO.parent / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--spinners", default="0,1,2")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "threads_rule.json"))
    args = ap.parse_args()

    import os

    import torch
    from eval_metrics_speed import machine, save_result

    from tools import generation, models
    from tools.data.formats import load_examples
    from tools.estimate_time import _sampled, load_now
    from tools.prompt.evaluation import build_messages, format_spec
    from tools.train.threads import choose_threads

    test = load_examples(DATA / "banking77" / "test.csv")[: args.rows]
    labels = sorted({e.output_text for e in load_examples(DATA / "banking77" / "train.csv")})
    system = "Classify the customer's banking question.\n\n" + format_spec(labels, None)
    prompts = [build_messages(system, [], e) for e in test]
    model, tok = models.load_model(None, device="cpu")
    generation.generate(model, tok, prompts[:2], max_new_tokens=4)  # warm-up

    levels = []
    for n in [int(x) for x in args.spinners.split(",")]:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
        try:
            time.sleep(3)  # let the spinners take their cores
            _sampled.clear()
            other, cores = load_now(sample_s=1.0)
            rule = choose_threads(load_1m=other).threads
            rule_avg = choose_threads(load_1m=os.getloadavg()[0]).threads
            times: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.reps):
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    t0 = time.perf_counter()
                    generation.generate(model, tok, prompts, max_new_tokens=16)
                    times[threads].append(time.perf_counter() - t0)
        finally:
            for s in spinners:
                s.kill()
                s.wait()
        med = {k: round(statistics.median(v), 2) for k, v in times.items()}
        faster = min(med, key=lambda k: med[k])
        levels.append({"spinners": n, "other_work_cores": other, "load_average_1m": round(os.getloadavg()[0], 2),
                       "seconds_1_thread": med[1], "seconds_2_threads": med[2], "all_seconds": times,
                       "faster": faster, "ratio_1_over_2": round(med[1] / med[2], 2),
                       "rule_picks_with_other_work": rule, "rule_picks_with_load_average": rule_avg,
                       "rule_right": rule == faster})
        print(levels[-1], flush=True)
    torch.set_num_threads(2)
    save_result({
        "benchmark": "threads_rule",
        "what": "prompt evaluation's batched generation (banking77, labels in the system message, 16 new tokens) with "
                "1 and 2 torch threads while N busy processes run; does the thread rule pick the faster?",
        "command": " ".join(["PYTHONPATH=. python benchmarks/threads_rule.py", *sys.argv[1:]]),
        "rows": len(prompts), "reps": args.reps, "cores": cores, "levels": levels,
        "rule_right": sum(lv["rule_right"] for lv in levels), "of": len(levels), "machine": machine(),
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
