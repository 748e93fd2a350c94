"""Side by side: a sample of rows with every variant's answer to read, and the user's A / B / tie votes on
them, counted as a human win rate with its CI (the seed's qualitative evaluation, made countable)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tools.errors import InputError
from tools.evaluate import predictions as P
from tools.evaluate.config import EvalConfig
from tools.fileio import sha256_file
from tools.prompt.variants import Variant, base_variant, prompt_baseline_run, prompt_variant, tuned_variant
from tools.scoring.rows import decide_scoring, head, load_test, score_texts
from tools.scoring.win_rate import VOTES, WinRate, win_rate
from tools.types import Example, ProgressCallback

Vote = Literal["a", "b", "tie"]


def _pick_sample(examples: Sequence[Example], ok: dict[str, list[float]], n: int, seed: int) -> dict[int, list[str]]:
    """Indices to show, each with why: edge cases first (longest inputs, rarest labels, flips), then random."""
    picked: dict[int, list[str]] = {}
    quota = max(1, n // 6)

    def take(idxs: Sequence[int], why: str, k: int) -> None:
        for i in idxs[:k]:
            if len(picked) >= n and i not in picked:
                return
            picked.setdefault(i, []).append(why)

    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_text))
    take(order, "longest input", quota)
    counts = Counter(e.output_text for e in examples)
    rare = sorted(counts, key=lambda lab: (counts[lab], lab))
    first_of: dict[str, int] = {}
    for i, e in enumerate(examples):
        first_of.setdefault(e.output_text, i)
    if len(counts) > 1:
        take([first_of[lab] for lab in rare], "rare label", quota)
    if "base" in ok:
        b, t = ok["base"], ok["tuned"]
        take([i for i in range(len(examples)) if b[i] < 1 <= t[i]], "base wrong, tuned right", quota)
        take([i for i in range(len(examples)) if t[i] < 1 <= b[i]], "base right, tuned wrong", quota)
    rest = [i for i in range(len(examples)) if i not in picked]
    random.Random(seed).shuffle(rest)
    take(rest, "random", max(0, n - len(picked)))
    return picked


@dataclass
class CompareResult:
    """``compare``'s result; ``to_dict()`` keeps the JSON keys. ``vote_a``/``vote_b`` name the two columns a
    vote compares (the prompt baseline, else the base model, against the tuned model)."""

    run_id: str | None
    test: str
    test_sha256: str
    metric: str
    n: int
    rows: list[dict[str, Any]]
    sampled_from: int
    test_rows: int
    limit: int | None
    columns: list[str]
    vote_a: str | None = None
    vote_b: str | None = None
    rule_ids: list[str] = field(default_factory=lambda: ["eval.manual"])

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def compare(run_id: str, test: str | Path, *, n: int = 30, config: EvalConfig | None = None,
            on_progress: ProgressCallback | None = None, limit: int | None = None) -> CompareResult:
    """A side-by-side sample: input, expected, base, prompt baseline and tuned answers, with match marks.

    Reuses the predictions of ``evaluate_test`` when the test file was already scored (with the same ``limit``:
    the first N rows); otherwise generates. The metric is the one the test file's profile decides.
    """
    from tools.runlog import RunLog

    cfg = config or EvalConfig()
    tuned = tuned_variant(run_id)
    rid = tuned.source_run
    all_examples = load_test(test)
    examples = head(all_examples, limit)
    test_sha = sha256_file(test)
    refs = [e.output_text for e in examples]
    scoring = decide_scoring(all_examples, metric=cfg.metric, max_new_tokens=cfg.max_new_tokens)
    variants: list[tuple[str, str, Variant | None]] = [("tuned", "test", tuned), ("base", "test_base", None)]
    prompt_run = prompt_baseline_run()
    if prompt_run is not None:
        variants.append(("prompt_baseline", "test_prompt_baseline", None))
    texts: dict[str, list[str]] = {}
    ok: dict[str, list[float]] = {}
    for role, kind, var in variants:
        preds = P.logged_predictions(rid, kind, test_sha, len(examples))
        if preds is None:
            try:
                var = var or (base_variant(rid) if role == "base" or prompt_run is None
                              else prompt_variant(prompt_run["run_id"]))
            except InputError:
                continue
            preds = P.predict(var, var.prompts(examples), max_new_tokens=scoring.max_new_tokens,
                              batch_size=cfg.batch_size, device=cfg.device, on_progress=on_progress)
        texts[role] = preds.texts
        ok[role] = score_texts(preds.texts, examples, scoring, seed=cfg.seed).per_item
    picked = _pick_sample(examples, ok, n, cfg.seed)
    rows = []
    for i in sorted(picked):
        row: dict[str, Any] = {"idx": i, "input": examples[i].input_text, "expected": refs[i], "why": picked[i]}
        for role in ("base", "prompt_baseline", "tuned"):
            row[role] = texts[role][i] if role in texts else None
            row[f"{role}_ok"] = bool(ok[role][i] >= 1) if role in ok else None
        rows.append(row)
    columns: list[str] = [r for r in ("base", "prompt_baseline", "tuned") if r in texts]
    vote_a = "prompt_baseline" if "prompt_baseline" in texts else "base" if "base" in texts else None
    result = CompareResult(run_id=rid, test=str(test), test_sha256=test_sha, metric=scoring.metric, n=len(rows),
                           rows=rows, sampled_from=len(examples), test_rows=len(all_examples), limit=limit,
                           columns=columns, vote_a=vote_a, vote_b="tuned")
    RunLog().log_evaluation(rid, "compare", metric=scoring.metric, value=None, n=len(rows), test_sha256=test_sha,
                            details=result.to_dict())
    return result


# ---------------------------------------------------------------------------------------------- votes

def record_vote(result: CompareResult, idx: int, vote: str) -> str:
    """Store the user's vote on row ``idx`` of a side-by-side result (A = ``vote_a``, B = ``vote_b``)."""
    from tools.runlog import RunLog

    v = vote.strip().lower()
    if v not in VOTES:
        raise InputError(f"unknown vote {vote!r}", where="vote", fix="vote a, b or tie")
    row = next((r for r in result.rows if r["idx"] == idx), None)
    if row is None or result.vote_a is None or result.vote_b is None:
        raise InputError(f"row {idx} is not in this side-by-side sample", where="vote")
    return RunLog().log_vote(run_id=result.run_id, test_sha256=result.test_sha256, idx=idx,
                             a_variant=result.vote_a, b_variant=result.vote_b, vote=v, input=row["input"],
                             a_text=row.get(result.vote_a) or "", b_text=row.get(result.vote_b) or "")


def votes_for(run_id: str | None, test_sha256: str, *, a_variant: str | None = None,
              b_variant: str = "tuned") -> dict[int, str]:
    """The user's latest vote per row for this run and test file (what a resumed session starts from)."""
    from tools.runlog import RunLog

    rows = RunLog().query(
        "SELECT idx, vote, a_variant FROM votes WHERE run_id IS NOT DISTINCT FROM ? AND test_sha256 = ? AND "
        "b_variant = ? ORDER BY created_at", [run_id, test_sha256, b_variant])
    out: dict[int, str] = {}
    for r in rows:
        if a_variant is None or r["a_variant"] == a_variant:
            out[int(r["idx"])] = r["vote"]  # later votes replace earlier ones
    return out


def pending_votes(result: CompareResult) -> list[dict[str, Any]]:
    """Rows of the sample still without a vote (a resumed session asks only these)."""
    done = votes_for(result.run_id, result.test_sha256, a_variant=result.vote_a, b_variant=result.vote_b or "")
    return [r for r in result.rows if r["idx"] not in done]


def human_win_rate(run_id: str | None, test_sha256: str, *, a_variant: str | None = None,
                   b_variant: str = "tuned") -> WinRate:
    """The tuned model's win rate in the user's votes, with its CI."""
    votes = votes_for(run_id, test_sha256, a_variant=a_variant, b_variant=b_variant)
    return win_rate([votes[i] for i in sorted(votes)])
