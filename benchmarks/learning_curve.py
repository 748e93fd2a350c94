"""Learning-curve prediction on banking77: predict the full-size quality from smaller subsets, then measure it.

One run of ``tools.evaluate.learning_curve.learning_curve`` trains the same recipe (LoRA on SmolLM2-135M-Instruct,
one pass over each subset, the plan's learning rate) on nested subsets of a banking77 training pool (1/8, 1/4,
1/2 and all of it; by default the 10 most frequent intents, so that CPU-sized subsets show a curve) and scores each run on the same test rows. The power law is fitted on the three smaller
subsets only and its prediction at 2x the largest of them (= the full pool) is compared with the measured
full-pool quality. The baseline predictor in the same run is "no growth": the largest small subset's
quality carried forward. Goal (issue 16): the fitted prediction within 5 points of the measurement.

Writes benchmarks/results/learning_curve.json with the prediction error, the band, the cost in seconds and
the CPU's flags.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/learning_curve.py --intents 5 --pool 200 --epochs 2 \
        --learning-rate 1e-3 --test-rows 100

(one torch thread: on a 2-core machine shared with other sessions, more threads thrash and a step took
minutes instead of seconds)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
BANKING77 = REPO.parent / "shared" / "data" / "banking77"
SYSTEM = "Classify the banking customer's message into one intent label. Answer with the label only."


def rows(name: str) -> list[tuple[str, str]]:
    with (BANKING77 / name).open(encoding="utf-8") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"messages": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": q},
        {"role": "assistant", "content": a}]}) + "\n" for q, a in pairs), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=320, help="training rows at 100%")
    ap.add_argument("--test-rows", type=int, default=100)
    ap.add_argument("--intents", type=int, default=10,
                    help="keep the N most frequent intents (0: all 77); fewer classes show a curve at CPU sizes")
    ap.add_argument("--learning-rate", type=float, default=None, help="default: the plan's (hp.lr.lora.*)")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "learning_curve.json"))
    args = ap.parse_args()

    from tools.device import cpu_flags
    from tools.evaluate.learning_curve import CurveConfig, fit_curve, learning_curve

    train, test = rows("train.csv"), rows("test.csv")
    if args.intents:
        from collections import Counter

        keep = {c for c, _ in Counter(c for _, c in train).most_common(args.intents)}
        train = [r for r in train if r[1] in keep]
        test = [r for r in test if r[1] in keep]
    random.Random(0).shuffle(train)
    random.Random(1).shuffle(test)
    work = Path(tempfile.mkdtemp(prefix="lc-bench-"))
    os.environ.setdefault("TUNEWISE_HOME", str(work / "home"))
    write_jsonl(work / "train.jsonl", train[: args.pool])
    write_jsonl(work / "val.jsonl", train[args.pool: args.pool + 40])
    write_jsonl(work / "test.jsonl", test[: args.test_rows])
    fractions = (0.125, 0.25, 0.5, 1.0)
    t0 = time.time()
    res = learning_curve(CurveConfig(train=str(work / "train.jsonl"), test=str(work / "test.jsonl"),
                                     val=str(work / "val.jsonl"), fractions=fractions, epochs=args.epochs,
                                     bar=0.9, max_new_tokens=16, learning_rate=args.learning_rate),
                         on_progress=lambda ev: print(f"{ev.stage} {ev.step}/{ev.total} {ev.message}", flush=True))
    wall = time.time() - t0
    small, full = res.points[:-1], res.points[-1]
    fit = fit_curve([(p.n, p.per_item) for p in small], bar=0.9, factors=(2,))
    pred = next((p for p in fit.predictions if p["factor"] == 2), None)
    no_growth = small[-1].quality
    doc = {
        "benchmark": "learning_curve",
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "command": (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} nice -n {os.nice(0)} "
                    "python benchmarks/learning_curve.py " + " ".join(sys.argv[1:])),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "cpu_flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))),
                    "python": platform.python_version(), "gpu": "none (CPU only)",
                    "load_average_at_end": list(os.getloadavg()),
                    "note": "2 cores shared with other sessions: seconds are noisy, qualities are not"},
        "pool_rows": args.pool, "intents": args.intents or 77, "test_rows": res.test_rows, "metric": res.metric, "epochs": res.epochs,
        "points": [p.to_dict() for p in res.points],
        "fit_on": [p.n for p in small],
        "fit": fit.to_dict(),
        "predicted_full_quality": pred and pred["quality"],
        "predicted_band_90": pred and pred["band"],
        "measured_full_quality": full.quality, "measured_full_ci95": full.ci95,
        "prediction_error_points": None if pred is None else round((pred["quality"] - full.quality) * 100, 2),
        "baseline_no_growth_error_points": round((no_growth - full.quality) * 100, 2),
        "goal_points": 5.0,
        "within_goal": None if pred is None else abs(pred["quality"] - full.quality) * 100 <= 5.0,
        "cost_seconds": {"total_wall": round(wall, 1),
                         "train": round(sum(p.train_seconds for p in res.points), 1),
                         "evaluate": round(sum(p.eval_seconds for p in res.points), 1),
                         "smaller_subsets_only": round(sum(p.train_seconds + p.eval_seconds for p in small), 1),
                         "full_point": round(full.train_seconds + full.eval_seconds, 1)},
        "all_points_fit": res.fit.to_dict(),
    }
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(doc, args.out, echo=False)
    print(json.dumps({k: doc[k] for k in ("predicted_full_quality", "measured_full_quality", "prediction_error_points",
                                          "baseline_no_growth_error_points", "cost_seconds")}, indent=2))


if __name__ == "__main__":
    main()
