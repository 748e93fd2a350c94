"""The ``tunewise`` command: one Typer app; each command is a thin shell over one tool or the advisor.

``tunewise`` with no arguments opens the TUI. Importing this package must stay light (no torch):
``tunewise --help`` answers in well under a second.
"""

from __future__ import annotations

import sys

import typer

from cli import advise, data, doctor, evaluate, learning_curve, prompt_eval, report, runs, train

app = typer.Typer(
    name="tunewise",
    help="Should I fine-tune? tunewise measures prompts first, then cleans data, trains and evaluates.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for module in (advise, data, prompt_eval, train, evaluate, runs, doctor, learning_curve, report):
    module.register(app)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context,
          data: str = typer.Option("", "--data", help="Your data file: the terminal UI reads it first."),
          test: str = typer.Option("", "--test", help="Your test set: every step of the terminal UI measures "
                                                      "on it.")) -> None:
    """Without a command, open the terminal UI (with --data/--test: on your files)."""
    if ctx.invoked_subcommand is None:
        open_tui({k: v for k, v in (("data", data), ("test_set", test)) if v})


def open_tui(answers: dict[str, str] | None = None) -> None:
    """Open the terminal UI (Textual is imported here, not at start-up, so `--help` stays fast); ``answers``
    (question id -> value, e.g. the data file) are given to the advisor when the user starts their own task."""
    from tui.app import run

    run(answers)


def main() -> None:
    """Console-script entry point: user-facing errors become messages, bugs become a short note + log path."""
    from cli.common import run_guarded

    code = run_guarded(app)
    from tools import processes

    if not processes.stop_requested():
        sys.exit(code)
    # Stopped: end without the interpreter's final teardown, which with torch loaded takes seconds (measured 6 s
    # of a 7 s stop on a 2-core CPU); a Ctrl-C must end the command promptly. The atexit handlers still run.
    import atexit
    import contextlib
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)
