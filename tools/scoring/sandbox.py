"""Run untrusted Python outside the tunewise process: generated programs against their tests, user metrics.

Each job is one child process:

- ``python -I -B -c HARNESS``: isolated mode (no current directory, user site or ``PYTHON*`` variables on the
  path), no ``.pyc`` files written;
- a fresh temporary directory as its working directory, ``HOME`` and ``TMPDIR``, removed afterwards;
- a clean environment (``PATH``, ``LANG``, a fixed hash seed, one thread for maths libraries);
- limits set in the child before it starts (``resource.setrlimit``): address space (memory), CPU seconds,
  file size, no core files, and a cap on new processes;
- its own process group (session), killed as a whole when the wall-clock limit passes;
- for generated programs, a reliability guard as in OpenAI's human-eval: ``os.fork``, ``os.system``,
  ``subprocess.Popen``, ``os.kill`` and similar are removed before the program runs.

The verdict comes back on a pipe as JSON carrying a random nonce the program never sees on its own path, so
a program that exits early with status 0 does not pass. A crash, a hang, a memory or fork bomb costs that
row only: it is scored 0 with its status (``timeout``, ``crashed``, ``error``...), and the run goes on.

What this does NOT protect against is written down in docs/evaluation.md ("What the sandbox does not
protect against"): it is a guard against accidents and runaway programs, not a security boundary.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tools.errors import InputError
from tools.types import ProgressCallback, ProgressEvent, emit

Status = Literal["passed", "failed", "error", "syntax_error", "timeout", "crashed", "no_tests"]


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one child process."""

    timeout_s: float = 20.0
    """Wall-clock seconds before the child's whole process group is killed. MBPP's slowest reference solution
    (task 123, a naive divisor sum) takes about 12 s on a busy 2-core machine."""
    memory_mb: int = 1024
    """Address-space limit (RLIMIT_AS); an allocation beyond it raises MemoryError in the child."""
    max_processes: int = 64
    """New processes (threads count too, on Linux) the user may start beyond those running now (RLIMIT_NPROC)."""
    max_file_mb: int = 16
    """Largest file the child may write (RLIMIT_FSIZE)."""


@dataclass(frozen=True)
class TestOutcome:
    """One program against its tests."""

    passed: bool
    status: Status
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- the child

_GUARD = r'''
def _guard():
    import builtins, os, posix, shutil, subprocess
    try:
        import _posixsubprocess
        _posixsubprocess.fork_exec = None
    except Exception:
        pass
    for name in ("fork", "forkpty", "system", "kill", "killpg", "setsid", "setpgid", "putenv", "unsetenv",
                 "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnl",
                 "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
                 "posix_spawnp", "popen", "rmdir", "removedirs", "chroot", "setuid", "setgid"):
        for mod in (os, posix):
            if hasattr(mod, name):
                setattr(mod, name, None)
    shutil.rmtree = None
    shutil.move = None
    subprocess.Popen = None
    builtins.exit = None
    builtins.quit = None
    # multiprocessing is not imported here (slow): its start methods need fork or fork_exec, both gone.
'''

_TEST_HARNESS = _GUARD + r'''
import json, os, sys, traceback
job = json.loads(sys.stdin.read())
verdict_fd = os.dup(1)
nonce = job.pop("nonce")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)   # the program's prints go nowhere
def report(status, detail=""):
    os.write(verdict_fd, json.dumps({"nonce": nonce, "status": status, "detail": detail[-800:]}).encode())
    os._exit(0)
def tail():
    return traceback.format_exc(limit=3)
g = {"__name__": "__candidate__", "__builtins__": __builtins__}
try:
    code = compile(job["code"], "candidate.py", "exec")
except (SyntaxError, ValueError) as e:
    report("syntax_error", f"{type(e).__name__}: {e}")
try:
    setup = compile(job["setup"], "setup.py", "exec")  # MBPP's test_setup_code: runs after the program
except (SyntaxError, ValueError) as e:
    report("error", f"the test setup does not parse: {e}")
tests = []
for i, t in enumerate(job["tests"]):
    try:
        tests.append(compile(t, f"test_{i + 1}", "exec"))
    except (SyntaxError, ValueError) as e:
        report("error", f"test {i + 1} does not parse: {e}")
_guard()
del job
try:
    exec(code, g)
    exec(setup, g)
except BaseException:
    report("error", tail())
for i, t in enumerate(tests):
    try:
        exec(t, g)
    except AssertionError:
        report("failed", f"test {i + 1} failed")
    except BaseException:
        report("error", f"test {i + 1}: " + tail())
report("passed")
'''

_METRIC_HARNESS = r'''
import importlib, inspect, json, math, numbers, os, sys
job = json.loads(sys.stdin.read())
verdict_fd = os.dup(1)
nonce = job.pop("nonce")
os.dup2(2, 1)   # import-time and call-time prints go to stderr, never to tunewise's stdout
def report(**kw):
    os.write(verdict_fd, json.dumps({"nonce": nonce, **kw}).encode())
    os._exit(0)
sys.path[:0] = job["paths"]
mod_name, fn_name = job["module"], job["function"]
try:
    mod = importlib.import_module(mod_name)
except BaseException as e:
    report(error="import", detail=f"{type(e).__name__}: {e}")
fn = getattr(mod, fn_name, None)
if fn is None:
    report(error="missing", detail=f"module {mod_name!r} has no {fn_name!r}")
if not callable(fn):
    report(error="not_callable", detail=f"{fn_name!r} is a {type(fn).__name__}")
try:
    inspect.signature(fn).bind("prediction", "reference")
except TypeError as e:
    report(error="signature", detail=str(e))
except ValueError:
    pass  # builtins without a signature: try them
out = []
for i, (p, r) in enumerate(zip(job["preds"], job["refs"])):
    try:
        v = fn(p, r)
    except BaseException as e:
        report(error="raised", row=i, detail=f"{type(e).__name__}: {e}")
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        report(error="bad_return", row=i, detail=f"returned {v!r} ({type(v).__name__})")
    out.append(float(v))
report(scores=out)
'''


def _clean_env(home: str) -> dict[str, str]:
    return {"PATH": os.defpath, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home, "TMPDIR": home,
            "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _user_tasks() -> int:
    """Tasks (processes and threads) this user runs now: what RLIMIT_NPROC counts on Linux."""
    try:
        import psutil

        uid = os.getuid()
        total = 0
        for p in psutil.process_iter(["uids", "num_threads"]):
            info = p.info
            if info.get("uids") and info["uids"].real == uid:
                total += int(info.get("num_threads") or 1)
        return total
    except Exception:  # noqa: BLE001 - unknown count: fall back to a generous cap
        return 4096


def _preexec(limits: SandboxLimits, nproc: int | None) -> Any:
    import resource  # imported here, in the parent: an import in the forked child could meet a held lock

    def apply() -> None:
        mem = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(math.ceil(limits.timeout_s)) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        fsize = limits.max_file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
            cap = nproc if hard == resource.RLIM_INFINITY else min(nproc, hard)
            resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))

    return apply


def _run_child(harness: str, job: dict[str, Any], limits: SandboxLimits,
               nproc: int | None) -> tuple[dict[str, Any] | None, str, int | None, bool, float]:
    """Run one harness job; returns (verdict or None, stderr tail, return code, timed out, seconds)."""
    nonce = secrets.token_hex(16)
    payload = json.dumps({**job, "nonce": nonce})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tunewise-sandbox-", ignore_cleanup_errors=True) as tmp:
        proc = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            [sys.executable, "-I", "-B", "-c", harness], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=tmp, env=_clean_env(tmp), start_new_session=True,
            preexec_fn=_preexec(limits, nproc), close_fds=True)  # noqa: PLW1509 - rlimits must be set in the child
        timed_out = False
        try:
            out, err = proc.communicate(payload.encode(), timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = proc.communicate()
        finally:
            _kill_group(proc)  # stragglers the program left behind in its group
    seconds = time.perf_counter() - t0
    verdict = None
    try:
        d = json.loads(out.decode("utf-8", "replace") or "null")
        if isinstance(d, dict) and d.get("nonce") == nonce:
            verdict = d
    except ValueError:
        pass
    return verdict, err.decode("utf-8", "replace")[-800:], proc.returncode, timed_out, seconds


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------- programs

def check_tests(tests: Sequence[str], where: str) -> list[str]:
    """Each test must be a string of Python that parses; otherwise an ``InputError`` naming ``where``."""
    import ast

    if isinstance(tests, str):
        tests = [tests]
    out = []
    for i, t in enumerate(tests):
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"test {i + 1} is not a string of Python", where=where,
                             fix='give each test as a string, e.g. "assert add(1, 2) == 3"')
        try:
            ast.parse(t)
        except SyntaxError as e:
            raise InputError(f"test {i + 1} does not parse: {e.msg} ({t[:80]!r})", where=where,
                             fix="fix the test's Python syntax") from e
        out.append(t)
    return out


def run_tests(code: str, tests: Sequence[str], *, setup: str = "", limits: SandboxLimits | None = None,
              nproc: int | None = None) -> TestOutcome:
    """Run ``code`` then each test (Python ``assert`` statements) in a sandboxed child. Passed only when every
    test ran without raising. A row without tests does not pass (``no_tests``)."""
    limits = limits or SandboxLimits()
    if not tests:
        return TestOutcome(False, "no_tests", "the row has no tests")
    if nproc is None:
        nproc = _user_tasks() + limits.max_processes
    verdict, err, rc, timed_out, seconds = _run_child(
        _TEST_HARNESS, {"code": code, "tests": list(tests), "setup": setup}, limits, nproc)
    if verdict is not None:
        status = verdict["status"]
        return TestOutcome(status == "passed", status, verdict.get("detail", ""), seconds)
    if timed_out:
        return TestOutcome(False, "timeout", f"killed after {limits.timeout_s:g} s", seconds)
    why = f"signal {-rc}" if rc is not None and rc < 0 else f"exit code {rc}"
    return TestOutcome(False, "crashed", f"no verdict ({why}): {err.strip()[-300:]}", seconds)


def default_workers() -> int:
    """Children at a time: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_tests_many(codes: Sequence[str], tests: Sequence[Sequence[str]], *, setups: Sequence[str] | None = None,
                   limits: SandboxLimits | None = None, workers: int | None = None,
                   on_progress: ProgressCallback | None = None) -> list[TestOutcome]:
    """``run_tests`` for many rows, ``workers`` children at a time (default: one per core), in row order."""
    if len(codes) != len(tests):
        raise ValueError(f"{len(codes)} programs for {len(tests)} test lists")
    limits = limits or SandboxLimits()
    nproc = _user_tasks() + limits.max_processes * max(1, workers or default_workers())
    setups = setups or [""] * len(codes)
    done = 0
    results: list[TestOutcome | None] = [None] * len(codes)

    def one(i: int) -> tuple[int, TestOutcome]:
        return i, run_tests(codes[i], tests[i], setup=setups[i], limits=limits, nproc=nproc)

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        for i, outcome in pool.map(one, range(len(codes))):
            results[i] = outcome
            done += 1
            emit(on_progress, ProgressEvent("execute tests", done, len(codes)))
    return [r for r in results if r is not None]


# ---------------------------------------------------------------------------------------------- user metrics

def _split_spec(spec: str) -> tuple[str, str]:
    mod, _, fn = spec.partition(":")
    if not mod or not fn or not mod.replace(".", "").replace("_", "").isalnum():
        raise InputError(f"metric {spec!r} is not of the form module:function", where="--metric",
                         fix="e.g. --metric my_metrics:score, where my_metrics.py defines score(prediction, "
                             "reference) -> float")
    return mod, fn


def _import_paths() -> list[str]:
    """The module search path the user expects: the current folder, then this process's path entries."""
    paths = [os.getcwd()]
    paths += [p for p in sys.path if p and os.path.isdir(p) and p not in paths]
    return paths


def run_user_metric(spec: str, preds: Sequence[str], refs: Sequence[str], *,
                    limits: SandboxLimits | None = None) -> list[float]:
    """Score every (prediction, reference) pair with the user's ``module:function`` in one sandboxed child.

    Nothing of the module runs in this process; its prints go to the child's stderr. A module that does not
    import, a function that does not take (prediction, reference), raises, or returns something other than a
    finite number is the user's to fix: ``InputError`` with what happened.
    """
    mod, fn = _split_spec(spec)
    limits = limits or SandboxLimits(timeout_s=60.0 + 0.05 * len(preds), memory_mb=4096)
    verdict, err, rc, timed_out, _ = _run_child(
        _METRIC_HARNESS, {"module": mod, "function": fn, "paths": _import_paths(), "preds": list(preds),
                          "refs": list(refs)}, limits, None)
    where = f"--metric {spec}"
    if verdict is None:
        if timed_out:
            raise InputError(f"the metric did not finish within {limits.timeout_s:g} s", where=where,
                             fix="make it faster, or score fewer rows (--limit)")
        raise InputError(f"the metric's process ended without a result (exit code {rc}): {err.strip()[-300:]}",
                         where=where, fix="run the function on one pair by hand to see what happens")
    if "scores" in verdict:
        return [float(x) for x in verdict["scores"]]
    kind, detail = verdict.get("error"), verdict.get("detail", "")
    fixes = {
        "import": "make the module importable from the current folder or PYTHONPATH",
        "missing": "check the function name after the colon",
        "not_callable": "name a function",
        "signature": "the function must take (prediction: str, reference: str) and return a float in [0, 1]",
        "raised": "fix the function, or make it return 0.0 for inputs it cannot score",
        "bad_return": "return a number (float in [0, 1]) for every pair",
    }
    row = f" on row {verdict['row'] + 1}" if "row" in verdict else ""
    what = {"import": "cannot load the metric", "missing": "the metric function is missing",
            "not_callable": "the metric is not callable", "signature": "the metric has the wrong signature",
            "raised": "the metric raised an error", "bad_return": "the metric returned a non-number"}.get(
        str(kind), "the metric failed")
    raise InputError(f"{what}{row}: {detail}", where=where, fix=fixes.get(str(kind)))


def check_user_metric(spec: str) -> None:
    """Import the metric in a sandboxed child and check its signature, scoring nothing (fail early)."""
    run_user_metric(spec, [], [])
