"""The embedded model as a rubric judge on MBPP candidates, checked against executed tests (issue 14, done-when).

Candidates: for N MBPP problems, the reference solution (half the rows) or another problem's reference
solution (a real, plausible program that solves the wrong task: the other half). Ground truth: the candidate
run against the problem's tests in the sandbox. The judge (any model spec; default the embedded SmolLM2)
gives PASS/FAIL per row; the script reports its pass rate, its agreement with the tests (% and Cohen's kappa
with n) and whether that clears the knowledge floor (eval.judge.agreement_floor). Whatever the numbers are,
they are written to ``benchmarks/results/judge_agreement_mbpp.json``.

    PYTHONPATH=. python benchmarks/judge_agreement_mbpp.py --rows 60
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--judge", default="smollm2-135m-instruct")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "judge_agreement_mbpp.json"))
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    from eval_metrics_speed import machine, save_result

    from tools.scoring import judge as J
    from tools.scoring import sandbox as S

    rows = [json.loads(line) for line in (REPO.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl").read_text()
            .splitlines() if line.strip()][: args.rows]
    rng = random.Random(0)
    candidates = []
    for i, r in enumerate(rows):
        if i % 2 == 0:
            candidates.append(r["code"])
        else:
            other = rows[(i + 1 + rng.randrange(len(rows) - 1)) % len(rows)]
            candidates.append(other["code"])
    outcomes = S.run_tests_many(candidates, [r["test_list"] for r in rows],
                                setups=[r.get("test_setup_code") or "" for r in rows])
    truth = ["PASS" if o.passed else "FAIL" for o in outcomes]
    t0 = time.perf_counter()
    judge = J.Judge(args.judge)
    res = J.rubric(judge, [r["text"] + "\nTests:\n" + "\n".join(r["test_list"]) for r in rows], candidates,
                   [r["code"] for r in rows])
    seconds = time.perf_counter() - t0
    ag = J.agreement(res.verdicts, truth, ground_truth="executed tests")
    result = {
        "judge": args.judge, "mode": "rubric (verdict words scored by log-likelihood)", "rows": len(rows),
        "executed_pass_rate": truth.count("PASS") / len(truth),
        "judge_pass_rate": res.rate, "judge_pass_rate_ci95": list(res.ci95),
        "judge_says_pass": res.verdicts.count("PASS"), "judge_says_fail": res.verdicts.count("FAIL"),
        "agreement": ag.to_dict(), "seconds": round(seconds, 1),
        "reading": ("the judge clears the floor: its scores may be used" if ag.trusted else
                    "the judge does NOT clear the floor: its scores are reported, not used"),
        "machine": machine(), "note": args.note,
    }
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
