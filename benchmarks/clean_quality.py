"""Cleaning quality on real data: rows removed per reason, the false-removal rate, and the code detector's
precision and recall.

    python benchmarks/clean_quality.py

- MBPP (974 Python problems): every solution is valid code, so every row removed by a filter other than the
  duplicate filters is a false removal.
- banking77 train (10,003 labelled utterances): every row is a valid label, same rule.
- Alpaca seed tasks (175 hand-written tasks): hand-written and checked, same rule.
Goal: filters other than duplicates remove at most 1% of rows. The baseline in the same run is the code
detector of the previous release (a line starting with def/class/function/#include/SELECT, or a fence),
measured on the same labelled sample.

Writes benchmarks/results/clean_quality.json.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "clean_quality.json"
SHARED = next(c for c in (REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data") if c.exists())
DUPLICATES = ("exact_duplicate", "near_duplicate")
_OLD_CODE = re.compile(r"(?m)^\s*(?:def |class |function |#include|SELECT )")


def old_is_code(text: str) -> bool:
    return "```" in text or _OLD_CODE.search(text) is not None


def detector_scores() -> dict[str, object]:
    from tests.tools._code_samples import CODE, PROSE
    from tools.data.code_detect import detect_code

    mbpp = [json.loads(line) for line in (SHARED / "mbpp" / "mbpp.jsonl").read_text(encoding="utf-8").splitlines()]
    with (SHARED / "banking77" / "train.csv").open(encoding="utf-8") as f:
        bank = [r["text"] for r in csv.DictReader(f)]
    pos = [(r["code"], "python") for r in mbpp] + CODE
    neg = [r["text"] for r in mbpp] + bank + PROSE
    out: dict[str, object] = {"positives": len(pos), "negatives": len(neg),
                              "sample": "MBPP solutions + 49 hand-written snippets of 15 languages (positives); "
                                        "MBPP problem statements, banking77 train texts, 25 prose texts about code "
                                        "(negatives)"}
    for name, fn in (("detector", lambda t: detect_code(t) is not None), ("baseline_markers", old_is_code)):
        tp = sum(fn(t) for t, _ in pos)
        fp = sum(fn(t) for t in neg)
        out[name] = {"recall": round(tp / len(pos), 4), "precision": round(tp / max(1, tp + fp), 4),
                     "false_positives": fp}
    out["language_accuracy"] = round(sum(detect_code(t) == lang for t, lang in pos) / len(pos), 4)
    per_lang: dict[str, list[int]] = {}
    for t, lang in CODE:
        per_lang.setdefault(lang, [0, 0])
        per_lang[lang][0] += detect_code(t) == lang
        per_lang[lang][1] += 1
    out["snippets_right_per_language"] = {k: f"{a}/{b}" for k, (a, b) in sorted(per_lang.items())}
    return out


def main() -> None:
    from tools.data import clean

    os.environ.setdefault("TUNEWISE_HOME", tempfile.mkdtemp())
    sets = {"mbpp": SHARED / "mbpp" / "mbpp.jsonl", "banking77": SHARED / "banking77" / "train.csv",
            "alpaca_seed": SHARED / "alpaca_seed" / "seed_tasks.jsonl"}
    res: dict[str, object] = {}
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for name, path in sets.items():
            t = time.perf_counter()
            r = clean(path, Path(d) / f"{name}.jsonl")
            removed = {k: v for k, v in r.removed.items() if v}
            false = sum(v for k, v in r.removed.items() if k not in DUPLICATES)
            rate = false / r.valid_rows
            ok &= rate <= 0.01
            res[name] = {"rows": r.valid_rows, "kept": r.kept_rows, "removed_per_reason": removed,
                         "false_removals": false, "false_removal_rate": round(rate, 4),
                         "profile": r.profile.to_dict() | {"labels": len(r.profile.labels)},
                         "seconds": round(time.perf_counter() - t, 2)}
    out = {"datasets": res, "goal": "filters other than duplicates remove <= 1% of rows", "goal_met": ok,
           "code_detector": detector_scores(),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
           "command": "python benchmarks/clean_quality.py"}
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(out, RESULTS)


if __name__ == "__main__":
    main()
