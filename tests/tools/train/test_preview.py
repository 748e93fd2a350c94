"""`tunewise train --preview` (issue 15 item 7): what training sees, on three task shapes, and the refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.train import TrainConfig
from tools.train.preview import TrainPreview, preview_training

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data"


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _trained_text(p: TrainPreview, i: int = 0) -> str:
    return "".join(s.text for s in p.examples[i].segments if s.trained and not s.eos)


def test_banking77_labels_only_the_label_and_its_end_of_turn_are_trained(tiny_model_dir: Path, banking77: Path
                                                                          ) -> None:
    p = preview_training(TrainConfig(train=str(banking77 / "train.csv"), model=str(tiny_model_dir)), check=200)
    first = p.examples[0]
    assert _trained_text(p) == "card_arrival"  # the label; the question, system prompt and markup are masked
    assert first.segments[-1].eos and first.segments[-1].trained and first.ends_with_eos
    assert first.masked_tokens > first.trained_tokens > 0
    assert p.refusal is None and p.examples_checked == 200 and p.examples_without_eos == 0
    assert not any(s.trained for s in first.segments if "user" in s.text)


def test_mbpp_shaped_code_trains_the_code(tiny_model_dir: Path, tmp_path: Path) -> None:
    src = SHARED / "mbpp" / "mbpp.jsonl"
    if not src.exists():
        pytest.skip("mbpp not found")
    rows = [json.loads(line) for line in src.read_text().splitlines()[:20]]
    data = _write(tmp_path / "mbpp.jsonl", [{"prompt": r["text"], "completion": r["code"]} for r in rows])
    p = preview_training(TrainConfig(train=str(data), model=str(tiny_model_dir)))
    assert "def " in _trained_text(p) and rows[0]["text"][:30] not in _trained_text(p)
    assert p.trained_share > 0.3 and p.refusal is None


def test_multi_turn_chat_trains_every_answer_with_its_end_of_turn(tiny_model_dir: Path, tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "What is 2+1?"}, {"role": "assistant", "content": "3"},
                         {"role": "user", "content": "And times two?"}, {"role": "assistant", "content": "6"}]}
    p = preview_training(TrainConfig(train=str(_write(tmp_path / "chat.jsonl", [chat] * 3)),
                                     model=str(tiny_model_dir)))
    segs = p.examples[0].segments
    assert [s.text for s in segs if s.trained and not s.eos] == ["3", "6"]
    assert sum(1 for s in segs if s.eos and s.trained) == 2  # each answer's end-of-turn token is learnt


def test_refuses_when_nothing_is_trained(tiny_model_dir: Path, tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    data = _write(tmp_path / "chat.jsonl", [chat] * 3)
    p = preview_training(TrainConfig(train=str(data), model=str(tiny_model_dir), max_seq_length=1))
    assert p.trained_tokens == 0 and p.refusal is not None and "every token is masked" in p.refusal


def test_refuses_when_everything_is_trained() -> None:
    p = TrainPreview(train="x", model="m", eos_token="<e>", examples=[], examples_checked=4, trained_tokens=40,
                     masked_tokens=0, examples_all_trained=4)
    assert p.refusal and "every token carries a label" in p.refusal
    assert p.to_dict()["ok"] is False


def test_cli_preview_prints_and_exits_2_on_refusal(tiny_model_dir: Path, tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    data = _write(tmp_path / "chat.jsonl", [chat] * 3)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "cli", "train", "--train", str(data), "--model", str(tiny_model_dir), "--preview"]
    ok = subprocess.run([*base, "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    doc = json.loads(ok.stdout)
    assert doc["ok"] and doc["trained_tokens"] > 0 and doc["examples"][0]["segments"][-1]["eos"]
    human = subprocess.run(base, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert "trained" in human.stdout and "⏎" in human.stdout
    bad = subprocess.run([*base, "--max-seq-length", "1"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "refused" in bad.stdout
