"""Spot-check: seeded stratified sample, verdicts in the run log, resume, rule proposal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.data.spotcheck import SpotCheck, rule_matches
from tools.errors import InputError
from tools.runlog import RunLog
from tools.types import Example


def _file(tmp_path: Path) -> Path:
    labels = ["card_arrival", "refund", "pin_blocked", "top_up"]
    rows = []
    for i in range(80):
        q = f"Customer question {i}: something about {labels[i % 4]} and account {i * 37}"
        if i % 10 == 3:
            q = f"lorem ipsum placeholder text {i}"
        rows.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": labels[i % 4]}]})
    rows.append({"messages": [{"role": "user", "content": "Write to me at jo@example.com"},
                              {"role": "assistant", "content": "refund"}]})
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def test_sample_is_seeded_stratified_and_flagged_first(tmp_path: Path) -> None:
    p = _file(tmp_path)
    a, b = SpotCheck(p, n=20, seed=1), SpotCheck(p, n=20, seed=1)
    assert a.sample == b.sample and len(set(a.sample)) == 20
    assert SpotCheck(p, n=20, seed=2).sample != a.sample
    first = a.next()
    assert first is not None and first["flags"] == ["pii"] and first["position"] == 0
    labels = {a.item(i)["label"] for i in range(8)}
    assert labels == {"card_arrival", "refund", "pin_blocked", "top_up"}


def test_verdicts_persist_and_resume(tmp_path: Path) -> None:
    p = _file(tmp_path)
    sc = SpotCheck(p, n=10, seed=0)
    for pos in range(4):
        sc.verdict(pos, "good" if pos else "skip")
    resumed = SpotCheck(p, n=10, seed=0)
    assert resumed.progress() == {"total": 10, "done": 4, "good": 3, "bad": 0, "skip": 1}
    nxt = resumed.next()
    assert nxt is not None and nxt["position"] == 4
    rows = RunLog().query("SELECT verdict FROM spotchecks WHERE dataset_sha256 = ?", [sc.sha256])
    assert len(rows) == 4
    with pytest.raises(InputError):
        resumed.verdict(4, "meh")
    for pos in range(4, 10):
        resumed.verdict(pos, "good")
    assert resumed.next() is None


def test_bad_reasons_become_a_rule(tmp_path: Path) -> None:
    p = _file(tmp_path)
    sc = SpotCheck(p, n=len(SpotCheck(p).examples), seed=0)
    while (item := sc.next()) is not None:
        bad = "lorem" in item["input"]
        sc.verdict(item["position"], "bad" if bad else "good", "placeholder text 'lorem ipsum'" if bad else None)
    rule = sc.propose_rule()
    assert rule is not None and rule["kind"] == "keyword" and "lorem" in rule["pattern"]
    assert rule["matches_bad"] == 8 and rule["matches_good"] == 0
    assert rule["would_remove"] == 8 and "0 other rows" in rule["text"]
    applied = sc.apply_rule(rule, tmp_path / "filtered.jsonl")
    assert applied["removed"] == 8 and applied["kept"] == 73
    assert "lorem" not in (tmp_path / "filtered.jsonl").read_text()


def test_length_and_regex_rules() -> None:
    ex = Example.from_pair("short one here", "ok")
    assert rule_matches({"kind": "length", "field": "output", "min_chars": 5}, ex)
    assert not rule_matches({"kind": "length", "field": "output", "max_chars": 5}, ex)
    assert rule_matches({"kind": "regex", "pattern": r"^short\b"}, ex)
