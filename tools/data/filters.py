"""Row-level checks used by ``clean``: output kinds, error markers, completeness, language, PII, quality.

Each check is a plain method on ``RowChecks`` (built once per config, regexes compiled once) so that the
cleaning loop stays cheap per row; dataset-level decisions (is this a label data set? which language is the
majority?) are taken by ``clean`` after the first pass.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from typing import Any

from tools.data.code_detect import detect_code
from tools.data.config import CleanConfig

_DIGIT = re.compile(r"\d")
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$")
_ALPHA_WORD = re.compile(r"[^\W\d_]{2,}")
_WORD_LOWER = re.compile(r"[^\W\d_]+")
# lines that belong to an error dump: stack frames, carets, log prefixes, indented context
_DUMP_LINE = re.compile(r"^\s*(File \"|at [\w.$<>]+\(|\^+\s*$|\.\.\.|\d{4}-\d\d-\d\d[ T]\d|\[\w+\]|\s{4}|"
                        r"During handling|The above exception|Caused by:)")
# a last line that is not prose: a list item, a heading, a numbered step, a sign-off
_NOT_PROSE_LINE = re.compile(r"^([-*•#>]|\d+[.)]\s|\(?[a-zA-Z]\)\s|\[)")
_SENTENCE = re.compile(r"[^\W\d_][\w)\]'\"]*[.!?。！？][\"')\]]?(\s|$)")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。！？])\s+")
_NEUTRAL_TOKEN = re.compile(r"^(?:[\W_]*\d[\W\d_]*|[-*•+=|>→~:/]+|->|=>|::)$")
# cheap pre-check: every error-marker pattern contains one of these
_ERROR_HINTS = re.compile("rror|RROR|xception|FAIL|FATAL|Traceback")


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's identifier with normalised probabilities (loading its model takes ~1-2 s, so once)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN."""
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _valid(kind: str, validator: str | None, span: str) -> bool:
    digits = "".join(c for c in span if c.isdigit())
    if validator == "luhn":
        return 13 <= len(digits) <= 19 and luhn_ok(digits)
    if validator == "iban_mod97":
        return iban_ok(span)
    if validator == "min_8_digits":
        return 8 <= len(digits) <= 15 and not _DATE.match(span.strip()) and len(set(digits)) > 1
    return True


class LanguageShortcut:
    """Language ID with a learned shortcut (``data.clean.language.vocabulary``): after ``learn_texts`` texts,
    a text made of the main language's known words is assigned that language without running the model."""

    def __init__(self, checks: RowChecks, *, learn_texts: int, min_known_fraction: float, min_words: int,
                 min_probability: float) -> None:
        self.checks = checks
        self.learn_texts = learn_texts
        self.min_known = min_known_fraction
        self.min_words = min_words
        self.min_probability = min_probability
        self.learned: list[tuple[list[str], str, float]] = []
        self.vocab: frozenset[str] | None = None
        self.lang: str | None = None
        self.shortcuts = 0

    def classify(self, text: str) -> tuple[str, float]:
        if self.vocab is not None:
            words = _WORD_LOWER.findall(text.lower())
            if len(words) >= self.min_words:
                known = sum(map(self.vocab.__contains__, words))
                if known >= self.min_known * len(words):
                    self.shortcuts += 1
                    return self.lang or "", 1.0
            return self.checks.language(text)
        code, prob = self.checks.language(text)
        self.learned.append((_WORD_LOWER.findall(text.lower()), code, prob))
        if len(self.learned) >= self.learn_texts:
            self._build()
        return code, prob

    def _build(self) -> None:
        sure = [(w, c) for w, c, p in self.learned if p >= self.min_probability]
        self.learned = []
        if not sure:
            self.vocab = frozenset()
            return
        lang, n = Counter(c for _, c in sure).most_common(1)[0]
        if n < 0.5 * len(sure):
            self.vocab = frozenset()  # no clear main language: no shortcut
            return
        seen: Counter[str] = Counter()
        for words, c in sure:
            if c == lang:
                seen.update(set(words))
        self.lang = lang
        self.vocab = frozenset(w for w, k in seen.items() if k >= 2)


class RowChecks:
    """The per-row checks for one ``CleanConfig``."""

    def __init__(self, cfg: CleanConfig) -> None:
        self.cfg = cfg
        pats = [p[4:] if p.startswith("(?m)") else p for p in cfg.error_patterns]
        self.error_re = re.compile("|".join(f"(?:{p})" for p in pats), re.M) if pats else None
        self.pii = [(k["kind"], re.compile(k["pattern"]), k.get("validator")) for k in cfg.pii_kinds]
        self.terminal = set(cfg.terminal_chars)
        self.dangling = frozenset(w.lower() for w in cfg.dangling_words)
        self.closers = cfg.trailing_closers
        self._lang: Any = None
        self._lang_memo: dict[str, tuple[str, float]] = {}

    # -- kinds ----------------------------------------------------------------------------------------
    @staticmethod
    def is_json(text: str) -> bool:
        s = text.strip()
        if not s or s[0] not in "{[" or s[-1] not in "}]":
            return False
        try:
            json.loads(s)
        except ValueError:
            return False
        return True

    @staticmethod
    def code_language(text: str) -> str | None:
        """The programming language of a code output, or None (``tools.data.code_detect``)."""
        return detect_code(text)

    def is_code(self, text: str) -> bool:
        return detect_code(text) is not None

    # -- filters --------------------------------------------------------------------------------------
    def has_error_marker(self, text: str) -> bool:
        if self.error_re is None or _ERROR_HINTS.search(text) is None:
            return False
        return self.error_re.search(text) is not None

    def is_error_dump(self, text: str) -> bool:
        """An input that is nothing but an error dump: error markers, and fewer than ``request_min_words``
        words outside the dump's own lines (a request such as "why does this fail?" keeps the row)."""
        if not self.has_error_marker(text):
            return False
        words = 0
        for ln in text.splitlines():
            if not ln.strip() or _DUMP_LINE.match(ln) or (self.error_re and self.error_re.match(ln)):
                continue
            words += len(_ALPHA_WORD.findall(ln))
            if words >= self.cfg.request_min_words:
                return False
        return True

    @staticmethod
    def is_utterance(text: str) -> bool:
        """A whole (if short) utterance: at least one word of two letters or more ("stop", "no way")."""
        return _ALPHA_WORD.search(text) is not None

    def is_complete(self, text: str) -> bool:
        """False only for prose that looks cut off (``data.clean.completeness.truncation``): written in
        sentences, with a last line of prose ending in a fragment of ``min_fragment_words`` words or more."""
        s = text.rstrip().rstrip(self.closers).rstrip()
        if not s:
            return False
        if s[-1] in self.terminal:
            return True
        last = s.splitlines()[-1].strip()
        if _NOT_PROSE_LINE.match(last) or ":" in last[:60] or "|" in last:
            return True  # a list item, a table row, a key: value line, a heading
        fragment = _SENTENCE_SPLIT.split(last)[-1]
        words = fragment.split()
        if len(words) < self.cfg.min_fragment_words:
            return True
        if words[-1].lower().strip(",;") in self.dangling or fragment.endswith((",", ";")):
            return False  # stops on a word that cannot end a sentence
        before = s[: len(s) - len(fragment)]
        # a title, a list of words, a lyric: nothing says a sentence was cut
        return _SENTENCE.search(before) is None

    def language(self, text: str) -> tuple[str, float]:
        """(ISO code, probability) by py3langid, which ships its model; memoised for short repeated texts."""
        memo = len(text) <= 64
        if memo and text in self._lang_memo:
            return self._lang_memo[text]
        if self._lang is None:
            self._lang = _identifier()
        code, prob = self._lang.classify(text)
        result = (str(code), float(prob))
        if memo and len(self._lang_memo) < 100_000:
            self._lang_memo[text] = result
        return result

    def pii_spans(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of every personal-data span that passes its validator."""
        out: list[tuple[str, int, int]] = []
        has_at = "@" in text
        has_digit = _DIGIT.search(text) is not None
        if not has_at and not has_digit:
            return out
        for kind, rx, validator in self.pii:
            if kind == "email" and not has_at:
                continue
            if kind != "email" and not has_digit:
                continue
            for m in rx.finditer(text):
                if _valid(kind, validator, m.group(0)):
                    out.append((kind, m.start(), m.end()))
        return out

    def mask_pii(self, text: str) -> str:
        spans = self.pii_spans(text)
        if not spans:
            return text
        # longest first wins where spans overlap (a card number also matches the phone pattern)
        spans.sort(key=lambda s: (s[1], -(s[2] - s[1])))
        out, pos = [], 0
        for kind, a, b in spans:
            if a < pos:
                continue
            out.append(text[pos:a])
            out.append(f"[{kind.upper()}]")
            pos = b
        out.append(text[pos:])
        return "".join(out)

    def quality_problem(self, text: str) -> str | None:
        """Why a long free-text output looks low-quality (repetition, symbols, gibberish), or None."""
        c = self.cfg
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1 and 1 - len(set(lines)) / len(lines) > c.max_duplicate_line_fraction:
            return "repeated lines"
        words = text.split()
        k = c.repeated_ngram
        if len(words) >= 2 * k:
            grams = Counter(zip(*(words[i:] for i in range(k)), strict=False))
            top = grams.most_common(1)[0][1] if grams else 0
            if top > 1 and top * k / len(words) > c.max_top_trigram_fraction:
                return "repeated phrase"
        visible = [ch for ch in text if not ch.isspace()]
        if visible:
            symbols = sum(1 for ch in visible if not ch.isalnum())
            if symbols / len(visible) > c.max_symbol_ratio:
                return "mostly symbols"
        words = [w for w in words if not _NEUTRAL_TOKEN.match(w)]  # numbers, list markers, operators
        if words:
            alpha = sum(1 for w in words if any(ch.isalpha() for ch in w))
            if alpha / len(words) < c.min_alpha_word_fraction:
                return "few real words"
            mean_len = sum(len(w) for w in words) / len(words)
            if not c.min_mean_word_length <= mean_len <= c.max_mean_word_length:
                return "gibberish (word length)"
        return None
