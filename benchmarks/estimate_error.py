"""How far the prompt baseline's time estimate is from the time it takes, on three task shapes (issue 26).

For labels (banking77), code (mbpp) and reasoning (aqua), in that order, in a fresh run log:
1. calibration runs: the prompt baseline (plain prompt + the Step 2 variants, ``--full`` so that every prompt
   scores every row and the work is known in advance) on ``--calibrate`` rows (two sizes, so that a job's
   fixed cost is told apart from its cost per row); each time is recorded as the advisor records it
   (``tools.estimate_time.record``: units, task shape, the other work's load when it started);
2. the estimates the advisor would make *now* for a run on the next ``--rows`` rows (other rows of the same
   set), then that run, timed:
   - ``estimate_own_shape``: this machine's pace on this shape (the calibration runs), scaled by the load now;
   - ``estimate_other_shapes``: before this shape's calibration, the shapes measured earlier carried over by
     the cost table's ratio between shapes (none for the first shape);
   - ``estimate_table``: the cost table alone, as on a machine that measured nothing.
The error is (estimate - actual) / actual; the goal is within +-30% for the estimate from this machine's pace.

    PYTHONPATH=. python benchmarks/estimate_error.py [--calibrate 4,8] [--rows 16]
        [--out benchmarks/results/estimate_error.json]

The load is recorded with every run (the estimates are scaled by it); run it on an otherwise idle machine for
numbers that say how good the estimate is rather than how busy the machine was.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = REPO.parent / "shared" / "data"
SHAPE_KIND = {"labels": "label", "code": "code", "reasoning": "reasoning"}  # the output kind each set profiles as


def chat(user: str, assistant: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def shape_rows(shape: str, start: int, n: int) -> list[dict[str, Any]]:
    """Rows ``start`` .. ``start + n`` of a shape's shared data set, as chat examples."""
    if shape == "labels":
        with (DATA / "banking77" / "test.csv").open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))[start:start + n]
        return [chat(r["text"], r["category"]) for r in rows]
    if shape == "code":
        lines = (DATA / "mbpp" / "mbpp.jsonl").read_text(encoding="utf-8").splitlines()[start:start + n]
        return [chat(d["text"], d["code"]) for d in map(json.loads, lines)]
    lines = (DATA / "aqua" / "test.json").read_text(encoding="utf-8").splitlines()[start:start + n]
    return [chat(d["question"] + "\nOptions: " + " ".join(d["options"]) + "\nEnd with 'Answer: LETTER'.",
                 d["rationale"].strip() + "\nAnswer: " + d["correct"]) for d in map(json.loads, lines)]


def timed_run(test: Path, kind: str) -> tuple[float, int, str | None, Any]:
    """One full prompt baseline: (seconds, row-variants scored, output kind, the load pace before it)."""
    from tools.estimate_time import prompt_pace, row_variants
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval

    pace = prompt_pace(shape=kind)  # taken before the run: its load is the load the run started under
    t0 = time.perf_counter()
    result = run_prompt_eval(PromptEvalConfig(test=str(test), variants=True, full=True, task_kind=kind))
    took = time.perf_counter() - t0
    doc = result.to_dict()
    return took, row_variants(doc), doc.get("output_kind"), pace


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibrate", default="4,8", help="rows of each shape's calibration runs")
    ap.add_argument("--rows", type=int, default=16, help="rows of each shape's estimated run")
    ap.add_argument("--shapes", default="labels,code,reasoning")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "estimate_error.json"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="tunewise-estimate-") as home:
        os.environ["TUNEWISE_HOME"] = home  # a fresh run log: only this benchmark's runs are measured
        from eval_metrics_speed import machine, save_result

        from tools.estimate_time import _prompt_table, load_now, prompt_pace, record

        # Warm-up, not measured: the model's load and the first calls' one-time costs are paid once per process
        # (the TUI and a scripted advise keep the model loaded), not per row.
        warm = Path(home) / "warm-up.jsonl"
        warm.write_text(json.dumps(shape_rows("labels", 1000, 1)[0]) + "\n", encoding="utf-8")
        timed_run(warm, "label")
        shapes = []
        for shape in args.shapes.split(","):
            kind = SHAPE_KIND[shape]
            other = prompt_pace(shape=kind)  # before this shape ran: other shapes' pace (or the table)
            sizes = [int(x) for x in args.calibrate.split(",")]
            calibration = []
            for size in sizes:
                calib = Path(home) / f"{shape}-calibrate-{size}.jsonl"
                calib.write_text("".join(json.dumps(r) + "\n" for r in shape_rows(shape, 0, size)), encoding="utf-8")
                took, units, got_kind, pace_before = timed_run(calib, kind)
                record("prompt_eval", estimate_s=None, actual_s=took, units=units, pace=pace_before,
                       shape=got_kind or kind)
                calibration.append({"rows": size, "seconds": round(took, 1), "row_variants": units,
                                    "other_load_at_start": pace_before.load_1m})
            per_row = units // sizes[-1]  # prompts scored per row (the plain prompt + the variants)
            start = max(sizes)

            test = Path(home) / f"{shape}.jsonl"
            test.write_text("".join(json.dumps(r) + "\n" for r in shape_rows(shape, start, args.rows)),
                            encoding="utf-8")
            planned = args.rows * per_row
            own = prompt_pace(shape=kind)
            load, cpus = load_now()
            estimates = {"estimate_own_shape": own.seconds(planned),
                         "estimate_other_shapes": other.seconds(planned) if other.source == "measured" else None,
                         "estimate_table": planned * _prompt_table(kind)}
            actual, scored, _, pace_run = timed_run(test, kind)
            record("prompt_eval", estimate_s=estimates["estimate_own_shape"], actual_s=actual, units=scored,
                   pace=pace_run, shape=kind)
            row: dict[str, Any] = {
                "shape": shape, "output_kind": got_kind, "calibration": calibration, "rows": args.rows, "row_variants": planned,
                "row_variants_scored": scored, "actual_s": round(actual, 1), "other_load_at_start": load, "cpus": cpus,
                "pace_note": own.note()}
            for k, v in estimates.items():
                row[k + "_s"] = None if v is None else round(v, 1)
                row["error_" + k.removeprefix("estimate_")] = None if v is None else round((v - actual) / actual, 3)
            shapes.append(row)
            print(json.dumps(row), flush=True)

        within = [abs(s["error_own_shape"]) <= 0.30 for s in shapes]
        save_result({
            "benchmark": "estimate_error",
            "what": "the prompt baseline's time estimate against the time it took, three task shapes: from this "
                    "machine's pace on the same shape (calibration run), from other shapes carried over by the "
                    "cost table, and from the cost table alone",
            "command": " ".join(["PYTHONPATH=. python benchmarks/estimate_error.py", *sys.argv[1:]]),
            "calibration_rows": args.calibrate, "rows_per_shape": args.rows, "shapes": shapes,
            "goal": "|error_own_shape| <= 0.30", "within_goal": sum(within), "of": len(within),
            "machine": machine()}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
