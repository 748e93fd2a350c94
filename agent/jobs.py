"""Long jobs that must never trap the user: training in a child process, and a cancel signal for work in threads.

* ``TrainingProcess`` runs ``tunewise train ... --events jsonl`` as a child process (no GIL fight with torch, a
  crash stays in the child). ``cancel()`` sends SIGINT, which the trainer handles by writing a checkpoint and
  marking the run ``interrupted``. The child runs in its own session, so a Ctrl-C in the terminal reaches the
  app (which asks what to do), not the trainer. It is a ``tools.processes`` child: it stops when its parent dies
  (kill -9 included), unless the user chose to keep it running (``detach``), and ``stop_all`` (the TUI's quit,
  the CLI's Ctrl-C through ``tools.processes.request_stop``) stops it with everything else.
* Every live child is in one registry (``running()``), whoever started it (the Training view or the advisor's
  pipeline), so the app can list, stop or keep them when it quits.
* ``CancelToken``: work in a thread (prompt evaluation, evaluation, cleaning) stops at its next progress event
  once the token is set: ``token.wrap(on_progress)`` raises ``JobCancelled``, a ``KeyboardInterrupt``, so the
  tools record the run as ``interrupted`` exactly as they do for a Ctrl-C in the CLI.

Light on purpose (no torch, no langgraph): the TUI imports it at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tools import processes

REPO = Path(__file__).resolve().parent.parent


class JobCancelled(KeyboardInterrupt):
    """The user cancelled a job. A KeyboardInterrupt, so the tools' own handling applies: the run log says
    ``interrupted`` and what was finished is kept; ``except Exception`` blocks do not swallow it."""


class CancelToken:
    """A flag one side sets and the worker checks at its next progress event. Every token is cancelled by a stop
    request (``tools.processes.request_stop``: Ctrl-C in the CLI, quitting the TUI)."""

    def __init__(self, name: str = "job") -> None:
        self.name = name
        self._event = threading.Event()
        _tokens.add(self)

    def cancel(self) -> None:
        self._event.set()

    def reset(self) -> None:
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise JobCancelled(f"{self.name} was cancelled")

    def wrap(self, on_progress: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """``on_progress`` that first raises ``JobCancelled`` once the token is set."""

        def relay(ev: Any) -> None:
            self.check()
            if on_progress is not None:
                on_progress(ev)

        return relay


_tokens: weakref.WeakSet[CancelToken] = weakref.WeakSet()


def _cancel_every_token() -> None:
    for token in list(_tokens):
        token.cancel()


processes.add_stop_hook(_cancel_every_token)

# The advisor's tool calls (prompt baseline, cleaning, evaluation) check this token at every progress event; the
# app sets it when the user stops the advisor's work. The pipeline's training child is stopped through
# ``cancel_training()`` instead, so that it checkpoints.
advisor_token = CancelToken("the advisor's work")


# ------------------------------------------------------------------------------------------------ training
_lock = threading.Lock()
_running: list[TrainingProcess] = []
_all: list[TrainingProcess] = []  # every training child this process started (stopped_runs reports them)


class TrainingProcess:
    """``tunewise train ... --events jsonl`` as a child process.

    Iterate it for ProgressEvent dicts (one JSON line each); ``result`` then holds the run's JSON document (the
    last line). ``cancel()`` sends SIGINT: the trainer checkpoints and stops. ``run_id`` is known from the
    start when the caller chose it (the advisor does), else from the result.
    """

    def __init__(self, args: list[str], *, cmd: list[str] | None = None, run_id: str | None = None,
                 source: str = "training") -> None:
        self.cmd = cmd or [sys.executable, "-m", "cli", "train", *args, "--events", "jsonl"]
        self.run_id = run_id
        self.source = source
        self.step = 0
        self.total: int | None = None
        self.cancelled = False
        self.detached = False
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                                           if p)}
        # own_group (a new session): the terminal's Ctrl-C goes to the app only; the app decides what the trainer
        # does. Events and stderr go to files, not pipes: a run the user keeps going after the app has quit must
        # not die on a closed pipe, and a pipe nobody reads would block the child once it fills.
        self.events_path, self.stderr_path = _log_files(run_id)
        keep = self.events_path.with_name(self.events_path.name.replace(".events.jsonl", ".keep"))
        with self.events_path.open("w", encoding="utf-8") as out, self.stderr_path.open("w", encoding="utf-8") as err:
            self.child = processes.spawn(self.cmd, label=f"training {run_id or ''}".strip(), checkpoints=True,
                                         own_group=True, keep_file=keep, env=env, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, text=True, cwd=str(REPO))
        self.proc = self.child.proc
        self.child.extra["training"] = self
        self.result: dict[str, Any] | None = None
        with _lock:
            _running.append(self)
            _all.append(self)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in _follow(self.events_path, self.proc):
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if doc.get("stage") == "result" and isinstance(doc.get("result"), dict):
                    self.result = doc["result"]  # the last line: the run's JSON document
                    self.run_id = self.result.get("run_id") or self.run_id
                elif "stage" in doc:
                    if doc.get("stage") == "train":
                        self.step, self.total = int(doc.get("step") or 0), doc.get("total")
                    yield doc
                else:
                    self.result = doc
        finally:
            with _lock:
                if self in _running and not self.alive:
                    _running.remove(self)

    def cancel(self) -> None:
        """Ask the trainer to checkpoint and stop (one SIGINT: a second would stop it before the checkpoint)."""
        if self.cancelled:
            return
        self.cancelled = True
        if self.child.asked == 0:
            self.child.ask_to_stop()

    def detach(self) -> None:
        """Keep the run going after the app quits; its progress is in the run log (Runs view)."""
        self.detached = True
        self.child.keep()

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> str:
        total = f"/{self.total}" if self.total else ""
        return f"training run {self.run_id or '(starting)'} at step {self.step}{total}"

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""


def _log_files(run_id: str | None) -> tuple[Path, Path]:
    import time

    from tools import paths

    folder = paths.home() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"train-{run_id or f'{os.getpid()}-{time.monotonic_ns()}'}"
    return folder / f"{stem}.events.jsonl", folder / f"{stem}.stderr.txt"


def _follow(path: Path, proc: subprocess.Popen[str], poll_s: float = 0.1) -> Iterator[str]:
    """The lines of a file another process is writing, until that process has ended and every line is read."""
    import time

    with path.open(encoding="utf-8") as f:
        partial = ""
        while True:
            chunk = f.readline()
            if chunk:
                partial += chunk
                if partial.endswith("\n"):
                    yield partial
                    partial = ""
                continue
            if proc.poll() is not None:
                rest = partial + f.read()
                if rest:
                    yield from rest.splitlines()
                return
            time.sleep(poll_s)


def running() -> list[TrainingProcess]:
    """Every training child of this process that is still alive."""
    with _lock:
        return [p for p in _running if p.alive]


def cancel_training(source: str | None = None) -> list[TrainingProcess]:
    """SIGINT every live training child (or those from ``source``): each checkpoints and stops."""
    procs = [p for p in running() if source is None or p.source == source]
    for p in procs:
        p.cancel()
    return procs


def stop_all() -> list[TrainingProcess]:
    """Stop everything this process runs, the one stop path of every front end (``tools.processes.request_stop``):
    training children checkpoint (SIGINT), every cancel token is set, other children are asked to end. Returns
    the training processes that were asked to stop (a run kept in the background is left alone)."""
    asked = processes.request_stop()
    for c in asked:
        tp = c.extra.get("training")
        if isinstance(tp, TrainingProcess):
            tp.cancelled = True
    return [c.extra["training"] for c in asked if isinstance(c.extra.get("training"), TrainingProcess)]


def stopped_runs() -> list[dict[str, Any]]:
    """What a stop left behind, one dict per training child of this process: run id, step, whether it ended,
    its checkpoint folder and how to resume (the CLI's interrupted document; the TUI's exit note says the same)."""
    from tools import paths
    from tools.train import checkpoints

    out = []
    with _lock:
        procs = list(_all)
    for p in procs:
        if not p.run_id:
            continue
        ck = checkpoints.newest_complete(paths.run_dir(p.run_id) / "checkpoints")
        out.append({"run_id": p.run_id, "step": p.step, "ended": not p.alive, "returncode": p.returncode,
                    "checkpoint": str(ck) if ck else None,
                    "resume": f"tunewise train --resume {p.run_id}" if ck else None})
    return out


def wait_all(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for every cancelled child to end; True when none is left."""
    import time

    deadline = time.monotonic() + timeout
    for p in running():
        if p.detached:
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            p.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            break
    return not [p for p in running() if not p.detached]
