"""Reference metrics and sandboxed execution, measured on this machine.

1. chrF + ROUGE-L (+ token F1) on N free-text pairs through ``tools.scoring.metrics.score`` (with the companions and
   bootstrap CIs): rows per second. Pairs: each alpaca_seed reference against another instance's output or a
   word-shuffled copy of itself, cycled to N.
2. Sandboxed test execution of the MBPP reference solutions: every row in its own child process (temp dir,
   limits, isolated mode), ``workers`` at a time; rows per second with 1 worker and with one per core, and
   every reference solution must pass.

    PYTHONPATH=. python benchmarks/eval_metrics_speed.py --pairs 10000 --mbpp 974
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def machine() -> dict[str, object]:
    from tools.device import cpu_flags

    flags = sorted(cpu_flags() & {"avx", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma", "sse4_2"})
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "cpu_flags": flags, "python": platform.python_version(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


RESULT_FIELDS = ("measured_at", "git_commit", "command", "recorded_by")
"""Top-level keys every result file carries; ``machine`` carries ``cpu_flags`` and ``load_average_1_5_15``."""


def git_commit() -> str | None:
    """The checked-out commit (``+dirty`` when tracked files differ from it), or None outside a git checkout."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) if head else None


def save_result(result: dict[str, Any], out: str | Path, *, echo: bool = True) -> Path:
    """Write a benchmark's result JSON (atomically, with when, at which commit and by which command) and echo it.

    ``command``, ``measured_at``, ``git_commit`` and ``recorded_by`` are filled in unless the result already has
    them; ``machine`` gains the CPU flags and load average (``machine()``) where the benchmark did not record them."""
    from tools.fileio import write_text

    script = Path(sys.argv[0]).name
    result.setdefault("command", f"PYTHONPATH=. python benchmarks/{script} " + shlex.join(sys.argv[1:]))
    result.setdefault("measured_at", datetime.now(UTC).isoformat(timespec="seconds"))
    result.setdefault("git_commit", git_commit())
    result.setdefault("recorded_by", "save_result")
    here = machine()
    recorded = result.get("machine")
    if not isinstance(recorded, dict):  # a free-text description is kept beside the measured one
        result["machine"] = {**here, **({"description": recorded} if recorded else {})}
    else:
        for key, value in here.items():
            recorded.setdefault(key, value)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str) + "\n"
    write_text(path, text)
    print(text if echo else f"wrote {path}", end="" if echo else "\n")
    return path


def text_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    path = REPO.parent / "shared" / "data" / "alpaca_seed" / "seed_tasks.jsonl"
    outs = [inst["output"] for line in path.read_text().splitlines() if line.strip()
            for inst in json.loads(line)["instances"] if inst.get("output", "").strip()]
    rng = random.Random(seed)
    preds, refs = [], []
    for i in range(n):
        ref = outs[i % len(outs)]
        if i % 2:
            words = ref.split()
            rng.shuffle(words)
            pred = " ".join(words)
        else:
            pred = outs[rng.randrange(len(outs))]
        preds.append(pred)
        refs.append(ref)
    return preds, refs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--mbpp", type=int, default=974, help="MBPP rows to execute (all 974 by default)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "eval_metrics.json"))
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    from tools.scoring import metrics as M
    from tools.scoring import sandbox as S

    result: dict[str, object] = {}
    preds, refs = text_pairs(args.pairs)
    t0, c0 = time.perf_counter(), time.process_time()
    r = M.score(preds, refs, "chrf")  # chrF, with ROUGE-L and token F1 beside it, each with a bootstrap CI
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    M.per_item_scores("chrf", preds, refs)
    chrf_only = time.perf_counter() - t1
    t1 = time.perf_counter()
    M.per_item_scores("rouge_l", preds, refs)
    rouge_only = time.perf_counter() - t1
    result["reference_metrics"] = {
        "pairs": len(preds), "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
        "rows_per_s": round(len(preds) / wall, 1), "chrf_only_rows_per_s": round(len(preds) / chrf_only, 1),
        "rouge_l_only_rows_per_s": round(len(preds) / rouge_only, 1),
        "includes": "chrF + ROUGE-L + token F1 per row, three bootstrap CIs (2000 resamples)",
        "chrf": round(r.quality, 4), "chrf_ci95": [round(x, 4) for x in r.ci95],
        "rouge_l": round(r.extra["rouge_l"], 4), "token_f1": round(r.extra["token_f1"], 4)}
    print(json.dumps(result["reference_metrics"], indent=2), flush=True)

    rows = [json.loads(line) for line in (REPO.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl").read_text()
            .splitlines() if line.strip()][: args.mbpp]
    codes = [r["code"] for r in rows]
    tests = [r["test_list"] for r in rows]
    setups = [r.get("test_setup_code") or "" for r in rows]
    runs = {}
    for workers in sorted({1, S.default_workers()}):
        k = len(rows) if workers > 1 else min(len(rows), 200)  # one worker on a slice: the rate is what counts
        t0 = time.perf_counter()
        outs = S.run_tests_many(codes[:k], tests[:k], setups=setups[:k], workers=workers)
        s = time.perf_counter() - t0
        failed = [{"task_id": rows[i]["task_id"], "status": o.status, "detail": o.detail[:200]}
                  for i, o in enumerate(outs) if not o.passed]
        runs[workers] = {"rows": k, "seconds": round(s, 2), "rows_per_s": round(k / s, 1),
                         "passed": k - len(failed), "failed": failed}
        print(f"{workers} worker(s): {k} rows in {s:.1f} s ({k / s:.1f} rows/s), {len(failed)} failed", flush=True)
    best = runs[max(runs)]
    result["sandbox_mbpp_references"] = {
        "runs_by_workers": runs, "all_references_pass": not best["failed"],
        "speedup_all_cores_vs_one": round(best["rows_per_s"] / runs[1]["rows_per_s"], 2) if 1 in runs else None,
        "limits": S.SandboxLimits().__dict__ if hasattr(S.SandboxLimits(), "__dict__") else str(S.SandboxLimits())}
    result.update({"machine": machine(), "note": args.note,
                   })
    save_result(result, args.out, echo=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
