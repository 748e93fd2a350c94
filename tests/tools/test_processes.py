"""tools.processes: the one stop path (ask children to checkpoint, a bounded wait, then end them; a second stop
at once), children that find their parent gone, and a pid that names one process only with its start time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import processes

# A child that "checkpoints" for 30 s after a first SIGINT and stops at once on a second one (as the trainer does).
SLOW_SAVER = textwrap.dedent("""
    import signal, sys, time, pathlib
    seen = []
    def on_int(*a):
        seen.append(1)
        if len(seen) > 1:
            pathlib.Path(sys.argv[1]).write_text("second")
            sys.exit(130)
    signal.signal(signal.SIGINT, on_int)
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
""")


@pytest.fixture(autouse=True)
def fresh_stop() -> Iterator[None]:
    processes.reset_stop()
    yield
    for c in processes.children():
        c.signal(signal.SIGKILL, group=True)
    processes.reset_stop()
    jobs = sys.modules.get("agent.jobs")
    if jobs is not None:  # the stop set every cancel token; later tests start with none set
        jobs.advisor_token.reset()


def _spawn(tmp_path: Path, **kw: object) -> processes.Child:
    child = processes.spawn([sys.executable, "-c", SLOW_SAVER, str(tmp_path / "mark")], label="saver",
                            checkpoints=True, stdout=subprocess.PIPE, text=True, **kw)  # type: ignore[arg-type]
    assert child.proc.stdout is not None and child.proc.stdout.readline().strip() == "ready"
    return child


def test_first_stop_asks_and_the_bound_ends_what_is_left(tmp_path: Path) -> None:
    child = _spawn(tmp_path)
    assert processes.request_stop(signal.SIGTERM) == [child]
    assert processes.interrupted_exit_code() == 143  # SIGTERM: 128 + 15
    time.sleep(0.3)
    assert child.alive  # still "checkpointing"
    t0 = time.monotonic()
    assert processes.end_children(1.0) == [child]  # past the bound: ended
    assert time.monotonic() - t0 < 5 and not child.alive and child.proc.returncode == -signal.SIGKILL


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    child = _spawn(tmp_path)
    with pytest.raises(KeyboardInterrupt), processes.StopSignals(raise_in_main=False):
        os.kill(os.getpid(), signal.SIGINT)  # first: asked to checkpoint, the command goes on
        time.sleep(0.3)
        assert child.alive and processes.stop_count() == 1
        os.kill(os.getpid(), signal.SIGINT)  # second: asked again, and the command stops
        time.sleep(1)
    assert child.proc.wait(timeout=10) == 130 and (tmp_path / "mark").read_text() == "second"
    assert processes.interrupted_exit_code() == 130


def test_the_stop_hooks_run_and_a_kept_child_is_left_alone(tmp_path: Path) -> None:
    seen: list[str] = []
    processes.add_stop_hook(lambda: seen.append("hook"))
    kept = _spawn(tmp_path, keep_file=tmp_path / "keep")
    kept.keep()
    assert processes.request_stop() == [] and seen[-1] == "hook"
    assert processes.stop_requested() is None  # the TUI's quit: no signal recorded
    assert processes.end_children(0.2) == [] and kept.alive


def test_a_pid_names_one_process_only_with_its_start_time() -> None:
    me = processes.identity()
    assert me["start"] is not None and processes.alive(me["pid"], me["start"])
    assert not processes.alive(me["pid"], me["start"] + 1)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not processes.alive(p.pid)


# The trainer's side in miniature: the first stop signal starts a 1.5 s "checkpoint"; a second one drops it.
CHECKPOINTER = textwrap.dedent("""
    import pathlib, signal, sys, time
    from tools import processes
    mark = pathlib.Path(sys.argv[1])
    state = {"asked": 0}
    def on_stop(signum, frame):
        processes.note_stop(signum)
        state["asked"] += 1
        if state["asked"] > 1:
            mark.write_text("second signal: checkpoint dropped")
            sys.exit(130)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    processes.watch_parent()
    print("ready", flush=True)
    while not state["asked"]:
        time.sleep(0.02)
    time.sleep(1.5)  # writing the checkpoint, while the parent has already quit
    mark.write_text("saved")
""")

# The TUI's quit in miniature: ask the child to stop (SIGINT), then exit at once without waiting for it.
QUITTING_PARENT = textwrap.dedent("""
    import subprocess, sys
    from tools import processes
    child = processes.spawn([sys.executable, "-c", sys.argv[1], sys.argv[2]], label="trainer", checkpoints=True,
                            stdout=subprocess.PIPE, text=True)
    assert child.proc.stdout.readline().strip() == "ready"
    print(child.proc.pid, flush=True)
    processes.request_stop()
""")


def test_a_child_already_stopping_is_not_asked_again_when_its_parent_quits(tmp_path: Path) -> None:
    """The quit asks the trainer to checkpoint and the TUI is gone a second later: finding its parent gone must
    not read as a second Ctrl-C (which drops the checkpoint). CI caught exactly this in the tmux quit check."""
    mark = tmp_path / "mark"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    parent = subprocess.run([sys.executable, "-c", QUITTING_PARENT, CHECKPOINTER, str(mark)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert parent.returncode == 0, parent.stderr
    pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 20
    while processes.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.alive(pid)
    assert mark.read_text() == "saved"


def test_an_orphan_not_asked_to_stop_is_told_when_its_parent_dies(tmp_path: Path) -> None:
    """The other half: a parent killed with -9 asked nothing, so the child signals itself and checkpoints."""
    mark = tmp_path / "mark"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    parent_code = QUITTING_PARENT.replace("processes.request_stop()", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    parent = subprocess.run([sys.executable, "-c", parent_code, CHECKPOINTER, str(mark)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 20
    while processes.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.alive(pid)
    assert mark.read_text() == "saved"
