"""MBPP end to end through the CLI, as a user would run it: the prompt's pass@1 from executed tests, a short LoRA
run on the MBPP train slice, and the tuned model against the prompt on the SAME test rows (paired difference).

Issue 14's "done when": code is measured by running it, and a tuned model is compared with the prompt row by row.
Steps (each a `tunewise ... --json` command in a fresh TUNEWISE_HOME):

1. write the slices as chat JSONL: user = the task and its first test (the standard MBPP prompt), assistant = the
   reference solution in a ```python block, ``tests`` = the row's three asserts. Train: task_ids 601-974 (the
   usual MBPP train split); test: the first N rows of the test split (task_ids 11-510);
2. `tunewise prompt-eval --test test.jsonl --system ...` (pass@1, decided from the rows' tests);
3. `tunewise train` with the CPU check-run recipe (LoRA, 8 x 1 batch, hp.lr.check_run's 1e-3);
4. `tunewise eval test --run ID --test test.jsonl`: the tuned model, the base model and the prompt on the same
   rows, each pass@1 with its CI, and the paired differences.

    PYTHONPATH=. python benchmarks/mbpp_short_run.py --test-rows 20 --max-steps 30

Writes benchmarks/results/mbpp_short_run.json. Slow on a CPU (minutes): every answer is up to 256 generated tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SYSTEM = "You are an expert Python programmer. Reply with the function in one ```python code block."


def chat_row(r: dict[str, Any]) -> dict[str, Any]:
    code = r["code"].replace("\r\n", "\n").strip()
    user = f"{r['text']}\nYour code should pass this test:\n{r['test_list'][0]}"
    return {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                         {"role": "assistant", "content": f"```python\n{code}\n```"}],
            "tests": list(r["test_list"]), "task_id": r["task_id"]}


def write_slices(out: Path, test_rows: int) -> tuple[Path, Path]:
    rows = [json.loads(line) for line in (REPO.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl").read_text()
            .splitlines() if line.strip()]
    train = [chat_row(r) for r in rows if 601 <= r["task_id"] <= 974]
    test = [chat_row(r) for r in rows if 11 <= r["task_id"] <= 510][:test_rows]
    tp, sp = out / "mbpp_train.jsonl", out / "mbpp_test.jsonl"
    tp.write_text("".join(json.dumps(r) + "\n" for r in train))
    sp.write_text("".join(json.dumps(r) + "\n" for r in test))
    return tp, sp


def tw(env: dict[str, str], *args: str) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "cli", *args, "--json"], env=env, capture_output=True, text=True,
                       check=False)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"tunewise {shlex.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout), took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test-rows", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "mbpp_short_run.json"))
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import machine, save_result

    work = Path(tempfile.mkdtemp(prefix="tw-mbpp-"))
    env = {**os.environ, "TUNEWISE_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    train, test = write_slices(work, args.test_rows)
    pe, pe_s = tw(env, "prompt-eval", "--test", str(test), "--system", SYSTEM)
    print(f"prompt: {pe['metric']} {pe['quality']:.1%} {pe['ci95']} ({pe_s:.0f} s)", flush=True)
    tr, tr_s = tw(env, "train", "--train", str(train), "--method", "lora", "--max-steps", str(args.max_steps),
                  "--batch-size", str(args.batch_size), "--grad-accum", "1", "--lr", str(args.lr),
                  "--eval-steps", str(max(1, args.max_steps // 3)), "--max-seq-length", "512")
    print(f"train: {tr['status']} {tr['steps']} steps, best val loss {tr.get('best_val_loss')} ({tr_s:.0f} s)",
          flush=True)
    ev, ev_s = tw(env, "eval", "test", "--run", tr["run_id"], "--test", str(test))
    vs = ev["vs"]["prompt_baseline"] or {}
    print(f"tuned: {ev['metric']} {ev['quality']:.1%} vs prompt {vs.get('quality')}: diff {vs.get('diff')} "
          f"{vs.get('diff_ci95')} ({ev_s:.0f} s)", flush=True)
    result = {
        "benchmark": "mbpp_short_run",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "data": {"train_rows": sum(1 for _ in train.open()), "test_rows": args.test_rows,
                 "train_task_ids": "601-974", "test_task_ids": f"the first {args.test_rows} of 11-510"},
        "prompt_eval": {"metric": pe["metric"], "quality": pe["quality"], "ci95": pe["ci95"], "n": pe["n"],
                        "python_syntax": pe.get("python_syntax"), "seconds": round(pe_s, 1)},
        "train": {"run_id": tr["run_id"], "status": tr["status"], "steps": tr["steps"], "method": "lora",
                  "learning_rate": args.lr, "batch": f"{args.batch_size} x 1",
                  "best_val_loss": tr.get("best_val_loss"), "train_seconds": tr.get("train_seconds"),
                  "seconds": round(tr_s, 1)},
        "evaluate": {"metric": ev["metric"], "n": ev["n"], "tuned": {"quality": ev["quality"], "ci95": ev["ci95"]},
                     "prompt_baseline": vs, "base": ev["vs"].get("base"), "seconds": round(ev_s, 1)},
        "paired_tuned_minus_prompt": {"diff": vs.get("diff"), "diff_ci95": vs.get("diff_ci95"),
                                      "same_rows": ev["n"] == pe["n"]},
        "machine": machine(),
        "note": args.note,
    }
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
