"""Child processes tunewise starts live and die with it: one stop path for every front end (issue 23).

* **Parent side.** Every child a tunewise command starts goes through ``spawn`` and is in one registry. A stop
  (the CLI's SIGINT/SIGTERM handler, the TUI's quit) calls ``request_stop``: the stop hooks run (the advisor's
  cancel token, the TUI's job tokens), and each child is asked to stop, a checkpointing child (training) with
  SIGINT so that it checkpoints first. ``end_children`` then waits at most the grace of ``proc.stop`` (knowledge/
  training.yaml) and ends whatever is left. A second stop asks again: the trainer stops at once, without a
  checkpoint, and records ``interrupted``.
* **Child side.** A child learns who started it from ``TUNEWISE_PARENT`` (pid and start time, so a reused pid
  does not fool it). ``watch_parent`` (called by the CLI at start) arms PR_SET_PDEATHSIG where Linux has it and a
  watchdog thread on the parent: when the parent is gone the child sends itself SIGTERM, which the trainer turns
  into "checkpoint, then stop, ``interrupted``"; a child that cannot stop within the grace ends itself (the run
  log's liveness check then says ``crashed``). A child its parent chose to keep running (the TUI's "keep it
  running") finds its keep file and carries on.
* **Liveness.** ``identity``/``alive``: a pid with its start time and host; the run log compares all three.

Light on purpose (no torch): every front end imports it at start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARENT_ENV = "TUNEWISE_PARENT"  # "PID:START" of the tunewise process that started this one
KEEP_ENV = "TUNEWISE_KEEP_FILE"  # when this file exists, the parent let the child outlive it
_PR_SET_PDEATHSIG = 1
_WATCH_EVERY_S = 0.5


# ------------------------------------------------------------------------------------------------ identity
def start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (/proc/PID/stat field 22); None when unknown.
    With the pid it names one process: a pid the kernel reuses later has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        pass
    try:
        import psutil

        return int(psutil.Process(pid).create_time() * 100)
    except Exception:  # noqa: BLE001 - no such process, or no psutil: unknown
        return None


def identity(pid: int | None = None) -> dict[str, Any]:
    """``{"pid", "start", "host"}`` of this process (or ``pid``): what the run log records of a run's worker."""
    import socket

    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start": start_time(pid), "host": socket.gethostname()}


def alive(pid: int, start: int | None = None) -> bool:
    """Is process ``pid`` running (a zombie, killed but not yet reaped, is not), and, when ``start`` is given, is
    it the same process that started then (not a later one the kernel gave the same pid)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (OSError, IndexError):
        pass
    if start is None:
        return True
    now = start_time(pid)
    return now is None or now == int(start)


_libc_handle: list[Any] = []


def _libc() -> Any:
    """libc, loaded once (in the parent: a forked child about to exec should not load libraries)."""
    if not _libc_handle:
        try:
            import ctypes

            _libc_handle.append(ctypes.CDLL(None, use_errno=True))
        except OSError:
            _libc_handle.append(None)
    return _libc_handle[0]


def _set_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; a no-op elsewhere)."""
    libc = _libc()
    with contextlib.suppress(AttributeError, OSError):
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


# ------------------------------------------------------------------------------------------------ the bound
def stop_grace_s() -> float:
    """How long a child asked to stop gets to checkpoint before it is ended (``proc.stop`` grace_s)."""
    return float(_stop_rule()["grace_s"])


def second_stop_s() -> float:
    """After a second stop, how long before what is left is ended (``proc.stop`` second_stop_s)."""
    return float(_stop_rule()["second_stop_s"])


def _stop_rule() -> dict[str, Any]:
    import knowledge

    return dict(knowledge.rule("proc.stop").raw)


# ------------------------------------------------------------------------------------------------ children
@dataclass
class Child:
    """One child process: ``checkpoints`` children get SIGINT (and time to save) before they are ended;
    ``own_group`` children run in their own session, so signals go to their whole process group."""

    proc: subprocess.Popen[Any]
    label: str
    checkpoints: bool = False
    own_group: bool = False
    signal_group: bool = True  # with own_group: stop signals go to the group (False: to the child, which relays)
    keep_file: Path | None = None
    asked: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def kept(self) -> bool:
        return self.keep_file is not None and self.keep_file.exists()

    def signal(self, sig: int, *, group: bool | None = None) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.own_group and (self.signal_group if group is None else group):
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def ask_to_stop(self) -> None:
        """SIGINT to a checkpointing child (the second one makes it stop at once), SIGTERM to the rest."""
        self.asked += 1
        if self.alive:
            self.signal(signal.SIGINT if self.checkpoints else signal.SIGTERM)

    def keep(self) -> None:
        """Let this child outlive its parent (it reads the keep file when it finds the parent gone)."""
        if self.keep_file is not None:
            self.keep_file.parent.mkdir(parents=True, exist_ok=True)
            self.keep_file.touch()


_lock = threading.RLock()  # a signal handler (request_stop) may run while the main thread holds it
_children: list[Child] = []
_hooks: list[Callable[[], None]] = []
_stop: dict[str, Any] = {"signum": None, "count": 0}


def child_env(base: dict[str, str] | None = None, *, keep_file: Path | None = None) -> dict[str, str]:
    """The environment for a child: ``base`` (default: this one) plus who its parent is (and its keep file)."""
    env = dict(os.environ if base is None else base)
    me = identity()
    env[PARENT_ENV] = f"{me['pid']}:{me['start'] or ''}"
    if keep_file is not None:
        env[KEEP_ENV] = str(keep_file)
    else:
        env.pop(KEEP_ENV, None)
    return env


def spawn(cmd: Sequence[str], *, label: str, checkpoints: bool = False, own_group: bool = False,
          signal_group: bool = True, keep_file: Path | None = None, death_signal: int | None = None, env: dict[str, str] | None = None,
          **popen: Any) -> Child:
    """Start ``cmd`` as a registered child that stops with this process.

    A tunewise child (``python -m cli ...``) watches its parent itself (``watch_parent``); for another program
    (``accelerate launch``) give ``death_signal``: the kernel sends it to the child when this process dies."""
    preexec = None
    if death_signal is not None:
        sig = int(death_signal)
        _libc()

        def preexec() -> None:  # in the forked child, before exec: the setting survives exec
            _set_death_signal(sig)

    proc = subprocess.Popen(list(cmd), env=child_env(env, keep_file=keep_file),  # noqa: S603 - argv, no shell
                            start_new_session=own_group, preexec_fn=preexec, **popen)  # noqa: PLW1509
    child = Child(proc, label, checkpoints=checkpoints, own_group=own_group, signal_group=signal_group,
                  keep_file=keep_file)
    with _lock:
        _children.append(child)
    return child


def children() -> list[Child]:
    """Every registered child still running."""
    with _lock:
        _children[:] = [c for c in _children if c.alive]
        return list(_children)


def forget(child: Child) -> None:
    with _lock:
        if child in _children:
            _children.remove(child)


def add_stop_hook(hook: Callable[[], None]) -> None:
    """Run ``hook`` on every stop request (e.g. setting a cancel token that work in threads checks)."""
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)


def note_stop(signum: int) -> None:
    """Record a stop signal this process handles itself (the trainer's), for ``interrupted_exit_code``."""
    with _lock:
        _stop["signum"] = _stop["signum"] or signum
        _stop["count"] += 1


def request_stop(signum: int | None = None) -> list[Child]:
    """The one stop path: run the stop hooks and ask every child (not one kept running) to stop. Returns them.
    Called again, it asks again (a second Ctrl-C: the trainer stops at once, without a checkpoint). ``signum``
    (the signal that asked) is recorded for the exit code; the TUI's quit gives none."""
    if signum is not None:
        note_stop(signum)
    with _lock:
        hooks = list(_hooks)
    for hook in hooks:
        with contextlib.suppress(Exception):
            hook()
    asked = [c for c in children() if not c.kept]
    for c in asked:
        c.ask_to_stop()
    return asked


def stop_requested() -> int | None:
    """The signal of the first stop request (SIGINT for a stop without one), or None."""
    return _stop["signum"]


def stop_count() -> int:
    return int(_stop["count"])


def interrupted_exit_code() -> int:
    """130 after SIGINT, 143 after SIGTERM (128 + the signal), as shells report a process ended by it."""
    return 128 + int(_stop["signum"] or signal.SIGINT)


def reset_stop() -> None:
    """Forget a stop request (a new command in the same process, e.g. tests calling the CLI in-process)."""
    with _lock:
        _stop.update(signum=None, count=0)


def end_children(timeout: float | None = None) -> list[Child]:
    """Wait up to ``timeout`` (default: the stop grace) for the children asked to stop, then kill what is left
    (SIGKILL to their group). Children kept running are left alone. Returns the children that had to be killed."""
    wait = stop_grace_s() if timeout is None else timeout
    deadline = time.monotonic() + wait
    todo = [c for c in children() if not c.kept]
    for c in todo:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    killed = [c for c in todo if c.alive]
    for c in killed:
        c.signal(signal.SIGKILL, group=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(timeout=5)
    return killed


class StopSignals:
    """SIGINT/SIGTERM for a command that has children or work in threads: the first signal calls
    ``request_stop`` (children checkpoint, tokens are set) and, with ``raise_in_main``, raises KeyboardInterrupt
    in the main thread as Python would; a second signal asks again and always raises. A watchdog then keeps the
    bound: after the grace (``second_stop_s`` after a second signal) the children are killed, and if the command
    is still not done ``on_hard_exit`` runs and the process ends with 130/143."""

    def __init__(self, *, raise_in_main: bool = True, on_hard_exit: Callable[[], object] | None = None) -> None:
        self.raise_in_main = raise_in_main
        self.on_hard_exit = on_hard_exit
        self._old: dict[int, Any] = {}
        self._deadline: float | None = None
        self._done = threading.Event()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handler(self, signum: int, frame: Any) -> None:
        request_stop(signum)
        second = stop_count() > 1
        bound = second_stop_s() if second else stop_grace_s()
        deadline = time.monotonic() + bound
        if self._deadline is None:
            self._deadline = deadline
            threading.Thread(target=self._watchdog, daemon=True, name="tunewise-stop-watchdog").start()
        else:
            self._deadline = min(self._deadline, deadline)
        if self.raise_in_main or second:
            raise KeyboardInterrupt

    def _watchdog(self) -> None:
        while not self._done.is_set():
            left = (self._deadline or 0.0) - time.monotonic()
            if left <= 0:
                break
            self._done.wait(min(left, 0.2))
        if self._done.is_set():
            return
        end_children(0)
        if self._done.wait(2.0):
            return
        if self.on_hard_exit is not None:
            with contextlib.suppress(Exception):
                self.on_hard_exit()
        import sys

        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(interrupted_exit_code())


# ------------------------------------------------------------------------------------------------ child side
def parent_from_env() -> tuple[int, int | None] | None:
    """(pid, start) of the tunewise process that started this one, from ``TUNEWISE_PARENT``; None if none."""
    raw = os.environ.get(PARENT_ENV) or ""
    pid, _, start = raw.partition(":")
    if not pid.isdigit():
        return None
    return int(pid), (int(start) if start.isdigit() else None)


_watching: dict[str, Any] = {}


def watch_parent(on_gone: Callable[[], None] | None = None) -> bool:
    """In a child tunewise started: stop when the parent dies, SIGKILL included. Returns True when armed.

    When the parent is gone (and did not keep this child running) ``on_gone`` runs, by default SIGTERM to
    this process (the trainer checkpoints and records ``interrupted``); if the process is still there after
    the stop grace it ends itself."""
    parent = parent_from_env()
    if parent is None or _watching:
        return False
    pid, start = parent
    keep = os.environ.get(KEEP_ENV)
    fired = threading.Event()

    def gone() -> None:
        if fired.is_set() or (keep and Path(keep).exists()):
            return
        fired.set()
        if stop_count() == 0:
            # A stop already asked for (the parent's SIGINT just before it quit) is in progress: another signal
            # now would read as a second Ctrl-C and drop the checkpoint the first one is writing.
            (on_gone or (lambda: os.kill(os.getpid(), signal.SIGTERM)))()
        grace = stop_grace_s()

        def last_resort() -> None:
            time.sleep(grace)
            os._exit(128 + signal.SIGTERM)

        threading.Thread(target=last_resort, daemon=True, name="tunewise-orphan-exit").start()

    def check(*_: Any) -> None:
        if not alive(pid, start):
            gone()

    if threading.current_thread() is threading.main_thread():
        # The kernel's signal comes when the thread that started us ends, not only the process: check first.
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGUSR2, check)
            _set_death_signal(signal.SIGUSR2)

    def watch() -> None:
        while not fired.is_set():
            check()
            time.sleep(_WATCH_EVERY_S)

    _watching["parent"] = parent
    threading.Thread(target=watch, daemon=True, name="tunewise-parent-watch").start()
    check()
    return True


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: the forked pass-1 worker dies with the process that started it, even on kill -9.

    On Linux the kernel delivers SIGKILL when the parent dies (PR_SET_PDEATHSIG); elsewhere, and to close the
    race where the parent died before the call, a watchdog thread checks the parent pid twice a second."""
    _set_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_WATCH_EVERY_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="tunewise-parent-watch").start()


def death_signal_setter(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """For a ``preexec_fn`` that does more (the sandbox's limits): call the result in the forked child."""
    _libc()
    return lambda: _set_death_signal(sig)
