"""What every command shares: JSON output, error rendering, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

# Human output goes to stderr when --json is given, so stdout carries exactly one JSON document.
out = Console()
err = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout and nothing else there.")


def wants_json(argv: list[str] | None = None) -> bool:
    return "--json" in (argv if argv is not None else sys.argv[1:])


_printed = {"json": False}


def print_json(obj: Any) -> None:
    _printed["json"] = True
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def json_printed() -> bool:
    """True once this command has printed its JSON document (a stop must not print a second one)."""
    return _printed["json"]


def interrupted_doc(**extra: Any) -> dict[str, Any]:
    """The ``--json`` document of a command stopped by a signal: ``status: interrupted``, the signal, the exit code."""
    import signal

    from tools import processes

    signum = processes.stop_requested() or signal.SIGINT
    return {"status": "interrupted", "signal": signal.Signals(signum).name,
            "exit_code": processes.interrupted_exit_code(), **extra}


def finish_interrupted(json_mode: bool, **extra: Any) -> int:
    """After a stop: wait (bounded) for the children to checkpoint and end, end what is left, print the one
    document (``--json``) or a note, and return the exit code (130 after SIGINT, 143 after SIGTERM)."""
    from tools import processes

    processes.end_children(processes.second_stop_s() if processes.stop_count() > 1 else None)
    if json_mode and not json_printed():
        print_json(interrupted_doc(**extra))
    err.print(f"[yellow]interrupted[/] ({interrupted_doc()['signal']})", highlight=False)
    return processes.interrupted_exit_code()


def human(json_mode: bool) -> Console:
    """The console for human-readable text: stdout normally, stderr under --json."""
    return err if json_mode else out


def run_guarded(app: Callable[..., Any], argv: list[str] | None = None) -> int:
    """Run the Typer app; render TunewiseError as a message and anything else as a short note + log path."""
    import os

    from tools import processes
    from tools.errors import TunewiseError

    json_mode = wants_json(argv)
    # Progress on stderr is tunewise's own lines: no library's bars (transformers' "Loading weights", datasets').
    # Set before those libraries are imported; the children inherit it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    _printed["json"] = False
    processes.reset_stop()
    processes.watch_parent()  # a child tunewise started stops when its parent is gone (no-op otherwise)

    def hard_exit() -> None:  # the stop bound passed and the command is still busy: one document, then exit
        if json_mode and not json_printed():
            print_json(interrupted_doc(note="ended after the stop grace (proc.stop)"))

    try:
        with processes.StopSignals(on_hard_exit=hard_exit):
            rv = app(args=argv, standalone_mode=False)
        if rv == 130 and processes.stop_requested():  # typer turns the stop's KeyboardInterrupt into Exit(130)
            return finish_interrupted(json_mode)
        # Outside standalone mode click hands back the code of an Exit raised inside a command.
        return rv if isinstance(rv, int) else 0
    except TunewiseError as e:
        if json_mode and not json_printed():
            print_json({"error": e.to_dict()})
        err.print(f"[bold red]error:[/] {e.render()}", highlight=False)
        return e.exit_code
    except KeyboardInterrupt:
        return finish_interrupted(json_mode)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    except Exception as e:  # click's usage errors carry their own exit code
        if processes.stop_requested():  # raised by the stop (duckdb: "Query interrupted"): not a bug
            return finish_interrupted(json_mode)
        import click
        import typer

        # typer 0.2x raises its own Abort/Exit (not click's) from prompts and callbacks.
        if isinstance(e, typer.Exit):
            if e.exit_code == 130 and processes.stop_requested():
                return finish_interrupted(json_mode)
            return e.exit_code
        if isinstance(e, typer.Abort):
            if processes.stop_requested():  # click turns the stop's KeyboardInterrupt into Abort
                return finish_interrupted(json_mode)
            err.print("[yellow]aborted[/]")
            return 130

        # typer 0.2x also vendors click as ``typer._click``: its usage errors (a missing option...) are that
        # module's classes, not click's, and must still read as usage errors, not as bugs.
        kinds = [click.exceptions]
        try:
            from typer._click import exceptions as vendored

            kinds.append(vendored)
        except ImportError:
            pass
        if isinstance(e, tuple(k.ClickException for k in kinds)):
            e.show()  # type: ignore[attr-defined]
            return int(e.exit_code)  # type: ignore[attr-defined]
        if isinstance(e, tuple(k.Exit for k in kinds if hasattr(k, "Exit"))):
            return int(e.exit_code)  # type: ignore[attr-defined]
        if isinstance(e, tuple(k.Abort for k in kinds if hasattr(k, "Abort"))):
            if processes.stop_requested():  # click turns the stop's KeyboardInterrupt into Abort
                return finish_interrupted(json_mode)
            err.print("[yellow]aborted[/]")
            return 130
        from tools.errors import log_bug
        from tools.redaction import redact

        log = log_bug(e)
        if json_mode:
            print_json({"error": {"error": "InternalError", "what": redact(str(e)), "log": str(log)}})
        from rich.markup import escape

        err.print(f"[bold red]internal error:[/] {escape(redact(str(e)))}\n"
                  f"This is a bug in tunewise; the traceback is in {escape(str(log))}", highlight=False)
        return 1


@contextmanager
def progress_bar(json_mode: bool, description: str = "working") -> Iterator[Callable[[Any], None]]:
    """Progress from ProgressEvents, always on stderr (so --json output stays one document on stdout): a rich
    progress bar when stderr is a terminal, plain lines when it is not (a script, a CI log, a pipe)."""
    if not err.is_terminal:
        yield plain_progress(description)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=err, transient=False)
    tasks: dict[str, Any] = {}

    def on_progress(ev: Any) -> None:
        if ev.stage not in tasks:
            tasks[ev.stage] = progress.add_task(ev.stage, total=ev.total, info="")
        info = " ".join(f"{k}={v:.4g}" for k, v in list(ev.metrics.items())[:3] if isinstance(v, int | float))
        info = " ".join(p for p in (info, ev.message) if p)
        progress.update(tasks[ev.stage], completed=ev.step, total=ev.total, info=info)

    with progress:
        yield on_progress


def plain_progress(description: str, *, every_s: float = 15.0, stream: Any = None) -> Callable[[Any], None]:
    """ProgressEvents as plain stderr lines: when a stage starts, at every tenth of it, when its message changes
    (a new variant, a new file), at its end, and at least every ``every_s`` seconds while it moves."""
    import time

    last: dict[str, tuple[int, str, float]] = {}
    t0 = time.monotonic()

    def on_progress(ev: Any) -> None:
        now = time.monotonic()
        total = ev.total or 0
        tick = max(1, total // 10) if total else 1
        prev = last.get(ev.stage)
        due = (prev is None or ev.step - prev[0] >= tick or ev.message != prev[1] or (total and ev.step >= total)
               or (now - prev[2] >= every_s and ev.step != prev[0]))
        if not due:
            return
        last[ev.stage] = (ev.step, ev.message, now)
        info = " ".join(f"{k}={v:.4g}" for k, v in list(ev.metrics.items())[:4] if isinstance(v, int | float))
        text = " ".join(p for p in (info, ev.message) if p)
        out = stream or sys.stderr
        out.write(f"[{now - t0:6.1f}s] {description}: {ev.stage} {ev.step}/{total or '?'} {text}".rstrip() + "\n")
        out.flush()

    return on_progress

