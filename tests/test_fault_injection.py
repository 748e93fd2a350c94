"""A small seeded subset of benchmarks/fault_injection.py (issue 23 item 4): the real CLI killed inside cleaning
and training leaves no process, no ``running`` run, its input unchanged, no partial output, and a training run
that resumes to the uninterrupted run's loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_benchmarks import _load


@pytest.mark.slow
def test_kills_inside_clean_and_train_leave_nothing_behind(tmp_path: Path, real_model_dir: Path) -> None:
    bench = _load("fault_injection")
    out = tmp_path / "faults.json"
    code = bench.main(["--kills", "clean=3,train=2", "--rows", "3000", "--seed", "1", "--out", str(out),
                       "--work", str(tmp_path / "work")])
    doc = json.loads(out.read_text())
    totals = doc["totals"]
    assert totals["kills"] == 5 and set(doc["stages"]) == {"clean", "train"}
    assert {k: totals[k] for k in ("orphans", "running", "inputs_changed", "partial_outputs", "lost")} == \
        dict.fromkeys(("orphans", "running", "inputs_changed", "partial_outputs", "lost"), 0), doc["kills"]
    assert code == 0 and totals["survived"] == totals["kills"]
    assert {r["signal"] for r in doc["kills"] if r["stage"] == "clean"} == {"SIGINT", "SIGTERM", "SIGKILL"}
    train = [r for r in doc["kills"] if r["stage"] == "train"]
    resumed = [r["resume"] for r in train if isinstance(r["resume"], dict)]
    assert all(abs(r["final_loss"] - r["baseline"]) <= 1e-4 for r in resumed)
    assert {r["resume"] for r in train if not isinstance(r["resume"], dict)} <= {
        "no checkpoint yet: start again", "completed before the kill"}
    assert doc["machine"]["cpu_flags"] is not None and "shared_machine" in doc
