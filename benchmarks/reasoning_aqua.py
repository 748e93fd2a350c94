"""A reasoning task with a final answer, on real data: AQuA-RAT, scored by its final answer (issue 22, item 1).

The test file's first N rows (``../shared/data/aqua/test.json``: question + five options, a worked rationale, the
correct letter) are profiled (kind ``reasoning``, the answer marker and its share of rows), then the prompt
baseline runs as a user would get it: chain of thought with worked examples drawn from ``dev.json``, the
generation length from the references. Reported: ``final_answer_accuracy`` strict and flexible, each with its
Wilson 95% CI, beside what the same replies scored under the metric the profile chose before (chrF, a
similarity), and the chance level of a five-option question (the baseline measured in the same run is the
ratio to chance). With ``--max-steps N`` a short LoRA run on ``dev.json`` is scored on the same rows; the shared
2-core CPU of the session that wrote the result file allowed the prompt side only (``train`` is then null).

    PYTHONPATH=. python benchmarks/reasoning_aqua.py --rows 20

Writes benchmarks/results/reasoning_aqua.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
AQUA = REPO.parent / "shared" / "data" / "aqua"
CHANCE = 0.2  # five options, one right


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20, help="test rows (the first N of test.json)")
    ap.add_argument("--shots", type=int, default=0,
                    help="worked examples in the prompt (0: the tool's default for reasoning, dt.step1.few_shot)")
    ap.add_argument("--sequential", action="store_true",
                    help="one row at a time (model.generate): faster than the batched path's exact near-tie "
                         "checks when replies are long worked solutions on a busy CPU")
    ap.add_argument("--model", default=None, help="model spec (default: the embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--max-steps", type=int, default=0, help="LoRA steps on dev.json (0: the prompt side only)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "reasoning_aqua.json"))
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="tw-aqua-"))
    os.environ.setdefault("TUNEWISE_HOME", str(work / "home"))
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import machine, save_result

    from tools.data.formats import load_examples
    from tools.data.profile import detect_profile
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval
    from tools.runlog import RunLog
    from tools.scoring import metrics as M

    test = work / "aqua_test.jsonl"
    test.write_text("".join((AQUA / "test.json").read_text().splitlines(keepends=True)[: args.rows]))
    profile = detect_profile(load_examples(AQUA / "test.json"))
    print(f"profile of test.json: {profile.summary()}", flush=True)

    t0 = time.perf_counter()
    # The generation length from the whole file's references, as for the full test set (a few rows' p95 is
    # one long rationale).
    res = run_prompt_eval(PromptEvalConfig(str(test), shots_from=str(AQUA / "dev.json"), model=args.model,
                                           shots=args.shots, sequential=args.sequential,
                                           max_new_tokens=M.max_new_tokens_for(profile)))
    prompt_s = time.perf_counter() - t0
    rows = RunLog().query("SELECT expected, prediction FROM predictions WHERE run_id = ? ORDER BY idx",
                          [res.run_id])
    chrf = M.score([r["prediction"] for r in rows], [r["expected"] for r in rows], "chrf", companions=False)
    print(f"prompt: {res.metric} strict {res.quality:.1%} {res.ci95}, flexible "
          f"{res.extra['final_answer_flexible']:.1%} {res.extra['final_answer_flexible_ci95']}; the same replies "
          f"by chrF {chrf.quality:.3f}; chance {CHANCE:.0%} ({prompt_s:.0f} s)", flush=True)

    train: dict[str, Any] | None = None
    if args.max_steps > 0:
        from tools.evaluate import evaluate_test
        from tools.train import TrainConfig
        from tools.train import train as train_run

        t1 = time.perf_counter()
        tr = train_run(TrainConfig(train=str(AQUA / "dev.json"), method="lora", max_steps=args.max_steps,
                                   model=args.model or "smollm2-135m-instruct"))
        ev = evaluate_test(tr.run_id, test)
        train = {"run_id": tr.run_id, "steps": args.max_steps, "tuned": {"quality": ev.quality, "ci95": ev.ci95},
                 "vs_prompt": ev.vs.get("prompt_baseline"), "seconds": round(time.perf_counter() - t1, 1)}

    result = {
        "benchmark": "reasoning_aqua",
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "data": {"source": "deepmind/AQuA test.json (Apache-2.0), ../shared/data/aqua", "test_rows": res.n,
                 "shots_from": "dev.json", "profile_of_test_json": profile.to_dict() | {"labels": []}},
        "prompt_eval": {
            "model": res.model, "metric": res.metric, "share": res.share, "max_new_tokens": res.max_new_tokens,
            "shots": res.variants[0]["shots"], "generation": res.latency_ms.get("mode"),
            "final_answer_strict": {"quality": res.quality, "ci95": res.ci95},
            "final_answer_flexible": {"quality": res.extra["final_answer_flexible"],
                                      "ci95": res.extra["final_answer_flexible_ci95"]},
            "same_replies_chrf": {"quality": round(chrf.quality, 4), "ci95": [round(x, 4) for x in chrf.ci95]},
            "chance": CHANCE, "strict_over_chance": round(res.quality / CHANCE, 3),
            "flexible_over_chance": round(res.extra["final_answer_flexible"] / CHANCE, 3),
            "seconds": round(prompt_s, 1), "run_id": res.run_id},
        "train": train,
        "train_note": None if train else "prompt side only (--max-steps 0): rerun with --max-steps 30 for "
                                         "the tuned side on the same rows",
        "machine": machine(),
        "note": args.note,
    }
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
