"""Scale-out on the CPU: `tunewise train --launcher accelerate` with 2 processes (DDP over gloo) against one
process at the same effective batch, on the embedded SmolLM2-135M with LoRA.

For each task (banking77 labels, MBPP code) it trains twice from the same seed and data:
  one process   --batch-size 2B
  two processes --batch-size B, through accelerate's torchrun launcher
with the thread count tunewise chooses (free cores, shared by the processes), and compares the per-step
training losses and the validation losses (goal: the same curve within 0.02), the time of the training steps
(a ratio measured in the same run), and that the run log holds one record per run. The default is fp32
(--no-bf16): bf16 autocast rounds differently when a batch is split in two, and Adam turns that rounding
into small differences in the updates (--bf16 measures it). The machine is shared with other jobs, so the
time ratio is noisy; the curves are not.

    python benchmarks/ddp_cpu.py [--steps 8] [--batch 2] [--tasks banking77 mbpp] [--bf16]

Writes benchmarks/results/ddp_cpu.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
DDP_CONFIG = REPO / "knowledge" / "configs" / "accelerate_cpu_ddp.yaml"
TOLERANCE = 0.02


def _pairs(task: str, n: int) -> list[tuple[str, str]]:
    rng = random.Random(0)
    if task == "banking77":
        rows = list(csv.DictReader((DATA / "banking77" / "train.csv").open(encoding="utf-8")))
        rng.shuffle(rows)
        return [(r["text"], r["category"]) for r in rows[:n]]
    if task == "mbpp":
        rows = [json.loads(x) for x in (DATA / "mbpp" / "mbpp.jsonl").read_text(encoding="utf-8").splitlines() if x]
        rng.shuffle(rows)
        rows.sort(key=lambda r: len(r["code"]))  # the shortest programs: seconds per step on a CPU, not minutes
        return [(r["text"], r["code"].replace("\r\n", "\n")) for r in rows[:n]]
    raise SystemExit(f"unknown task {task!r}")


def _write(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                      {"role": "assistant", "content": a}]}) + "\n"
                            for q, a in pairs), encoding="utf-8")
    return path


def _train(args: list[str], env: dict[str, str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cli", "train", *args, "--json"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"training failed ({r.returncode}): {r.stderr[-3000:]}")
    return json.loads(r.stdout), seconds


def run_task(task: str, a: argparse.Namespace, home: Path) -> dict:
    from tools.runlog import RunLog

    pairs = _pairs(task, a.n_train + a.n_val)
    tmp = home / task
    tmp.mkdir(parents=True, exist_ok=True)
    train, val = _write(tmp / "train.jsonl", pairs[: a.n_train]), _write(tmp / "val.jsonl", pairs[a.n_train:])
    env = dict(os.environ, TUNEWISE_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    common = ["--train", str(train), "--val", str(val), "--max-steps", str(a.steps), "--eval-steps",
              str(a.steps // 2), "--grad-accum", "1", "--lr", str(a.lr), "--max-seq-length", "256", "--seed", "0"]
    common.append("--bf16" if a.bf16 else "--no-bf16")
    one, one_s = _train([*common, "--batch-size", str(2 * a.batch), "--run-id", f"{task}-one"], env)
    two, two_s = _train([*common, "--batch-size", str(a.batch), "--run-id", f"{task}-two", "--launcher",
                         "accelerate", "--accelerate-config", str(DDP_CONFIG)], env)
    log = RunLog(home / "runlog.duckdb")

    def curve(run_id: str, split: str) -> list[float]:
        return [m["value"] for m in log.metrics(run_id) if m["split"] == split and m["name"] == "loss"]

    train_one, train_two = curve(f"{task}-one", "train"), curve(f"{task}-two", "train")
    val_one, val_two = curve(f"{task}-one", "val"), curve(f"{task}-two", "val")
    diff_train = max(abs(x - y) for x, y in zip(train_one, train_two, strict=True))
    diff_val = max(abs(x - y) for x, y in zip(val_one, val_two, strict=True))
    records = log.query("SELECT count(*) AS n FROM runs WHERE run_id LIKE ?", [f"{task}-%"])[0]["n"]
    return {
        "task": task, "n_train": a.n_train, "n_val": a.n_val, "steps": a.steps,
        "effective_batch": 2 * a.batch,
        "one_process": {"batch_size": 2 * a.batch, "threads": one["threads"], "status": one["status"],
                        "train_seconds": one["train_seconds"], "wall_seconds": round(one_s, 1),
                        "train_loss": [round(x, 4) for x in train_one], "val_loss": [round(x, 4) for x in val_one]},
        "two_processes": {"batch_size": a.batch, "threads": two["threads"], "status": two["status"],
                          "processes": two["processes"], "train_seconds": two["train_seconds"],
                          "wall_seconds": round(two_s, 1), "train_loss": [round(x, 4) for x in train_two],
                          "val_loss": [round(x, 4) for x in val_two]},
        "max_abs_train_loss_difference": round(diff_train, 5),
        "max_abs_val_loss_difference": round(diff_val, 5),
        "same_curve_within_tolerance": diff_train < TOLERANCE and diff_val < TOLERANCE,
        "run_log_records": records,
        "train_time_ratio_two_over_one": round(two["train_seconds"] / one["train_seconds"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["banking77", "mbpp"])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=2, help="per-process batch of the 2-process run")
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--n-val", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (default fp32: see the docstring)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ddp_cpu.json"))
    a = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="tunewise-ddp-") as d:
        os.environ["TUNEWISE_HOME"] = d
        from tools.device import cpu_flags

        results = [run_task(t, a, Path(d)) for t in a.tasks]
    load = os.getloadavg()
    doc = {
        "benchmark": "ddp_cpu",
        "goal": f"2 processes (DDP, gloo) follow the 1-process loss curve at the same effective batch within "
                f"{TOLERANCE} (absolute, per logged step and per evaluation); one run-log record per run",
        "model": "smollm2-135m-instruct (embedded), LoRA r=8, all-linear",
        "precision": "bf16 autocast" if a.bf16 else "fp32",
        "results": results,
        "all_within_tolerance": all(r["same_curve_within_tolerance"] for r in results),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cores_usable": len(os.sched_getaffinity(0)), "load_1m_at_end": round(load[0], 2),
                    "cpu_flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma", "sse4")))},
        "note": "shared machine: the time ratio is noisy (other sessions use the same cores); the loss curves "
                "are deterministic up to each rank's own dropout stream",
        "command": "python benchmarks/ddp_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(doc, a.out, echo=False)
    print(json.dumps({"all_within_tolerance": doc["all_within_tolerance"],
                      "tasks": {r["task"]: {k: r[k] for k in ("max_abs_train_loss_difference",
                                                              "max_abs_val_loss_difference", "run_log_records",
                                                              "train_time_ratio_two_over_one")}
                                for r in results}}, indent=2))
    return 0 if doc["all_within_tolerance"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
