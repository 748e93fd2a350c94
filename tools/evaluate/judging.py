"""A judge model on a tuned run's test answers, checked against the user's ground truth (executed tests or
side-by-side votes); the verdicts and the agreement go to the run log."""

from __future__ import annotations

from tools.errors import InputError
from tools.scoring.judge import Judge, JudgeResult, Mode, agreement, pairwise, rubric
from tools.types import ProgressCallback


def judge_run(run_id: str, test: str, judge_model: str, *, mode: Mode = "rubric", limit: int | None = None,
              base_url: str | None = None, on_progress: ProgressCallback | None = None) -> JudgeResult:
    """Judge a tuned run's answers on a test file, and check the judge against the user's ground truth.

    rubric: the tuned model's answers; on a test set with tests, the executed tests are the ground truth.
    pairwise: the prompt baseline's (else the base model's) answers as A, the tuned model's as B; the user's
    side-by-side votes are the ground truth. Answers logged by ``eval test`` are reused. Everything is logged.
    """
    from tools.evaluate import predictions as P
    from tools.evaluate.compare import votes_for
    from tools.evaluate.config import EvalConfig
    from tools.fileio import sha256_file
    from tools.prompt.variants import base_variant, prompt_baseline_run, prompt_variant, tuned_variant
    from tools.runlog import RunLog
    from tools.scoring.rows import decide_scoring, head, load_test, score_texts

    if mode not in ("rubric", "pairwise"):
        raise InputError(f"unknown judge mode {mode!r}", where="--mode", fix="rubric or pairwise")
    tuned = tuned_variant(run_id)
    rid = tuned.source_run
    examples = head(load_test(test), limit)
    sha = sha256_file(test)
    scoring = decide_scoring(load_test(test), metric=None, max_new_tokens=None)
    cfg = EvalConfig()

    def answers(role: str, kind: str) -> list[str]:
        got = P.logged_predictions(rid, kind, sha, len(examples))
        if got is not None:
            return got.texts
        if role == "tuned":
            var = tuned
        elif role == "prompt_baseline":
            run = prompt_baseline_run()
            if run is None:
                raise InputError("no prompt baseline", where="--mode pairwise")
            var = prompt_variant(run["run_id"])
        else:
            var = base_variant(rid)
        return P.predict(var, var.prompts(examples), max_new_tokens=scoring.max_new_tokens,
                         batch_size=cfg.batch_size, on_progress=on_progress).texts

    judge = Judge(judge_model, base_url=base_url)
    requests = [e.input_text for e in examples]
    refs = [e.output_text for e in examples]
    b = answers("tuned", "test")
    if mode == "rubric":
        res = rubric(judge, requests, b, refs, on_progress=on_progress)
        if scoring.metric == "pass_at_1":
            executed = score_texts(b, examples, scoring).per_item
            truth: list[str | None] = ["PASS" if x >= 1 else "FAIL" for x in executed]
            res.agreement = agreement(res.verdicts, truth, ground_truth="executed tests")
    else:
        a_role = "prompt_baseline" if prompt_baseline_run() is not None else "base"
        a = answers(a_role, f"test_{a_role}")
        res = pairwise(judge, requests, a, b, refs, on_progress=on_progress)
        votes = votes_for(rid, sha, b_variant="tuned")
        if votes:
            res.agreement = agreement(res.verdicts, [votes.get(i) for i in range(len(examples))],
                                      ground_truth="side-by-side votes")
    log = RunLog()
    eval_id = log.log_evaluation(rid, f"judge_{mode}", metric=res.metric, value=res.rate, ci=list(res.ci95),
                                 n=res.valid, test_sha256=sha, details=res.to_dict())
    log.log_judge_verdicts(eval_id, rid, judge.name, mode, res.rows())
    return res
