"""The advisor's pipeline trains in a child process (issue 15 item 1): live events, cancel -> checkpoint ->
interrupted with a resume hint, and a run kept in the background is left alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from agent import jobs, pipeline
from tests.tui.test_long_work import TRAINER
from tools.train import TrainConfig


@pytest.fixture
def fake_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {"events": []}

    class Child(jobs.TrainingProcess):
        def __init__(self, args: list[str], **kw: Any) -> None:
            seen["args"], seen["kw"] = args, kw
            super().__init__(args, cmd=[sys.executable, "-c", TRAINER, str(tmp_path / "ckpt")], **kw)
            seen["proc"] = self

    monkeypatch.setattr(jobs, "TrainingProcess", Child)

    def callback() -> Any:
        def forward(ev: Any) -> None:
            jobs.advisor_token.check()  # what pipeline.progress_callback does inside a graph run
            seen["events"].append(ev)
            if seen.get("stop_at") == ev.step:
                seen.get("before_stop", lambda: None)()
                jobs.advisor_token.cancel()

        return forward

    monkeypatch.setattr(pipeline, "progress_callback", callback)
    jobs.advisor_token.reset()
    yield seen
    jobs.advisor_token.reset()


def test_train_in_child_passes_the_config_and_a_run_id(fake_child: dict[str, Any], tmp_path: Path) -> None:
    fake_child["stop_at"] = None
    cfg = TrainConfig(train=str(tmp_path / "train.jsonl"), max_steps=30, learning_rate=3e-4)
    result = pipeline.train_in_child(cfg)
    args = fake_child["args"]
    plan = json.loads(Path(args[args.index("--plan") + 1]).read_text())["train_config"]
    assert plan["max_steps"] == 30 and plan["learning_rate"] == 3e-4 and plan["train"].endswith("train.jsonl")
    assert args[args.index("--run-id") + 1] == fake_child["kw"]["run_id"]
    assert fake_child["kw"]["source"] == "advisor"
    assert result["status"] == "completed" and len(fake_child["events"]) > 100


def test_stopping_the_advisor_checkpoints_the_child_and_says_how_to_resume(fake_child: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    fake_child["stop_at"] = 3
    result = pipeline.train_in_child(TrainConfig(train=str(tmp_path / "t.jsonl")))
    assert result["status"] == "interrupted" and (tmp_path / "ckpt").exists()
    assert fake_child["proc"].returncode == 130
    state = {"answers": {}, "plan": {}, "pipeline": {"split": {"files": {"train": "t", "val": "v"}}}}

    def runner(config: Any) -> dict[str, Any]:
        return result

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "TRAIN_RUNNER", runner)
        with pytest.raises(pipeline.ToolFailed) as e:
            pipeline.train_step(state)
    assert "train-x" in e.value.message and "--resume train-x" in e.value.message


def test_a_run_kept_in_the_background_is_not_stopped(fake_child: dict[str, Any], tmp_path: Path) -> None:
    fake_child["stop_at"] = 3
    fake_child["before_stop"] = lambda: fake_child["proc"].detach()  # the user chose "keep it running"
    import threading

    t = threading.Thread(target=pipeline.train_in_child, args=(TrainConfig(train=str(tmp_path / "t.jsonl")),),
                         daemon=True)
    t.start()
    t.join(timeout=2.0)
    proc = fake_child["proc"]
    assert not proc.cancelled and proc.alive
    proc.cancel()
    proc.proc.wait(timeout=20)
