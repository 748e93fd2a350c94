"""A model as judge, checked against the user's own verdicts before its scores are trusted.

Any model tunewise can load judges: a local Hugging Face folder or the embedded model, ``run:ID``, or
``openai:MODEL`` through the OpenAI-compatible backend (``agent.prompt_backends`` registers it). Two modes:

- **rubric**: is this answer acceptable for this request, given the reference? ``PASS``/``FAIL`` per row;
  the pass rate is a share of acceptable answers with a Wilson 95% CI, comparable with a quality bar.
- **pairwise**: which of two answers is better? Each pair is judged twice with the positions swapped; a
  verdict that flips with the order is a tie. B's win rate (ties count half) with a bootstrap CI.

A local model does not generate its verdict: it scores each allowed verdict word by log-likelihood after the
prompt (choice mode), so every reply is a verdict. An endpoint generates text; a reply that names no verdict
is counted as ``invalid`` and left out, and a judge with no valid verdict at all is an error.

``agreement`` compares the judge's verdicts with the ground truth the user trusts (executed tests on code,
side-by-side votes, spot-check marks): share of agreement and Cohen's kappa with n. Knowledge rule
``eval.judge.agreement_floor`` sets the kappa (and n) above which the advisor may use the judge's scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tools.errors import InputError
from tools.generation import Generation
from tools.scoring import metrics as M
from tools.scoring.win_rate import win_rate
from tools.types import ProgressCallback

Mode = Literal["rubric", "pairwise"]
MODES: tuple[Mode, ...] = ("rubric", "pairwise")
RUBRIC_OPTIONS = ("PASS", "FAIL")
PAIR_OPTIONS = ("A", "B", "TIE")

RUBRIC_SYSTEM = ("You are a strict evaluator. Decide whether the ANSWER is acceptable for the REQUEST, using the "
                 "REFERENCE as an example of a correct answer (the answer need not match it word for word). "
                 "Reply with one word: PASS if it is acceptable, FAIL if it is not.")
PAIR_SYSTEM = ("You are a strict evaluator. Two answers, A and B, were given to the same REQUEST. Decide which "
               "one is better, using the REFERENCE as an example of a correct answer. Reply with one word: A, B, "
               "or TIE.")


def _clip(text: str, n: int = 3000) -> str:
    return text if len(text) <= n else text[:n] + " [...]"


def rubric_prompt(request: str, answer: str, reference: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": RUBRIC_SYSTEM},
            {"role": "user", "content": f"REQUEST:\n{_clip(request)}\n\nREFERENCE:\n{_clip(reference)}\n\n"
                                        f"ANSWER:\n{_clip(answer)}\n\nVerdict (PASS or FAIL):"}]


def pair_prompt(request: str, a: str, b: str, reference: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": PAIR_SYSTEM},
            {"role": "user", "content": f"REQUEST:\n{_clip(request)}\n\nREFERENCE:\n{_clip(reference)}\n\n"
                                        f"ANSWER A:\n{_clip(a)}\n\nANSWER B:\n{_clip(b)}\n\nBetter (A, B or TIE):"}]


def parse_verdict(reply: str, options: Sequence[str]) -> str | None:
    """The verdict a reply names: its first word among ``options`` (case-insensitive), else None."""
    for word in re.findall(r"[A-Za-z]+", reply or ""):
        w = word.upper()
        if w in options:
            return w
    return None


class Judge:
    """A loaded judge model. ``verdicts(prompts, options)`` returns (verdict or None, raw reply) per prompt."""

    def __init__(self, model: str, *, base_url: str | None = None, device: str | None = None) -> None:
        from tools import models

        self.spec = models.resolve(model)
        self.name = model
        self._backend: Any = None
        self._local: tuple[Any, Any] | None = None
        if self.spec.kind == "openai":
            from tools.prompt.evaluation import PromptEvalConfig, make_backend

            self._backend = make_backend(PromptEvalConfig(test="", model=model, base_url=base_url))
        else:
            self._local = models.load_cached(self.spec, device=device)

    def verdicts(self, prompts: Sequence[list[dict[str, str]]], options: Sequence[str], *,
                 on_progress: ProgressCallback | None = None) -> list[tuple[str | None, str]]:
        if self._local is not None:
            from tools import generation

            model, tok = self._local
            gens: list[Generation] = generation.choose(model, tok, prompts, list(options), on_progress=on_progress)
            return [(g.text, g.text) for g in gens]
        gens = self._backend.generate(prompts, max_new_tokens=8, on_progress=on_progress)
        return [(parse_verdict(g.text, options), g.text) for g in gens]


@dataclass
class Agreement:
    """The judge against the user's ground truth on the rows both judged: share agreeing and Cohen's kappa."""

    n: int
    agreement: float
    agreement_ci95: tuple[float, float]
    kappa: float
    ground_truth: str
    floor_kappa: float
    floor_n: int
    trusted: bool
    rule_id: str = "eval.judge.agreement_floor"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["agreement_ci95"] = list(self.agreement_ci95)
        return d


def agreement_floor() -> tuple[float, int]:
    """(minimum kappa, minimum n) of knowledge rule ``eval.judge.agreement_floor``."""
    import knowledge

    raw = knowledge.load().rule("eval.judge.agreement_floor").raw
    return float(raw["min_kappa"]), int(raw["min_n"])


def agreement(judge_verdicts: Sequence[str | None], truth: Sequence[str | None], *,
              ground_truth: str) -> Agreement:
    """Agreement of the judge with the user's verdicts, over rows where both exist (None means no verdict)."""
    if len(judge_verdicts) != len(truth):
        raise ValueError("agreement needs one judge verdict per ground-truth row")
    pairs = [(j, t) for j, t in zip(judge_verdicts, truth, strict=True) if j is not None and t is not None]
    n = len(pairs)
    agree = sum(1 for j, t in pairs if j == t)
    kappa = M.cohen_kappa([j for j, _ in pairs], [t for _, t in pairs]) if n else 0.0
    floor, floor_n = agreement_floor()
    return Agreement(n, agree / n if n else 0.0, M.wilson_ci(agree, n), kappa, ground_truth, floor, floor_n,
                     n >= floor_n and kappa >= floor)


@dataclass
class JudgeResult:
    """A judge's verdicts on a set. ``rate`` is the pass rate (rubric) or B's win rate (pairwise)."""

    judge: str
    mode: str
    n: int
    valid: int
    invalid: int
    rate: float
    ci95: tuple[float, float]
    verdicts: list[str | None]
    raw: list[str] = field(default_factory=list)
    swapped: list[str | None] = field(default_factory=list)
    agreement: Agreement | None = None
    metric: str = "judge_pass_rate"

    @property
    def share(self) -> bool:
        return self.mode == "rubric"

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("raw", "agreement")}
        d["ci95"] = list(self.ci95)
        d["share"] = self.share
        d["agreement"] = self.agreement.to_dict() if self.agreement else None
        return d

    def rows(self) -> list[dict[str, Any]]:
        """Per-row records for the run log's ``judge_verdicts``."""
        return [{"idx": i, "verdict": v, "swapped_verdict": self.swapped[i] if self.swapped else None,
                 "raw": self.raw[i] if i < len(self.raw) else None} for i, v in enumerate(self.verdicts)]


def _no_verdicts(judge: str, raws: Sequence[str]) -> InputError:
    example = next((r for r in raws if r), "")
    return InputError(f"the judge's replies are not verdicts (e.g. {example[:120]!r})", where=f"--judge {judge}",
                      fix="use a stronger judge model, or one that follows the one-word reply format")


def rubric(judge: Judge, requests: Sequence[str], answers: Sequence[str], references: Sequence[str], *,
           on_progress: ProgressCallback | None = None) -> JudgeResult:
    """PASS/FAIL per (request, answer, reference); the pass rate over valid verdicts with a Wilson 95% CI."""
    out = judge.verdicts([rubric_prompt(q, a, r) for q, a, r in zip(requests, answers, references, strict=True)],
                         RUBRIC_OPTIONS, on_progress=on_progress)
    verdicts = [v for v, _ in out]
    raws = [r for _, r in out]
    valid = [v for v in verdicts if v is not None]
    if out and not valid:
        raise _no_verdicts(judge.name, raws)
    k = sum(1 for v in valid if v == "PASS")
    return JudgeResult(judge.name, "rubric", len(out), len(valid), len(out) - len(valid),
                       k / len(valid) if valid else 0.0, M.wilson_ci(k, len(valid)), verdicts, raws)


def pairwise(judge: Judge, requests: Sequence[str], a_answers: Sequence[str], b_answers: Sequence[str],
             references: Sequence[str], *, on_progress: ProgressCallback | None = None) -> JudgeResult:
    """Which is better, A or B? Judged twice with the positions swapped: verdicts that agree stand, a verdict
    that follows the position is a tie. B's win rate (ties half) with a bootstrap 95% CI. Verdicts are in
    the caller's terms: "a", "b" or "tie" (as the user's votes)."""
    rows = list(zip(requests, a_answers, b_answers, references, strict=True))
    first = judge.verdicts([pair_prompt(q, a, b, r) for q, a, b, r in rows], PAIR_OPTIONS, on_progress=on_progress)
    second = judge.verdicts([pair_prompt(q, b, a, r) for q, a, b, r in rows], PAIR_OPTIONS, on_progress=on_progress)
    unswap = {"A": "b", "B": "a", "TIE": "tie"}
    verdicts: list[str | None] = []
    swapped: list[str | None] = []
    for (v1, _), (v2, _) in zip(first, second, strict=True):
        x = v1.lower() if v1 else None
        y = unswap[v2] if v2 else None
        swapped.append(y)
        verdicts.append(None if x is None or y is None else x if x == y else "tie")
    raws = [f"{r1} | swapped: {r2}" for (_, r1), (_, r2) in zip(first, second, strict=True)]
    valid = [v for v in verdicts if v is not None]
    if rows and not valid:
        raise _no_verdicts(judge.name, [r for _, r in first])

    wr = win_rate(valid, source=judge.name)
    return JudgeResult(judge.name, "pairwise", len(rows), len(valid), len(rows) - len(valid), wr.rate, wr.ci95,
                       verdicts, raws, swapped, metric="judge_win_rate")
