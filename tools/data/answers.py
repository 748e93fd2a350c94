"""Final answers of worked solutions: find the marked answer at the end of a reference or a reply, and compare two
answers after normalising them.

A reasoning reference is worked steps that end in a marked answer. The markers recognised, as lm-eval-harness,
OpenAI's and the data sets' own conventions write them (case-insensitive):

- ``hash``: GSM8K's ``#### 18``;
- ``boxed``: MATH's ``\\boxed{18}`` (nested braces allowed);
- ``answer``: ``The answer is 18``, ``Answer: C``, ``ANSWER:C``, ``Answer : B``, ``Answer: Option B``,
  ``correct answer B``, ``Option C`` (an option letter or a value).

Two ways of reading a reply, reported side by side (lm-eval-harness's GSM8K ``strict-match`` and
``flexible-extract``): *strict* takes what follows the reference's own marker (the last one in the reply);
*flexible* takes the last number (or, for option answers, the last option letter) anywhere in the reply.
Numbers compare as values: ``1,000`` = ``1000``, ``$18`` = ``18``, ``18.0`` = ``18``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

MARKERS: tuple[str, ...] = ("hash", "boxed", "answer")
# How each marker is written in an instruction ("end with ... on the last line").
MARKER_EXAMPLES = {"hash": "#### <answer>", "boxed": "\\boxed{<answer>}", "answer": "Answer: <answer>"}

_HASH = re.compile(r"####\s*(?P<ans>\S.*)")
_BOXED = re.compile(r"\\boxed\s*\{")
# "Answer: X", "The answer is X", "Answer : B", "ANSWER:C", "Answer - A", "Answer: Option B"
_ANSWER_SEP = re.compile(
    r"\b(?:answer|ans)\b\s*(?:is\b\s*:?|[:=]|[-\u2013]\s)\s*(?:(?:option|choice)\s*:?\s*)?(?P<ans>\S.*)",
    re.IGNORECASE)
# "Answer A", "Option C", "correct answer B", "Correct Option: B", "Answer (D)", "answer 42"
_ANSWER_BARE = re.compile(
    r"\b(?:answer|ans|option|choice)\b\s*(?:is\s+|[:\-.]\s*)?(?:(?P<letter>\(?[A-Ea-e]\)?)(?![\w])"
    r"|(?P<num>[-+$]?\d[\d,]*(?:\.\d+)?)(?![\w.]))",
    re.IGNORECASE)
# "E is the answer", "Hence (A) is correct", "C is the correct option"
_LETTER_IS = re.compile(r"(?<![\w(])\(?(?P<letter>[A-E])\)?\s+is\s+(?:the\s+)?(?:(?:correct|right)\s*)?"
                        r"(?:answer|option|choice|correct)\b", re.IGNORECASE)
# A last line that is an option letter alone: "D", "(B)", "E)"
_LETTER_LINE = re.compile(r"^\s*\(?(?P<letter>[A-E])\)?\.?\s*$")
_OPTION = re.compile(r"^\(?([A-Ea-e])\)?(?=$|[\s.,:;)\]])")
_NUMBER = re.compile(r"[-+]?\$?\s?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|[-+]?\.\d+")
_LAST_OPTION = re.compile(r"\(([A-E])\)|\b([A-E])\)|\b([A-E])\b")
_EDGE = "\"'`.,;:!?*_ \t\n"


@dataclass(frozen=True)
class FinalAnswer:
    """A marked answer: which marker, and the text it marks."""

    marker: str
    answer: str


def _boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (balanced braces), or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start:i - 1]
    return None


def _clean(ans: str) -> str:
    return ans.strip().strip(_EDGE).strip()


def _find(text: str, marker: str) -> str | None:
    """What the last ``marker`` in ``text`` marks, or None."""
    if marker == "boxed":
        got = _boxed(text)
        return _clean(got) if got is not None and got.strip() else None
    if marker == "hash":
        hits = list(_HASH.finditer(text))
        return _clean(hits[-1].group("ans").splitlines()[0]) if hits else None
    best: tuple[int, str] | None = None
    for m in _ANSWER_SEP.finditer(text):
        best = (m.start(), m.group("ans").splitlines()[0])
    for m in _ANSWER_BARE.finditer(text):
        if best is None or m.start() > best[0]:
            best = (m.start(), m.group("letter") or m.group("num"))
    for m in _LETTER_IS.finditer(text):
        if best is None or m.start() > best[0]:
            best = (m.start(), m.group("letter"))
    alone = _LETTER_LINE.match(text.strip().splitlines()[-1] if text.strip() else "")
    if best is None and alone:
        best = (0, alone.group("letter"))
    if best is None:
        return None
    got = _clean(best[1])
    return got or None


def final_answer_of(text: str | None, *, last_line: bool = True) -> FinalAnswer | None:
    """The marked final answer of ``text``: on its last non-empty line (references, where the answer closes the
    worked steps) or, with ``last_line=False``, the last marked answer anywhere (replies)."""
    s = (text or "").strip()
    if not s:
        return None
    if last_line:
        s = s.splitlines()[-1]
        if not s.strip():
            return None
    found = [(marker, got) for marker in MARKERS if (got := _find(s, marker)) is not None]
    return FinalAnswer(*found[0]) if found else None


def marked_answer(text: str | None, marker: str) -> str | None:
    """Strict reading of a reply: what its last ``marker`` marks (``hash``, ``boxed`` or ``answer``)."""
    return _find(text or "", marker) if marker in MARKERS else None


def is_worked_solution(text: str | None, *, min_working_chars: int = 12) -> FinalAnswer | None:
    """The final answer of a reference that is worked steps ending in a marked answer: the marker on its last
    line and at least ``min_working_chars`` characters (not counting spaces) of working before it (``Answer: C``
    alone is a short answer, not a worked solution; ``3x = 12, x = 4`` is working)."""
    fa = final_answer_of(text)
    if fa is None:
        return None
    s = (text or "").strip()
    lines = s.splitlines()
    last = lines[-1]
    cut = last.lower().rfind(fa.answer.lower())
    before = "\n".join(lines[:-1]) + " " + (last[:cut] if cut >= 0 else "")
    working = re.sub(r"\b(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|ans|option)\b.*$", "", before.strip(),
                     flags=re.IGNORECASE | re.DOTALL) if cut >= 0 else before
    return fa if len("".join(working.split())) >= min_working_chars else None


# ---------------------------------------------------------------------------------------------- normalising

def option_letter(text: str | None) -> str | None:
    """The option letter an answer starts with (``C``, ``(C)``, ``C)``, ``c.``), upper-cased, or None."""
    m = _OPTION.match(_clean(text or ""))
    return m.group(1).upper() if m else None


def number_value(text: str | None) -> float | None:
    """The first number in ``text`` as a value: ``1,000`` -> 1000, ``$18`` -> 18, ``18.0`` -> 18, ``3/4`` -> 0.75."""
    m = _NUMBER.search(text or "")
    if not m:
        return None
    raw = m.group(0).replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in raw:
            num, den = raw.split("/")
            return float(num) / float(den) if float(den) else None
        return float(raw)
    except ValueError:
        return None


def _numeric(text: str) -> bool:
    """The answer is a number (with units or currency around it at most: ``$18``, ``18 km``, ``1,000``)."""
    t = _clean(text)
    m = _NUMBER.search(t)
    return m is not None and m.start() <= 1 and len(t.split()) <= 3


def _normal_text(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", t).strip().strip(_EDGE)


def same_answer(got: str | None, want: str) -> bool:
    """Do two answers agree? Option letters by letter, numbers by value (relative tolerance 1e-6), anything
    else as case-folded text with surrounding punctuation removed."""
    if got is None:
        return False
    letter = option_letter(want)
    if letter is not None and len(_clean(want)) <= 3:
        return option_letter(got) == letter
    if _numeric(want):
        a, b = number_value(got), number_value(want)
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return _normal_text(got) == _normal_text(want)


def reference_answer(reference: str, answer: str | None = None) -> tuple[str, str | None]:
    """The answer a reply is checked against, and the reference's marker: the row's own answer field when it has
    one (AQuA's ``correct``), else what the reference's last line marks, else the reference's last line."""
    fa = final_answer_of(reference)
    if answer is not None and str(answer).strip():
        return str(answer).strip(), fa.marker if fa else None
    if fa is not None:
        return fa.answer, fa.marker
    lines = [ln for ln in reference.strip().splitlines() if ln.strip()]
    return (_clean(lines[-1]) if lines else ""), None


def strict_answer(reply: str | None, marker: str | None) -> str | None:
    """The strict reading: what the reference's own marker marks in the reply (any marker when the reference has
    none, e.g. a bare answer field)."""
    if marker is not None:
        return marked_answer(reply, marker)
    fa = final_answer_of(reply, last_line=False)
    return fa.answer if fa else None


def flexible_answer(reply: str | None, want: str) -> str | None:
    """The flexible reading: the last option letter (when the answer is one), else the last number, else the
    reply's last non-empty line."""
    text = reply or ""
    if option_letter(want) is not None and len(_clean(want)) <= 3:
        hits = _LAST_OPTION.findall(text)
        return next(x for x in hits[-1] if x) if hits else None
    if _numeric(want):
        nums = _NUMBER.findall(text)
        return nums[-1] if nums else None
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None


def score_final_answer(reply: str | None, reference: str, answer: str | None = None) -> tuple[float, float]:
    """(strict, flexible) correctness of one reply against a worked reference (1.0 or 0.0 each)."""
    want, marker = reference_answer(reference, answer)
    if not want:
        return 0.0, 0.0
    strict = same_answer(strict_answer(reply, marker), want)
    flexible = same_answer(flexible_answer(reply, want), want)
    return float(strict), float(flexible)
