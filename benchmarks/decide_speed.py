"""Steps 1 and 2 decided early (sequential stopping + racing the variants) against the full sweep, in one run.

For each data set (banking77 labels, MBPP code, AQuA reasoning) the advisor's prompt evaluation runs twice on
the same test rows and the same loaded model (the embedded SmolLM2): ``full=True`` (every prompt variant on
every row, as before issue 25) and the default (rules ``eval.sequential.stop`` and ``eval.race.halving``).
It reports both decisions (Step 1: does the plain prompt reach the bar; Step 2: does the best variant), the
rows generated and the time ratio, and writes ``benchmarks/results/decide_speed.json``.

    PYTHONPATH=. python benchmarks/decide_speed.py --rows banking77=300,mbpp=100,aqua=100

The advisor's call is mimicked: ``variants=True``, no few-shot pool (the test split only), the default bar.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))


def write_set(name: str, rows: int, folder: Path) -> Path:
    """The first ``rows`` test rows of a shared data set as a JSONL test file."""
    out = folder / f"{name}_test.jsonl"
    if name == "banking77":
        from tools.data.formats import load_examples

        recs = [{"input": e.input_text, "output": e.output_text}
                for e in load_examples(DATA / "banking77" / "test.csv")[:rows]]
    elif name == "mbpp":
        sys.path.insert(0, str(REPO / "benchmarks"))
        from mbpp_short_run import chat_row

        raw = [json.loads(x) for x in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines() if x.strip()]
        recs = [chat_row(r) for r in raw if 11 <= r["task_id"] <= 510][:rows]
    elif name == "aqua":
        raw = [json.loads(x) for x in (DATA / "aqua" / "test.json").read_text().splitlines() if x.strip()][:rows]
        recs = [{"input": r["question"] + "\nOptions: " + " ".join(r["options"]) + "\nReply with the letter.",
                 "output": r["correct"]} for r in raw]
    else:
        raise SystemExit(f"unknown data set {name!r}: banking77, mbpp or aqua")
    out.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return out


def run_once(test: Path, *, full: bool, cot_max_new_tokens: int, max_new_tokens: int | None,
             choice: bool) -> tuple[dict[str, Any], float]:
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval

    cfg = PromptEvalConfig(test=str(test), variants=True, full=full, cot_max_new_tokens=cot_max_new_tokens,
                           max_new_tokens=max_new_tokens, choice=choice)
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_prompt_eval(cfg).to_dict()
    # CPU seconds of this process (all its threads): on a shared machine, less at the mercy of other work
    res["_cpu_s"] = time.process_time() - c0
    return res, time.perf_counter() - t0


def summary(res: dict[str, Any], seconds: float) -> dict[str, Any]:
    race = res.get("race") or {}
    return {"seconds": round(seconds, 1), "cpu_seconds": round(res["_cpu_s"], 1), "baseline_quality": res["quality"], "baseline_ci95": res["ci95"],
            "baseline_n": res["n"], "baseline_reaches_bar": res["baseline_reaches_bar"], "best": res["best"],
            "best_quality": res["best_quality"], "best_ci95": res["best_ci95"], "reaches_bar": res["reaches_bar"],
            "metric": res["metric"], "share": res["share"], "generations": race.get("generations"),
            "decision": res.get("decision"), "dropped": [(d["name"], d["at_n"]) for d in race.get("dropped", [])]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="banking77=300,mbpp=100,aqua=100",
                    help="data sets and their test rows, e.g. banking77=60,mbpp=40")
    ap.add_argument("--cot-max-new-tokens", type=int, default=192, help="the chain-of-thought variant's length")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="cap every other reply (default: from the references, as the advisor does)")
    ap.add_argument("--first-batch", type=int, default=None,
                    help="override the rule's first batch (default: knowledge/decide.yaml's)")
    ap.add_argument("--choice", action="store_true",
                    help="also score the plain prompt in choice mode (label sets), as the advisor does")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "decide_speed.json"))
    ap.add_argument("--note", default="", help="free text stored with the result (e.g. machine load)")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import machine, save_result

    from tools import models
    from tools.prompt import decide

    rule = decide.stop_rule()
    if args.first_batch:
        rule = dataclasses.replace(rule, first_batch=args.first_batch)
        decide.stop_rule = lambda: rule  # type: ignore[assignment]
    models.load_cached(models.resolve(None))  # load once, outside both timings
    sets: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.rows.split(","):
            name, _, n = item.partition("=")
            test = write_set(name.strip(), int(n or 100), Path(tmp))
            full, full_s = run_once(test, full=True, cot_max_new_tokens=args.cot_max_new_tokens,
                                    max_new_tokens=args.max_new_tokens, choice=args.choice)
            early, early_s = run_once(test, full=False, cot_max_new_tokens=args.cot_max_new_tokens,
                                      max_new_tokens=args.max_new_tokens, choice=args.choice)
            a, b = summary(full, full_s), summary(early, early_s)
            sets[name] = {
                "rows": full["n_total"], "looks": early["sequential"]["looks"], "full_sweep": a, "decided_early": b,
                "same_step1_decision": a["baseline_reaches_bar"] == b["baseline_reaches_bar"],
                "same_step2_decision": a["reaches_bar"] == b["reaches_bar"],
                "same_best_variant": a["best"] == b["best"],
                "time_ratio_full_over_early": round(full_s / early_s, 2) if early_s else None,
                "cpu_ratio_full_over_early": round(full["_cpu_s"] / early["_cpu_s"], 2) if early["_cpu_s"] else None,
            }
            print(f"{name}: full {full_s:.1f}s, early {early_s:.1f}s; {b['decision']}", file=sys.stderr)
            save_result(_result(args, rule, sets, machine()), args.out, echo=False)  # each set as it is done
    save_result(_result(args, rule, sets, machine()), args.out)
    return 0


def _result(args: argparse.Namespace, rule: Any, sets: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    return {
        "benchmark": "Steps 1+2: sequential stopping + racing (default) vs the full sweep (--full), same rows",
        "rule": {"stop": rule.rule_id, "race": rule.race_rule_id, "alpha": rule.alpha,
                 "first_batch": rule.first_batch, "growth": rule.growth, "keep_fraction": rule.keep_fraction},
        "settings": {"rows": args.rows, "cot_max_new_tokens": args.cot_max_new_tokens,
                     "max_new_tokens": args.max_new_tokens, "choice_mode": args.choice},
        "sets": sets, "model": "SmolLM2-135M-Instruct (embedded)", "machine": machine,
        "note": args.note or "shared 2-core CPU (several engineers at once): absolute times inflated; both paths "
                              "ran in this process on the same loaded model, so the ratio is the finding",
    }


if __name__ == "__main__":
    raise SystemExit(main())
