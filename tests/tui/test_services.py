"""The thin services layer: the training child-process reader, the runs queries, error rendering."""

from __future__ import annotations

import json
import os
import sys
import textwrap

from tools.errors import InputError
from tui import services


def test_training_process_reads_events_and_the_result_line() -> None:
    script = textwrap.dedent("""
        import json, sys
        print("warming up (not JSON)")
        for s in (1, 2):
            print(json.dumps({"stage": "train", "step": s, "total": 2, "metrics": {"loss": 2.0 / s}}))
        print(json.dumps({"stage": "eval", "step": 2, "total": 2, "metrics": {"val_loss": 1.5}}))
        print(json.dumps({"stage": "result", "step": 2, "result": {"run_id": "train-x", "status": "completed"}}))
    """)
    proc = services.TrainingProcess([], cmd=[sys.executable, "-c", script])
    events = list(proc)
    assert [e["stage"] for e in events] == ["train", "train", "eval"]
    assert proc.result == {"run_id": "train-x", "status": "completed"}
    assert proc.returncode == 0


def test_start_training_builds_the_train_command(tmp_path, monkeypatch) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n")
    (tmp_path / "val.jsonl").write_text("{}\n")
    seen: list[list[str]] = []
    monkeypatch.setattr(services, "TrainingProcess", lambda args, **kw: seen.append(args) or args)
    services.start_training(str(tmp_path), max_steps=30)
    run_id = seen[0][5]  # chosen here, so the view and the quit dialog name the run from the start
    assert seen[0] == ["--train", str(tmp_path / "train.jsonl"), "--val", str(tmp_path / "val.jsonl"),
                       "--run-id", run_id, "--max-steps", "30"] and run_id.startswith("train-")
    services.start_training("", resume="train-x")
    assert seen[1] == ["--resume", "train-x"]


def test_runs_queries_read_the_run_log() -> None:
    from tools.runlog import RunLog

    log = RunLog()
    a = log.start_run("train", config={"lr": 1e-4}, method="lora", run_id="train-a")
    b = log.start_run("train", config={"lr": 2e-4}, method="lora", run_id="train-b")
    log.log_metrics(a, 1, "train", {"loss": 2.0})
    log.log_metrics(a, 1, "val", {"loss": 2.2})
    assert {r["run_id"] for r in services.list_runs()} == {a, b}
    assert [r["run_id"] for r in services.list_runs("train-b")] == [b]
    detail = services.run_detail(a)
    assert detail["curves"] == {"train": [(1, 2.0)], "val": [(1, 2.2)]}
    cmp = services.compare_runs(a, b)
    assert cmp["config_diff"] == [{"key": "lr", "a": 1e-4, "b": 2e-4}]


def test_describe_error_is_for_users() -> None:
    msg = services.describe_error(InputError("no such file", where="x.jsonl", fix="check the path"))
    assert "no such file" in msg and "check the path" in msg and "Traceback" not in msg


def test_demo_files_are_synthetic_and_labelled() -> None:
    rows = [json.loads(line) for line in services.demo_dataset().read_text().splitlines()]
    assert 1000 <= len(rows) <= 1300  # the advisor's floor for fine-tuning is 1000 (ftw.min_examples)
    assert all(r["meta"]["synthetic"] for r in rows)
    assert len({r["meta"]["label"] for r in rows}) == 8
    test_rows = services.demo_test_set().read_text().splitlines()
    assert len(test_rows) == 40
    answers = services.demo_answers()
    assert answers["data"] == str(services.demo_dataset())
    assert answers["n_examples"] == len(rows)


def test_runs_view_reads_a_dead_running_run_as_crashed() -> None:
    """The Runs view applies the same liveness rule as `tunewise runs list`: a dead pid is a crashed run."""
    import socket
    import subprocess

    from tools.runlog import RunLog

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid is gone
    log = RunLog()
    log.start_run("train", run_id="train-dead")
    log.heartbeat("train-dead", pid=dead.pid, host=socket.gethostname())
    log.start_run("train", run_id="train-alive")
    log.heartbeat("train-alive", pid=os.getpid(), host=socket.gethostname())
    status = {r["run_id"]: r["status"] for r in services.list_runs()}
    assert status == {"train-dead": "crashed", "train-alive": "running"}
    assert [r["run_id"] for r in services.list_runs("crashed")] == ["train-dead"]
