"""Long jobs that must never trap the user: training in a child process, and a cancel signal for work in threads.

* ``TrainingProcess`` runs ``tunewise train ... --events jsonl`` as a child process (no GIL fight with torch, a
  crash stays in the child). ``cancel()`` sends SIGINT, which the trainer handles by writing a checkpoint and
  marking the run ``interrupted``. The child runs in its own session, so a Ctrl-C in the terminal reaches the
  app (which asks what to do), not the trainer; and a run the user keeps going outlives the app.
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
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class JobCancelled(KeyboardInterrupt):
    """The user cancelled a job. A KeyboardInterrupt, so the tools' own handling applies: the run log says
    ``interrupted`` and what was finished is kept; ``except Exception`` blocks do not swallow it."""


class CancelToken:
    """A flag one side sets and the worker checks at its next progress event."""

    def __init__(self, name: str = "job") -> None:
        self.name = name
        self._event = threading.Event()

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


# The advisor's tool calls (prompt baseline, cleaning, evaluation) check this token at every progress event; the
# app sets it when the user stops the advisor's work. The pipeline's training child is stopped through
# ``cancel_training()`` instead, so that it checkpoints.
advisor_token = CancelToken("the advisor's work")


# ------------------------------------------------------------------------------------------------ training
_lock = threading.Lock()
_running: list[TrainingProcess] = []


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
        # start_new_session: the terminal's Ctrl-C goes to the app only; the app decides what the trainer does.
        # Events and stderr go to files, not pipes: a run the user keeps going after the app has quit must not
        # die on a closed pipe, and a pipe nobody reads would block the child once it fills.
        self.events_path, self.stderr_path = _log_files(run_id)
        with self.events_path.open("w", encoding="utf-8") as out, self.stderr_path.open("w", encoding="utf-8") as err:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True,
                                         cwd=str(REPO), env=env, start_new_session=True)
        self.result: dict[str, Any] | None = None
        with _lock:
            _running.append(self)

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
        if self.proc.poll() is None:
            with _suppress_lookup():
                os.killpg(self.proc.pid, signal.SIGINT)

    def detach(self) -> None:
        """Keep the run going after the app quits; its progress is in the run log (Runs view)."""
        self.detached = True

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


class _suppress_lookup:  # noqa: N801 - a tiny context manager: the child may have ended in between
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | PermissionError)


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
