"""``tunewise train | estimate | diagnose | export``: training runs, memory estimates, curve diagnosis."""

from __future__ import annotations

import functools
import inspect
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer

from cli.common import JsonOpt, human, print_json, progress_bar


def _read_plan(plan: str | None) -> dict[str, Any]:
    """The plan file's JSON (the advisor's plan, or a flat dict of TrainConfig fields)."""
    if plan is None:
        return {}
    from tools.errors import InputError

    try:
        doc = json.loads(Path(plan).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the plan: {e}", where=str(plan), fix="give the JSON the advisor wrote") from e
    if not isinstance(doc, dict):
        raise InputError("the plan is not a JSON object", where=str(plan), fix="give the JSON the advisor wrote")
    return doc


def launch_command(accelerate_config: str | Path, fields: dict[str, Any], *, plan: str | None = None,
                   resume: str | None = None, events: str | None = None, json_out: bool = False) -> list[str]:
    """The same training under ``accelerate launch`` (multi-process CPU/DDP, FSDP, DeepSpeed; see knowledge/configs/).
    ``fields`` are the TrainConfig fields given on the command line (run_id names the run for every process)."""
    from tools.train.config import cli_args

    cmd = ["accelerate", "launch", "--config_file", str(accelerate_config), "-m", "cli", "train"]
    if plan:
        cmd += ["--plan", str(plan)]
    if resume:
        cmd += ["--resume", str(resume)]
    cmd += cli_args(fields)
    if events:
        cmd += ["--events", events]
    if json_out:
        cmd.append("--json")
    return cmd


def _run_launcher(cmd: list[str]) -> int:
    """Run ``accelerate launch`` and wait. It is a ``tools.processes`` child: Ctrl-C and SIGTERM reach it once,
    through the one stop path (it relays them to its workers, which checkpoint), the stop grace bounds the wait,
    and it dies with this process (PR_SET_PDEATHSIG; its workers watch this process too). Returns its exit code
    (130/143 when it was stopped)."""
    import shutil
    import signal

    from tools import processes

    if shutil.which("accelerate") is None:  # not on PATH (e.g. a venv not activated): same launcher, by module
        cmd = [sys.executable, "-m", "accelerate.commands.launch", *cmd[2:]]
    # own session: a terminal's Ctrl-C reaches this process only, which relays it once (not twice)
    child = processes.spawn(cmd, label="accelerate launch", checkpoints=True, own_group=True, signal_group=False,
                            death_signal=signal.SIGTERM)
    with processes.StopSignals(raise_in_main=False):
        code = child.proc.wait()
    if processes.stop_requested():
        return processes.interrupted_exit_code()
    return code


def train_cmd(
    plan: str = typer.Option(None, "--plan", help="An advisor plan (JSON) whose settings are the defaults."),
    resume: str = typer.Option(None, "--resume", help="Continue RUN_ID from its newest complete checkpoint."),
    events: str = typer.Option(None, "--events", help="'jsonl': one progress event per line on stdout."),
    launcher: str = typer.Option(None, "--launcher", help="'accelerate' to run through `accelerate launch`."),
    accelerate_config: str = typer.Option(None, "--accelerate-config",
                                           help="accelerate config (2-process CPU, FSDP, DeepSpeed); samples in "
                                                "knowledge/configs/."),
    print_launch: bool = typer.Option(False, "--print-launch", help="Print the accelerate launch command and exit."),
    json_out: bool = JsonOpt,
    # -- preview (tools/train/preview.py; the TUI's Training view shows the same)
    preview: bool = typer.Option(False, "--preview", help="Show the first examples as the model will see them "
                                 "(trained tokens highlighted, end-of-turn token marked, trained/masked counts) "
                                 "and exit; exit code 2 when nothing or everything would be trained."),
    **options: Any,
) -> None:
    """Fine-tune with LoRA, QLoRA or full training; progress per step, everything recorded in the run log.

    Ctrl-C saves a checkpoint and marks the run interrupted; `--resume RUN_ID` continues it. Settings not given
    come from --plan, then from the knowledge tables.
    """
    from tools.errors import InputError, OutOfMemoryError
    from tools.train import TrainConfig, TrainResult
    from tools.train import train as run_training
    from tools.train.config import cli_values, plan_fields

    given = cli_values(options)
    if launcher or print_launch:
        if launcher not in (None, "accelerate"):
            raise InputError(f"unknown launcher {launcher!r}", where="--launcher", fix="use --launcher accelerate")
        if accelerate_config is None:
            raise InputError("--accelerate-config is needed with --launcher/--print-launch",
                             where="--accelerate-config",
                             fix="start from knowledge/configs/accelerate_cpu_ddp.yaml, accelerate_fsdp.yaml or "
                                 "accelerate_deepspeed_zero2.yaml")
        if not resume and not given.get("run_id"):
            from tools.runlog import new_id

            given["run_id"] = new_id("train-")  # every process must write to the same run
        cmd = launch_command(accelerate_config, given, plan=plan, resume=resume, events=events, json_out=json_out)
        if print_launch:
            if json_out:
                print_json({"command": cmd, "shell": shlex.join(cmd)})
            else:
                sys.stdout.write(shlex.join(cmd) + "\n")
            return
        sys.exit(_run_launcher(cmd))

    if events not in (None, "jsonl"):
        raise InputError(f"unknown events format {events!r}", where="--events", fix="use --events jsonl")
    fields = plan_fields(_read_plan(plan)) | given
    if not resume and not fields.get("train"):
        raise InputError("no training data", where="--train", fix="pass --train FILE (or --resume RUN_ID)")
    config = TrainConfig.from_dict(fields)
    if preview:
        _preview(config, json_out)
        return
    from tools.train.core import rank

    quiet = rank() != 0  # under several processes only rank 0 reports

    def emit_line(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def run(on_progress: Any) -> TrainResult:
        try:
            return run_training(config, on_progress=on_progress, resume=resume)
        except OutOfMemoryError as e:
            return TrainResult(run_id=e.run_id, status="failed", steps=0, error=e.to_dict(),
                               retries=e.retries)  # type: ignore[arg-type]

    if quiet:
        result = run(None)
    elif events == "jsonl":
        result = run(lambda ev: emit_line(ev.to_dict()))
        emit_line({"stage": "result", "step": result.steps or 0, "total": None, "metrics": {},
                   "message": result.status, "result": result.to_dict()})
    else:
        with progress_bar(json_out, "train") as on_progress:
            result = run(on_progress)
        if json_out:
            print_json(result.to_dict())
        else:
            _print_result(result)
    from tools import processes

    code = {"completed": 0, "interrupted": processes.interrupted_exit_code()}.get(result.status, 1)
    if code:
        sys.exit(code)  # SystemExit carries the code through run_guarded (typer.Exit's would be dropped)


def _with_config_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with one option per TrainConfig field (name, type and help from the field's metadata) in
    place of its ``**options``; Typer reads the generated signature."""
    from tools.train.config import cli_fields

    sig = inspect.signature(command)
    fixed = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in fixed}
    generated = []
    for cf in cli_fields():
        if cf.name in taken:
            raise TypeError(f"TrainConfig.{cf.name} clashes with an option of {command.__name__}")
        decl = f"{cf.option}/--no-{cf.option[2:]}" if cf.is_flag else cf.option
        generated.append(inspect.Parameter(cf.name, inspect.Parameter.KEYWORD_ONLY,
                                           default=typer.Option(None, decl, help=cf.help),
                                           annotation=Optional[cf.type]))  # noqa: UP045 - a real type for Typer
    params = generated + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in fixed]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in taken}
        command(**own, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _preview(config: Any, json_out: bool) -> None:
    """``--preview``: render tools.train.preview and refuse (exit 2) when nothing or everything is trained."""
    from tools.train.preview import preview_training

    p = preview_training(config)
    if json_out:
        print_json(p.to_dict())
    else:
        render_preview(p, human(False))
    if p.refusal:
        if not json_out:
            human(False).print(f"[bold red]refused:[/] {p.refusal}", highlight=False)
        sys.exit(2)


def render_preview(p: Any, con: Any) -> None:
    """Trained tokens on green, masked ones dim, the end-of-turn token as a yellow marker."""
    from rich.markup import escape

    con.print(f"[bold]What training sees[/]: {p.train} with {p.model}'s chat template; "
              f"[black on green] trained [/] [dim]masked[/] [bold yellow]⏎{escape(str(p.eos_token))}[/] end of turn",
              highlight=False)
    for i, ex in enumerate(p.examples, 1):
        where = f" (line {ex.line})" if ex.line else ""
        con.print(f"\n[bold]example {i}{where}[/]: {ex.trained_tokens} trained, {ex.masked_tokens} masked tokens",
                  highlight=False)
        parts = []
        for s in ex.segments:
            if s.eos:
                parts.append(f"[bold yellow]⏎{escape(s.text)}[/]" + ("" if s.trained else "[dim](masked)[/]"))
            elif s.trained:
                parts.append(f"[black on green]{escape(s.text)}[/]")
            else:
                parts.append(f"[dim]{escape(s.text)}[/]")
        con.print("".join(parts), highlight=False)
    con.print(f"\n[bold]{p.examples_checked}[/] examples checked: {p.trained_tokens:,} trained and "
              f"{p.masked_tokens:,} masked tokens ({p.trained_share:.1%} trained)", highlight=False)
    for w in p.warnings:
        con.print(f"[yellow]warning:[/] {w}", highlight=False)


def _print_result(r: Any) -> None:
    con = human(False)
    style = {"completed": "green", "interrupted": "yellow"}.get(r.status, "red")
    con.print(f"[bold {style}]{r.status}[/] run {r.run_id}: {r.steps} steps in {r.train_seconds} s, best validation "
              f"loss {r.best_val_loss}, peak memory {r.peak_memory_mb} MB")
    for k, v in r.artifacts.items():
        con.print(f"  {k}: {v}")
    if r.error:
        con.print(f"[red]{r.error.get('what')}[/]" + (f"\nWhat to do: {r.error['fix']}" if r.error.get("fix") else ""))
    if r.diagnosis is not None:
        con.print(f"diagnosis: [bold]{r.diagnosis.verdict}[/] {json.dumps(r.diagnosis.next_config)}")
    if r.status == "interrupted":
        con.print(f"resume with: tunewise train --resume {r.run_id}")


def estimate_cmd(
    model: str = typer.Option(None, "--model", help="A model name or folder (its config gives the shape)."),
    params_b: float = typer.Option(None, "--params-b", help="Or just a size in billions (Llama-shaped)."),
    method: str = typer.Option(None, "--method", help="full, lora or qlora (default: all three)."),
    seq_len: int = typer.Option(512, "--seq-len", help="Tokens per sequence."),
    batch: int = typer.Option(8, "--batch", help="Sequences per forward pass."),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations."),
    bf16: bool = typer.Option(True, "--bf16/--no-bf16", help="bf16 compute (activations and frozen weights)."),
    json_out: bool = JsonOpt,
) -> None:
    """Estimate training memory: weights, gradients, optimizer states, activations, quantisation, overhead."""
    from tools.errors import InputError
    from tools.estimate import estimate_memory

    if model is None and params_b is None:
        model = "smollm2-135m-instruct"
    methods = [method] if method else ["full", "lora", "qlora"]
    for m in methods:
        if m not in ("full", "lora", "qlora"):
            raise InputError(f"unknown method {m!r}", where="--method", fix="use full, lora or qlora")
    ests = {m: estimate_memory(params_b=params_b, model=model, method=m, seq_len=seq_len, batch=batch,
                               lora_r=lora_r, gradient_checkpointing=gradient_checkpointing,
                               bf16=bf16).to_dict()
            for m in methods}
    doc: dict[str, Any] = dict(ests[method]) if method else {"estimates": ests}
    if json_out:
        print_json(doc)
        return
    from rich.table import Table

    cols = ("weights_gb", "quantization_gb", "gradients_gb", "optimizer_gb", "activations_gb", "logits_gb",
            "overhead_gb", "total_gb", "seed_reference_gb")
    first = next(iter(ests.values()))
    t = Table(title=f"memory estimate: {first['model']} ({first['params_b']}B), batch {batch} x {seq_len} tokens")
    t.add_column("method")
    for c in cols:
        t.add_column(c.removesuffix("_gb"), justify="right")
    for m, e in ests.items():
        t.add_row(m, *("" if e.get(c) is None else f"{e[c]:.2f}" for c in cols))
    human(False).print(t)


def diagnose_cmd(run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
                 json_out: bool = JsonOpt) -> None:
    """Read a run's loss curves: overfitting, learning rate too high/low, not converged or healthy, with a next config."""
    from tools.train.diagnose import diagnose

    d = diagnose(run_id)
    if json_out:
        print_json(d.to_dict())
        return
    con = human(False)
    con.print(f"[bold]{d.verdict}[/]: {d.summary}")
    for i in d.issues:
        con.print(f"- {i.id} ({i.rule}): {i.text}")
        for f in i.fixes:
            con.print(f"    fix {f.id}: {f.text} {json.dumps(f.params)}")
    if d.next_command:
        con.print(f"next: {d.next_command}")
    con.print(f"rules: {', '.join(d.rule_ids)}")


def export_cmd(run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
               merged: str = typer.Option(..., "--merged", help="Folder for the merged model."),
               json_out: bool = JsonOpt) -> None:
    """Fold a run's adapter into its base model and save it as a plain Hugging Face folder."""
    from tools.runlog import RunLog
    from tools.train import export_merged

    run = RunLog().find_run(run_id)
    out = export_merged(run["run_id"], Path(merged))
    if json_out:
        print_json({"run_id": run["run_id"], "merged": str(out)})
    else:
        human(False).print(f"merged model written to {out}")


def register(app: typer.Typer) -> None:
    """Add train, estimate, diagnose and export."""
    app.command("train")(_with_config_options(train_cmd))
    app.command("estimate")(estimate_cmd)
    app.command("diagnose")(diagnose_cmd)
    app.command("export")(export_cmd)
