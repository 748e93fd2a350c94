"""Every process tunewise starts stops with it (issue 23): the parent's kill -9 ends its training child (which
checkpoints and records ``interrupted``), and a Ctrl-C to ``advise --answers --json`` during training stops the
pipeline's child at a checkpoint, prints one ``interrupted`` document and exits 130; ``--resume`` continues."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.cli.test_cli_train import REPO, _data, tw

# A parent that starts training the way the advisor's pipeline and the Training view do (agent.jobs), prints the
# child's pid at the first training step, then waits to be killed.
PARENT = textwrap.dedent("""
    import sys, time
    from agent import jobs
    p = jobs.TrainingProcess(sys.argv[1:], run_id="train-orphan")
    for ev in p:
        if ev.get("stage") == "train" and ev.get("metrics"):
            print(p.proc.pid, flush=True)
            break
    time.sleep(600)
""")


def _tunewise_processes(root: int) -> list[psutil.Process]:
    """Live processes started (at any depth) by ``root``, or carrying it as their tunewise parent."""
    found = []
    for p in psutil.process_iter(["pid", "environ"]):
        env = p.info.get("environ") or {}
        if str(env.get("TUNEWISE_PARENT", "")).startswith(f"{root}:") and p.is_running() \
                and p.status() != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def test_kill_9_of_the_parent_ends_the_training_child(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tools.runlog import RunLog

    t, v = _data(tmp_path)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, "--train", str(t), "--val", str(v), "--model",
                               str(tiny_model_dir), "--max-steps", "500", "--eval-steps", "100", "--batch-size", "2",
                               "--run-id", "train-orphan"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    assert _tunewise_processes(parent.pid) == [child]
    parent.kill()
    parent.wait()
    gone, alive = psutil.wait_procs([child], timeout=10)
    assert not alive, "the training child outlived its parent's kill -9"
    assert not _tunewise_processes(parent.pid)
    run = RunLog().get_run("train-orphan")
    assert run is not None and run["status"] == "interrupted"  # it found its parent gone and checkpointed
    assert list((Path(run["artifacts"]["checkpoints"])).glob("checkpoint-*"))


def test_a_reused_pid_does_not_keep_a_run_alive() -> None:
    import os

    from tools import processes
    from tools.runlog import RunLog

    me = processes.identity()
    assert processes.alive(me["pid"], me["start"])
    assert not processes.alive(me["pid"], me["start"] + 1)  # same pid, another process: not the run's worker
    row = {"status": "running", "pid": os.getpid(), "host": me["host"], "pid_start": me["start"]}
    assert RunLog.live_status(row) == "running"
    assert RunLog.live_status({**row, "pid_start": me["start"] - 5}) == "crashed"
    assert RunLog.live_status({**row, "pid_start": None}) == "running"  # a record from before m005


def test_a_run_records_pid_start_time_and_host() -> None:
    from tools import processes
    from tools.runlog import RunLog

    log = RunLog()
    rid = log.start_run("prompt_eval")
    row = log.query("SELECT pid, pid_start, host FROM runs WHERE run_id = ?", [rid])[0]
    assert row == {k: v for k, v in processes.identity().items() if k != "start"} | {"pid_start":
                                                                                       processes.start_time(row["pid"])}
    log.heartbeat(rid, train_seconds=1.0)  # a heartbeat without a pid keeps the recorded one
    assert log.query("SELECT pid_start FROM runs WHERE run_id = ?", [rid])[0]["pid_start"] == row["pid_start"]


def _advise_answers(tmp_path: Path, model: Path, banking77: Path) -> Path:
    """1,200 banking77 rows to train on, a 3-row test set for a short prompt baseline, 5,000 steps to stop."""
    import csv

    with (banking77 / "train.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:1200]
    with (tmp_path / "b77.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(rows)
    with (banking77 / "test.csv").open(encoding="utf-8") as f:
        test = list(csv.DictReader(f))[:3]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps({"input": r["text"], "output": r["category"]}) + "\n"
                                                 for r in test))
    answers = {"task": "classification", "goals": ["quality", "consistency"], "quality_target": 0.9,
               "model": str(model), "model_params_b": 0.135, "gpu_memory_gb": 24, "gpus": 1, "consistency": "high",
               "data": str(tmp_path / "b77.csv"), "test_set": str(tmp_path / "test.jsonl"), "max_steps": 5000,
               "go_on": True}
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    return tmp_path / "answers.json"


@pytest.mark.slow
def test_ctrl_c_to_scripted_advise_stops_training_at_a_checkpoint(tiny_model_dir: Path, tmp_path: Path,
                                                                  banking77: Path) -> None:
    answers = _advise_answers(tmp_path, tiny_model_dir, banking77)
    data_before = (tmp_path / "b77.csv").read_bytes()
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err:
        p = subprocess.Popen([sys.executable, "-m", "cli", "advise", "--answers", str(answers), "--json"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + 900
    while "advise: train 1/" not in err_path.read_text() and "advise: train 2/" not in err_path.read_text():
        assert p.poll() is None and time.monotonic() < deadline, err_path.read_text()[-3000:]
        time.sleep(0.2)
    family = psutil.Process(p.pid).children(recursive=True)
    family += _tunewise_processes(p.pid)
    assert family, "the pipeline trains in a child process"
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    took = time.monotonic() - t0
    stderr = err_path.read_text()
    assert p.returncode == 130, stderr[-3000:]
    assert took < 10, f"advise took {took:.1f} s to stop"
    doc = json.loads(out)  # exactly one JSON document
    assert doc["status"] == "interrupted" and doc["signal"] == "SIGINT" and doc["exit_code"] == 130
    [run] = doc["runs"]
    assert run["checkpoint"] and Path(run["checkpoint"]).is_dir()
    assert f"tunewise train --resume {run['run_id']}" in doc["resume"]
    assert f"checkpoint kept at {run['checkpoint']}" in stderr
    assert "Loading weights" not in stderr and "it/s]" not in stderr  # no library progress bars in scripts
    _, alive = psutil.wait_procs(family, timeout=5)
    assert not alive
    runs = {r["run_id"]: r for r in json.loads(tw("runs", "list", "--json").stdout)["runs"]}
    assert runs[run["run_id"]]["status"] == "interrupted"
    assert "running" not in {r["status"] for r in runs.values()}
    assert (tmp_path / "b77.csv").read_bytes() == data_before

    # --resume continues from the checkpoint: stop it again once it is past the checkpoint's step
    ck_step = int(Path(run["checkpoint"]).name.split("-")[1])
    r = subprocess.Popen([sys.executable, "-m", "cli", "train", "--resume", run["run_id"], "--events", "jsonl"],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert r.stdout is not None
    for line in r.stdout:
        ev = json.loads(line)
        if ev["stage"] == "train" and ev["metrics"] and ev["step"] > ck_step:
            r.send_signal(signal.SIGINT)
            break
    rest, _ = r.communicate(timeout=120)
    result = [json.loads(x) for x in rest.splitlines()][-1]["result"]
    assert r.returncode == 130 and result["status"] == "interrupted"
    assert result["resumed_from"] == run["checkpoint"] and result["steps"] > ck_step


def test_the_tui_quit_and_the_cli_stop_share_one_path(tmp_path: Path) -> None:
    """tui.services.stop_all_work is jobs.stop_all: the training child checkpoints, every cancel token is set, a
    run the user keeps running is left alone."""
    from agent import jobs
    from tests.tui.test_long_work import TRAINER
    from tools import processes
    from tui import services

    processes.reset_stop()
    jobs.advisor_token.reset()
    stopped = jobs.TrainingProcess([], cmd=[sys.executable, "-c", TRAINER, str(tmp_path / "a")], run_id="train-a")
    kept = jobs.TrainingProcess([], cmd=[sys.executable, "-c", TRAINER, str(tmp_path / "b")], run_id="train-b")
    next(iter(stopped)), next(iter(kept))
    kept.detach()
    try:
        assert services.stop_all_work() == [stopped]
        assert jobs.advisor_token.cancelled and stopped.cancelled
        assert stopped.proc.wait(timeout=20) == 130 and (tmp_path / "a").exists()
        assert kept.alive and not kept.cancelled
    finally:
        kept.cancel()
        kept.proc.wait(timeout=20)
        jobs.advisor_token.reset()
        processes.reset_stop()
