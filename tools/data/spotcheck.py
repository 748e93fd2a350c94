"""Spot-check: read a seeded, stratified sample one example at a time; turn bad verdicts into a filter rule.

The sample depends only on the file's content (sha256), ``n`` and ``seed``, and every verdict is written to
the run log (``spotchecks`` table) at once, so a spot-check can stop at any point and continue later from
the first example without a verdict (``data.spot_check``: read about 100 rows; each bad one should become a
filter rule).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tools.data.formats import load
from tools.errors import InputError
from tools.fileio import sha256_file, sha256_text, write_jsonl
from tools.types import Example

VERDICTS = ("good", "bad", "skip")
_WORD = re.compile(r"[\w']+", re.UNICODE)
_QUOTED = re.compile(r"[\"'“‘`]([^\"'”’`]{2,60})[\"'”’`]")
_REGEX = re.compile(r"/(.+)/")
_STOP = frozenset(["a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "is", "are", "was", "were", "it", "this", "that", "with", "as", "at", "by", "be", "not", "no", "too", "very", "has", "have", "had", "i", "you", "he", "she", "we", "they", "my", "your", "its", "bad", "wrong", "output", "input", "answer", "row"])


def example_key(ex: Example) -> str:
    return sha256_text(json.dumps([m.to_dict() for m in ex.messages], ensure_ascii=False))[:16]


class SpotCheck:
    """A resumable spot-check over ``path``: ``next()``, ``verdict()``, ``propose_rule()``, ``apply_rule()``."""

    def __init__(self, path: str | Path, n: int = 100, seed: int = 0, *, fmt: str | None = None) -> None:
        from tools.data.config import CleanConfig
        from tools.data.filters import RowChecks
        from tools.data.splitting import example_labels

        self.path = Path(path)
        self.examples = load(self.path, fmt, skip_invalid=True).examples
        if not self.examples:
            raise InputError("no valid rows to spot-check", where=str(self.path))
        self.sha256 = sha256_file(self.path) if self.path.is_file() else sha256_text(str(self.path.resolve()))
        self.seed = seed
        self.labels = example_labels(self.examples)
        checks = RowChecks(CleanConfig())
        self.flags = [self._flags(e, checks) for e in self.examples]
        self.sample = self._draw(min(n, len(self.examples)))
        self.verdicts: dict[int, tuple[str, str | None]] = self._load_verdicts()

    # -- sample -------------------------------------------------------------------------------------
    @staticmethod
    def _flags(e: Example, checks: Any) -> tuple[str, ...]:
        out = []
        text = e.input_text + "\n" + e.output_text
        if e.meta.get("synthetic"):
            out.append("synthetic")
        if checks.pii_spans(text):
            out.append("pii")
        if len(e.output_text) >= 100 and checks.quality_problem(e.output_text):
            out.append("quality")
        out.extend(str(f) for f in e.meta.get("flags") or [])
        return tuple(sorted(set(out)))

    def _draw(self, n: int) -> list[int]:
        """Round-robin over (label, flags) strata in a seeded order, so rare labels and every flag are seen."""
        rng = np.random.default_rng(self.seed)
        strata: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
        for i, f in enumerate(self.flags):
            strata[(self.labels[i] if self.labels else "", f)].append(i)
        keys = sorted(strata)
        queues = [list(np.array(strata[k])[rng.permutation(len(strata[k]))]) for k in keys]
        order = list(rng.permutation(len(keys)))
        # flagged strata first: they are the likeliest to hide a problem
        order.sort(key=lambda q: 0 if keys[q][1] else 1)
        picked: list[int] = []
        while len(picked) < n:
            progressed = False
            for q in order:
                if queues[q] and len(picked) < n:
                    picked.append(int(queues[q].pop(0)))
                    progressed = True
            if not progressed:
                break
        return picked

    def item(self, position: int) -> dict[str, Any]:
        i = self.sample[position]
        e = self.examples[i]
        v = self.verdicts.get(position)
        return {"position": position, "index": i, "line": e.meta.get("line"), "key": example_key(e),
                "messages": [m.to_dict() for m in e.messages], "input": e.input_text, "output": e.output_text,
                "label": self.labels[i] if self.labels else None, "flags": list(self.flags[i]),
                "verdict": v[0] if v else None, "reason": v[1] if v else None, "total": len(self.sample)}

    # -- verdicts -----------------------------------------------------------------------------------
    def _load_verdicts(self) -> dict[int, tuple[str, str | None]]:
        from tools.runlog import RunLog

        rows = RunLog().query("SELECT position, verdict, reason, example_key FROM spotchecks WHERE dataset_sha256 = ? "
                              "ORDER BY created_at", [self.sha256])
        keys = {example_key(self.examples[i]): p for p, i in enumerate(self.sample)}
        out: dict[int, tuple[str, str | None]] = {}
        for r in rows:
            p = keys.get(r["example_key"])
            if p is not None:
                out[p] = (r["verdict"], r["reason"])
        return out

    def next(self) -> dict[str, Any] | None:
        """The first sampled example without a verdict, or None when the sample is done."""
        for p in range(len(self.sample)):
            if p not in self.verdicts:
                return self.item(p)
        return None

    def verdict(self, idx: int, verdict: str, reason: str | None = None) -> None:
        """Record a verdict for sample position ``idx`` (good / bad / skip; bad may carry a reason)."""
        from tools.runlog import RunLog

        if verdict not in VERDICTS:
            raise InputError(f"unknown verdict {verdict!r}", fix="answer good, bad or skip")
        if not 0 <= idx < len(self.sample):
            raise InputError(f"no sample position {idx}", fix=f"use 0..{len(self.sample) - 1}")
        key = example_key(self.examples[self.sample[idx]])
        RunLog().log_spotcheck(self.sha256, key, idx, verdict, reason)
        self.verdicts[idx] = (verdict, reason)

    def progress(self) -> dict[str, Any]:
        c = Counter(v for v, _ in self.verdicts.values())
        return {"total": len(self.sample), "done": len(self.verdicts), "good": c["good"], "bad": c["bad"],
                "skip": c["skip"]}

    # -- rules --------------------------------------------------------------------------------------
    def _judged(self, verdict: str) -> list[Example]:
        return [self.examples[self.sample[p]] for p, (v, _) in self.verdicts.items() if v == verdict]

    def propose_rule(self) -> dict[str, Any] | None:
        """A filter rule (keyword, regex or length) that catches the bad examples and spares the good ones.

        Candidates come from the bad reasons (quoted words, ``/regex/``, words like 'short'/'long') and from
        words shared by the bad examples; the best separates bad from good, and ``would_remove`` says how many
        other rows of the whole file it would also remove.
        """
        bad = self._judged("bad")
        if not bad:
            return None
        good = self._judged("good")
        reasons = [r or "" for p, (v, r) in self.verdicts.items() if v == "bad"]
        candidates: list[dict[str, Any]] = []
        for r in reasons:
            for m in _REGEX.finditer(r):
                try:
                    re.compile(m.group(1))
                    candidates.append({"kind": "regex", "pattern": m.group(1)})
                except re.error:
                    pass
            for m in _QUOTED.finditer(r):
                candidates.append({"kind": "keyword", "pattern": m.group(1)})
        bad_words = Counter(w for e in bad for w in set(_WORD.findall((e.input_text + " " + e.output_text).lower())))
        good_words = Counter(w for e in good for w in set(_WORD.findall((e.input_text + " " + e.output_text).lower())))
        reason_words = {w for r in reasons for w in _WORD.findall(r.lower())}
        for w, c in bad_words.most_common(200):
            if w in _STOP or len(w) < 3 or good_words[w]:
                continue
            if c >= max(1, len(bad) // 2) or w in reason_words:
                candidates.append({"kind": "keyword", "pattern": w})
        outs_bad = [len(e.output_text) for e in bad]
        outs_good = [len(e.output_text) for e in good]
        text = " ".join(reasons).lower()
        if outs_good and max(outs_bad) < min(outs_good) or "short" in text:
            limit = min(outs_good) if outs_good else max(outs_bad) + 1
            candidates.append({"kind": "length", "field": "output", "min_chars": max(limit, max(outs_bad) + 1)})
        if outs_good and min(outs_bad) > max(outs_good) or "long" in text:
            limit = max(outs_good) if outs_good else min(outs_bad) - 1
            candidates.append({"kind": "length", "field": "output", "max_chars": min(limit, min(outs_bad) - 1)})
        best: dict[str, Any] | None = None
        best_score: tuple[int, int] | None = None
        for cand in candidates:
            hit_bad = sum(rule_matches(cand, e) for e in bad)
            hit_good = sum(rule_matches(cand, e) for e in good)
            if hit_bad == 0:
                continue
            total = sum(rule_matches(cand, e) for e in self.examples)
            score = (hit_bad - 2 * hit_good, -total)
            if best_score is None or score > best_score:
                best, best_score = {**cand, "matches_bad": hit_bad, "matches_good": hit_good,
                                    "would_remove": total, "would_remove_others": total - hit_bad}, score
        if best is not None:
            best["text"] = describe_rule(best)
        return best

    def apply_rule(self, rule: dict[str, Any], out: str | Path) -> dict[str, Any]:
        """Write the file without the rows the rule matches (the input stays untouched)."""
        out = Path(out)
        if out.resolve() == self.path.resolve():
            raise InputError("the output would overwrite the input", where=str(out), fix="choose another path")
        kept = [e for e in self.examples if not rule_matches(rule, e)]
        write_jsonl(out, (e.to_dict(with_meta=False) for e in kept))
        return {"out": str(out), "kept": len(kept), "removed": len(self.examples) - len(kept), "rule": rule}


def rule_matches(rule: dict[str, Any], e: Example) -> bool:
    """Does a spot-check rule (keyword / regex / length) match this example?"""
    kind = rule["kind"]
    if kind == "length":
        n = len(e.output_text if rule.get("field", "output") == "output" else e.input_text)
        return ("min_chars" in rule and n < rule["min_chars"]) or ("max_chars" in rule and n > rule["max_chars"])
    text = e.input_text + "\n" + e.output_text
    if kind == "keyword":
        return re.search(r"(?<!\w)" + re.escape(rule["pattern"].lower()) + r"(?!\w)", text.lower()) is not None
    if kind == "regex":
        return re.search(rule["pattern"], text) is not None
    raise ValueError(f"unknown rule kind {kind!r}")


def describe_rule(rule: dict[str, Any]) -> str:
    if rule["kind"] == "keyword":
        s = f"remove rows containing the word {rule['pattern']!r}"
    elif rule["kind"] == "regex":
        s = f"remove rows matching /{rule['pattern']}/"
    elif "min_chars" in rule:
        s = f"remove rows whose {rule.get('field', 'output')} is shorter than {rule['min_chars']} characters"
    else:
        s = f"remove rows whose {rule.get('field', 'output')} is longer than {rule['max_chars']} characters"
    return f"{s} ({rule['would_remove_others']} other rows would go)"
