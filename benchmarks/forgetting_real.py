"""The forgetting check on the real embedded model, base against itself: the verdict must be "preserved"
(drop 0, no answer changed), and the scores tell how much of the general probe set SmolLM2-135M knows.

    PYTHONPATH=. python benchmarks/forgetting_real.py [--probes FILE] [--max-new-tokens 40]

Writes benchmarks/results/forgetting_real.json with the machine, the exact command, timings and the result.
It also reports the cost ratio of the check against one pass over the probes (the baseline measured in the
same run): the check generates twice, so the ratio should be close to 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", default=None)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "forgetting_real.json"))
    args = ap.parse_args()

    import torch

    from tools import evaluate as E
    from tools import models

    cfg = E.EvalConfig(probe_max_new_tokens=args.max_new_tokens)
    items = E.load_probes(args.probes)
    spec = models.resolve("smollm2-135m-instruct")
    models.load_cached(spec)  # load once, outside the timings
    var = E.base_variant(model="smollm2-135m-instruct")
    t0 = time.perf_counter()
    E.predict(var, [[{"role": "user", "content": i["question"]}] for i in items],
              max_new_tokens=args.max_new_tokens)
    one_pass = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = E.forgetting("smollm2-135m-instruct", probes=args.probes, config=cfg)
    check = time.perf_counter() - t0
    doc = {
        "benchmark": "forgetting_real",
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "device": models.pick_device(),
                    "note": "CPU only (no GPU in this task); 2 cores shared with other jobs, so times are noisy"},
        "seconds": {"one_pass_baseline": round(one_pass, 1), "forgetting_check": round(check, 1)},
        "ratio_check_over_one_pass": round(check / one_pass, 2),
        "result": {k: v for k, v in res.items() if k != "items"},
        "lost_or_changed": [i for i in res["items"] if i["status"] == "lost" or i["changed"]],
        "sample_answers": [{k: i[k] for k in ("id", "question", "answer", "base", "base_ok")}
                           for i in res["items"][::9]],
    }
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(doc, args.out, echo=False)
    print(json.dumps({"verdict": res["verdict"], "base_score": res["base_score"], "drop": res["drop"],
                      "seconds": doc["seconds"], "ratio": doc["ratio_check_over_one_pass"]}))
    return 0 if res["verdict"] == "preserved" else 1


if __name__ == "__main__":
    sys.exit(main())
