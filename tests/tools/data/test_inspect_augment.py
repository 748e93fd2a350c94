"""inspect: statistics, labels and token counts with the target model's tokenizer; augment marks synthetic rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.data import inspect, split
from tools.data.augment import augment


def _write(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                     {"role": "assistant", "content": a}]}) + "\n"
                            for q, a in pairs), encoding="utf-8")
    return path


def test_inspect_statistics_and_labels(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.jsonl", [(f"Message number {i} from a customer", ["spam", "ham"][i % 3 == 0])
                                      for i in range(30)])
    r = inspect(p).to_dict()
    assert r["rows"] == 30 and r["output_kind"] == "label"
    assert r["labels"] == {"spam": 20, "ham": 10} and r["label_imbalance"] == 2.0
    assert r["chars"]["output"]["max"] == 4 and len(r["sha256"]) == 64


@pytest.mark.real_model
def test_inspect_counts_tokens_and_flags_rows_over_context(tmp_path: Path, real_model_dir: Path) -> None:
    long_text = "word " * 9000  # ~9k tokens, over SmolLM2's 8192
    p = _write(tmp_path / "d.jsonl", [("Hello there, how are you?", "Fine, thanks."), (long_text, "ok.")])
    r = inspect(p, model=str(real_model_dir)).to_dict()
    t = r["tokens"]
    assert t["context_length"] == 8192 and t["over_context"] == 1 and t["min"] > 5
    assert any(pr["line"] == 2 and "exceed the context length" in pr["message"] for pr in r["problems"])


def test_augment_marks_synthetic_rows_kept_out_of_val_test(tmp_path: Path) -> None:
    src = _write(tmp_path / "d.jsonl", [(f"Original question {i} about fees and limits {i * 3}", f"Answer {i}.")
                                        for i in range(40)])
    r = augment(src, tmp_path / "aug.jsonl", n=10, generate_fn=lambda prompts: [f"Reworded request {i}"
                                                                                for i in range(len(prompts))])
    assert r.synthetic == 10 and r.original == 40 and "data.augment.validate" in r.rule_ids
    assert list(r.to_dict()) == ["out", "original", "synthetic", "method", "rule_ids"]  # the --json keys
    rows = [json.loads(x) for x in (tmp_path / "aug.jsonl").read_text().splitlines()]
    synth = [x for x in rows if x.get("meta", {}).get("synthetic")]
    assert len(synth) == 10 and synth[0]["messages"][0]["content"].startswith("Reworded request")
    s = split(tmp_path / "aug.jsonl", tmp_path / "split").to_dict()
    assert s["synthetic_in_train"] == 10
    for part in ("val", "test"):
        assert "Reworded" not in Path(s["files"][part]).read_text()


def test_augment_default_path_generates_with_a_local_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    src = _write(tmp_path / "d.jsonl", [(f"Original question {i} about fees", f"Answer {i}.") for i in range(5)])
    r = augment(src, tmp_path / "aug.jsonl", method="back_translation", n=2, model=str(tiny_model_dir),
                max_new_tokens=8)
    assert r.original == 5 and 0 <= r.synthetic <= 2  # a random tiny model may echo nothing useful
    assert "data.augment.back_translation" in r.rule_ids
