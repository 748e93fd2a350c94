"""benchmarks/reasoning_aqua.py runs its whole path (profile, prompt baseline, the same replies by chrF, result
file) on the tiny random model, so the real run on the embedded model only needs time."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_benchmarks import _load
from tests.tools._data_fixtures import banking77_dir


def test_reasoning_aqua_smoke(tiny_model_dir: Path, tmp_path: Path) -> None:
    banking77_dir()  # skips where the shared data sets are missing
    bench = _load("reasoning_aqua")
    out = tmp_path / "aqua.json"
    assert bench.main(["--rows", "2", "--shots", "1", "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    pe = doc["prompt_eval"]
    assert doc["data"]["test_rows"] == 2 and doc["data"]["profile_of_test_json"]["output_kind"] == "reasoning"
    assert pe["metric"] == "final_answer_accuracy" and pe["share"] is True and pe["shots"] == 1
    for key in ("final_answer_strict", "final_answer_flexible", "same_replies_chrf"):
        assert 0.0 <= pe[key]["quality"] <= 1.0 and len(pe[key]["ci95"]) == 2
    assert doc["train"] is None and "prompt side only" in doc["train_note"]
    assert doc["machine"]["cpu_flags"] is not None and "load_average_1_5_15" in doc["machine"]
    assert doc["command"] and doc["measured_at"]
