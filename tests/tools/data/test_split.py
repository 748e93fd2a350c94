"""Splits follow the size rule, are stratified, keep near duplicates together, and are reproducible."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from tests.tools._data_fixtures import banking77_dir
from tools.data import split
from tools.data.near_dups import normalise
from tools.data.splitting import plan_counts
from tools.runlog import RunLog


def _read(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _banking(tmp_path: Path, n: int, extra: list[dict] | None = None) -> Path:
    rows = list(csv.DictReader((banking77_dir() / "train.csv").open(encoding="utf-8")))[:n]
    src = tmp_path / "b.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(rows + (extra or []))
    return src


def test_plan_counts_follow_the_rules() -> None:
    assert plan_counts(3000)[:3] == (450, 450, "data.split.lt_5k")
    assert plan_counts(8000)[:3] == (1000, 1000, "data.split.5k_10k")
    assert plan_counts(20000)[:3] == (2000, 2000, "data.split.gt_10k")
    n_val, n_test, _, warnings, _ = plan_counts(400)
    assert (n_val, n_test) == (100, 100) and "raised to the 100-row minimum" in warnings[0]
    n_val, n_test, _, warnings, _ = plan_counts(100)
    assert (n_val, n_test) == (15, 15) and "below the 100-row minimum" in warnings[0]


def test_stratified_leak_free_reproducible(tmp_path: Path) -> None:
    # banking77 rows + planted near copies (a typo) of 40 of them: each copy must share its original's split
    rows = list(csv.DictReader((banking77_dir() / "train.csv").open(encoding="utf-8")))
    base = rows[::5][:1800]
    long_rows = [r for r in base if len(r["text"]) >= 60][:40]  # where a 4-character edit keeps Jaccard >= 0.8
    planted = [{"text": r["text"] + " pls", "category": r["category"]} for r in long_rows]
    src = _banking(tmp_path, 0, base + planted)
    r = split(src, tmp_path / "out", seed=7).to_dict()
    assert r["train"] + r["val"] + r["test"] == len(base) + len(planted)
    assert r["rule"] == "data.split.lt_5k" and r["stratified_by"] == "label"
    assert abs(r["val"] - 277) <= 15 and abs(r["test"] - 277) <= 15
    parts = {s: _read(r["files"][s]) for s in ("train", "val", "test")}
    where = {normalise(x["messages"][0]["content"]): s for s, rows_ in parts.items() for x in rows_}
    for p, b in zip(planted, long_rows, strict=True):
        assert where[normalise(p["text"])] == where[normalise(b["text"])]
    # stratified: every label's share of test is close to 15%
    label_total = Counter(x["category"] for x in base + planted)
    label_test = Counter(x["messages"][-1]["content"] for x in parts["test"])
    for label, total in label_total.items():
        if total >= 20:
            assert abs(label_test[label] / total - 0.15) < 0.1, label
    again = split(src, tmp_path / "out2", seed=7).to_dict()
    assert again["sha256"] == r["sha256"]
    other = split(src, tmp_path / "out3", seed=8).to_dict()
    assert other["sha256"]["test"] != r["sha256"]["test"]
    logged = RunLog().query("SELECT sha256 FROM datasets WHERE kind = 'split:test'")
    assert {row["sha256"] for row in logged} >= {r["sha256"]["test"], other["sha256"]["test"]}


def test_small_file_warns_and_synthetic_stays_in_train(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": f"Question number {i} about topic {i * 13}"},
                          {"role": "assistant", "content": f"Answer {i}: the value is {i * 31}."}]} for i in range(60)]
    rows += [{"messages": [{"role": "user", "content": f"Synthetic request {i} with id {i * 17}"},
                           {"role": "assistant", "content": f"Synthetic reply {i}."}], "meta": {"synthetic": True}}
             for i in range(10)]
    src = tmp_path / "s.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    r = split(src, tmp_path / "out").to_dict()
    assert r["warnings"] and "below the 100-row minimum" in r["warnings"][0]
    assert r["synthetic_in_train"] == 10 and r["stratified_by"] is None
    for s in ("val", "test"):
        assert not any("Synthetic" in x["messages"][0]["content"] for x in _read(r["files"][s]))
    assert r["train"] + r["val"] + r["test"] == 70 and r["val"] >= 5 and r["test"] >= 5


def test_wholly_synthetic_set_still_splits_with_a_warning(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": f"Synthetic ticket {i} about order {i * 19}"},
                          {"role": "assistant", "content": ["billing", "refund"][i % 2]}], "meta": {"synthetic": True}}
            for i in range(200)]
    src = tmp_path / "s.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    r = split(src, tmp_path / "out").to_dict()
    assert r["val"] > 0 and r["test"] > 0 and r["train"] + r["val"] + r["test"] == 200
    assert "synthetic" in r["warnings"][0]
