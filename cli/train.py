"""``tunewise train | estimate | diagnose | export``: training runs, memory estimates, curve diagnosis."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOpt, human, print_json, progress_bar

# CLI option -> TrainConfig field, for overrides and for rebuilding the command under `accelerate launch`.
_OVERRIDES = {
    "learning_rate": "--lr", "num_train_epochs": "--epochs", "per_device_train_batch_size": "--batch-size",
    "gradient_accumulation_steps": "--grad-accum", "weight_decay": "--weight-decay", "warmup_ratio": "--warmup-ratio",
    "lora_r": "--lora-r", "lora_alpha": "--lora-alpha", "lora_dropout": "--lora-dropout",
    "target_modules": "--target-modules", "max_seq_length": "--max-seq-length", "limit": "--limit",
    "max_steps": "--max-steps", "eval_steps": "--eval-steps", "early_stopping_patience": "--patience",
    "seed": "--seed",
}
_FLAGS = {"packing": "--packing", "group_by_length": "--group-by-length", "shared_prefix": "--shared-prefix",
          "bf16": "--bf16",
          "gradient_checkpointing": "--gradient-checkpointing", "save_merged": "--save-merged",
          "auto_retry": "--auto-retry"}


def _plan_fields(plan: str | None) -> dict[str, Any]:
    """TrainConfig fields from an advisor plan (``train_config``/``config`` key, or the top level)."""
    if plan is None:
        return {}
    from tools.errors import InputError
    from tools.train import TrainConfig

    try:
        raw = json.loads(Path(plan).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the plan: {e}", where=str(plan), fix="give the JSON the advisor wrote") from e
    plan_doc = raw.get("plan") if isinstance(raw.get("plan"), dict) else raw
    if isinstance(plan_doc.get("hyperparameters"), dict):  # the advisor's plan (agent/graph.py)
        raw = _from_advisor_plan(plan_doc)
    for key in ("train_config", "config", "training"):
        if isinstance(raw.get(key), dict):
            raw = raw[key]
            break
    known = set(TrainConfig.__dataclass_fields__) - {"run_id", "rule_ids"}
    return {k: v for k, v in raw.items() if k in known and v is not None}


def _from_advisor_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """Map the advisor's plan (``hyperparameters`` with ``lora`` and ``early_stopping``) onto TrainConfig names."""
    hp = plan["hyperparameters"]
    lora = hp.get("lora") or {}
    es = hp.get("early_stopping") or {}
    out = {"method": plan.get("method") or hp.get("method"), "learning_rate": hp.get("learning_rate"),
           "num_train_epochs": hp.get("epochs"), "per_device_train_batch_size": hp.get("per_device_batch_size"),
           "gradient_accumulation_steps": hp.get("gradient_accumulation_steps"),
           "weight_decay": hp.get("weight_decay"), "warmup_ratio": hp.get("warmup_ratio"),
           "lr_scheduler_type": hp.get("lr_scheduler"), "lora_r": lora.get("r"), "lora_alpha": lora.get("lora_alpha"),
           "lora_dropout": lora.get("lora_dropout"), "target_modules": lora.get("target_modules"),
           "early_stopping_patience": es.get("patience"), "early_stopping_threshold": es.get("threshold")}
    if isinstance(out["method"], dict):
        out["method"] = out["method"].get("method") or out["method"].get("name")
    return {k: v for k, v in out.items() if v is not None}


def launch_command(accelerate_config: str | Path, values: dict[str, Any]) -> list[str]:
    """The same training under ``accelerate launch`` (FSDP / DeepSpeed configs; see knowledge/configs/)."""
    cmd = ["accelerate", "launch", "--config_file", str(accelerate_config), "-m", "cli", "train"]
    for key in ("train", "val", "method", "model", "plan", "resume"):
        if values.get(key) not in (None, ""):
            cmd += [f"--{key}", str(values[key])]
    for field, opt in _OVERRIDES.items():
        if values.get(field) is not None:
            cmd += [opt, str(values[field])]
    for field, opt in _FLAGS.items():
        v = values.get(field)
        if v is True:
            cmd.append(opt)
        elif v is False and field in ("packing", "group_by_length", "shared_prefix", "bf16", "gradient_checkpointing"):
            cmd.append("--no-" + opt[2:])
    if values.get("events"):
        cmd += ["--events", values["events"]]
    if values.get("json"):
        cmd.append("--json")
    return cmd


def train_cmd(
    train: str = typer.Option(None, "--train", help="Training data (chat JSONL, prompt/completion JSONL, CSV)."),
    val: str = typer.Option(None, "--val", help="Validation data; without it 10% of --train is held out."),
    method: str = typer.Option(None, "--method", help="lora (default), qlora or full."),
    model: str = typer.Option(None, "--model", help="Base model: smollm2-135m-instruct (default) or a local folder."),
    plan: str = typer.Option(None, "--plan", help="An advisor plan (JSON) whose settings are the defaults."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default from hp.lr.<method>.<size>)."),
    epochs: float = typer.Option(None, "--epochs", help="Epochs (default from hp.epochs.* by data size)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Sequences per forward pass (default 8)."),
    grad_accum: int = typer.Option(None, "--grad-accum", help="Gradient accumulation steps."),
    weight_decay: float = typer.Option(None, "--weight-decay", help="Weight decay (default from hp.wd.*)."),
    warmup_ratio: float = typer.Option(None, "--warmup-ratio", help="Warm-up share of steps (default 0.1)."),
    lora_r: int = typer.Option(None, "--lora-r", help="LoRA rank (default 8)."),
    lora_alpha: int = typer.Option(None, "--lora-alpha", help="LoRA alpha (default 2 x r)."),
    lora_dropout: float = typer.Option(None, "--lora-dropout", help="LoRA dropout (default 0.05)."),
    target_modules: str = typer.Option(None, "--target-modules",
                                       help="'all-linear' (default) or comma-separated module names."),
    max_seq_length: int = typer.Option(None, "--max-seq-length", help="Longest sequence in tokens (default 512)."),
    packing: bool = typer.Option(None, "--packing/--no-packing", help="Pack examples instead of padding."),
    group_by_length: bool = typer.Option(None, "--group-by-length/--no-group-by-length",
                                         help="Batch similar lengths together (default on)."),
    shared_prefix: bool = typer.Option(None, "--shared-prefix/--no-shared-prefix",
                                       help="Encode the prompt start every example of a batch shares once per "
                                            "batch (default on; same gradients)."),
    bf16: bool = typer.Option(None, "--bf16/--no-bf16", help="bf16 compute (default: where the hardware has it)."),
    gradient_checkpointing: bool = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing",
                                                help="Default: on only when the memory estimate needs it."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N training rows."),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop after N optimizer steps."),
    eval_steps: int = typer.Option(None, "--eval-steps", help="Evaluate and checkpoint every N steps."),
    patience: int = typer.Option(None, "--patience", help="Early-stopping patience in evaluations (default 3)."),
    seed: int = typer.Option(None, "--seed", help="Seed (default 0)."),
    save_merged: bool = typer.Option(False, "--save-merged", help="Also save the merged model."),
    auto_retry: bool = typer.Option(False, "--auto-retry", help="On out-of-memory, retry with the seed's fixes."),
    resume: str = typer.Option(None, "--resume", help="Continue RUN_ID from its last checkpoint."),
    events: str = typer.Option(None, "--events", help="'jsonl': one progress event per line on stdout."),
    launcher: str = typer.Option(None, "--launcher", help="'accelerate' to run through `accelerate launch`."),
    accelerate_config: str = typer.Option(None, "--accelerate-config",
                                           help="accelerate config (FSDP / DeepSpeed); samples in knowledge/configs/."),
    print_launch: bool = typer.Option(False, "--print-launch", help="Print the accelerate launch command and exit."),
    json_out: bool = JsonOpt,
    # -- preview and run id (tools/train/preview.py; the TUI's Training view and the advisor's pipeline)
    preview: bool = typer.Option(False, "--preview", help="Show the first examples as the model will see them "
                                 "(trained tokens highlighted, end-of-turn token marked, trained/masked counts) "
                                 "and exit; exit code 2 when nothing or everything would be trained."),
    run_id: str = typer.Option(None, "--run-id", help="Id for the new run (default: generated)."),
) -> None:
    """Fine-tune with LoRA, QLoRA or full training; progress per step, everything recorded in the run log.

    Ctrl-C saves a checkpoint and marks the run interrupted; `--resume RUN_ID` continues it.
    """
    from tools.errors import InputError, OutOfMemoryError
    from tools.train import TrainConfig
    from tools.train import train as run_training

    cli_fields: dict[str, Any] = {
        "learning_rate": lr, "num_train_epochs": epochs, "per_device_train_batch_size": batch_size,
        "gradient_accumulation_steps": grad_accum, "weight_decay": weight_decay, "warmup_ratio": warmup_ratio,
        "lora_r": lora_r, "lora_alpha": lora_alpha, "lora_dropout": lora_dropout,
        "target_modules": (target_modules if target_modules in (None, "all-linear")
                           else [t.strip() for t in target_modules.split(",") if t.strip()]),
        "max_seq_length": max_seq_length, "packing": packing, "group_by_length": group_by_length,
        "shared_prefix": shared_prefix, "bf16": bf16,
        "gradient_checkpointing": gradient_checkpointing, "limit": limit, "max_steps": max_steps,
        "eval_steps": eval_steps, "early_stopping_patience": patience, "seed": seed,
        "save_merged": save_merged or None, "auto_retry": auto_retry or None,
    }
    if launcher or print_launch:
        if launcher not in (None, "accelerate"):
            raise InputError(f"unknown launcher {launcher!r}", where="--launcher", fix="use --launcher accelerate")
        if accelerate_config is None:
            raise InputError("--accelerate-config is needed with --launcher/--print-launch",
                             where="--accelerate-config",
                             fix="start from knowledge/configs/accelerate_fsdp.yaml or accelerate_deepspeed_zero2.yaml")
        values = cli_fields | {"train": train, "val": val, "method": method, "model": model, "plan": plan,
                               "resume": resume, "events": events, "json": json_out,
                               "target_modules": target_modules}
        cmd = launch_command(accelerate_config, values)
        if print_launch:
            if json_out:
                print_json({"command": cmd, "shell": shlex.join(cmd)})
            else:
                sys.stdout.write(shlex.join(cmd) + "\n")
            return
        import shutil
        import subprocess

        if shutil.which("accelerate") is None:  # not on PATH (e.g. a venv not activated): same launcher, by module
            cmd = [sys.executable, "-m", "accelerate.commands.launch", *cmd[2:]]
        sys.exit(subprocess.call(cmd))

    if events not in (None, "jsonl"):
        raise InputError(f"unknown events format {events!r}", where="--events", fix="use --events jsonl")
    fields = _plan_fields(plan)
    fields.update({k: v for k, v in cli_fields.items() if v is not None})
    if train is not None:
        fields["train"] = str(train)
    if val is not None:
        fields["val"] = str(val)
    if method is not None:
        fields["method"] = method
    if model is not None:
        fields["model"] = model
    if not resume and not fields.get("train"):
        raise InputError("no training data", where="--train", fix="pass --train FILE (or --resume RUN_ID)")
    if run_id and not resume:
        fields["run_id"] = run_id
    config = TrainConfig.from_dict(fields)
    if preview:
        _preview(config, json_out)
        return

    def emit_line(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def run(on_progress: Any) -> dict[str, Any]:
        try:
            return run_training(config, on_progress=on_progress, resume=resume)
        except OutOfMemoryError as e:
            return {"run_id": getattr(e, "run_id", None), "status": "failed", "best_val_loss": None, "steps": 0,
                    "train_seconds": None, "peak_memory_mb": None, "artifacts": {}, "error": e.to_dict(),
                    "retries": getattr(e, "retries", [])}

    if events == "jsonl":
        result = run(lambda ev: emit_line(ev.to_dict()))
        emit_line({"stage": "result", "step": result.get("steps") or 0, "total": None, "metrics": {},
                   "message": result.get("status", ""), "result": result})
    else:
        with progress_bar(json_out, "train") as on_progress:
            result = run(on_progress)
        if json_out:
            print_json(result)
        else:
            _print_result(result)
    code = {"completed": 0, "interrupted": 130}.get(result.get("status", ""), 1)
    if code:
        sys.exit(code)  # SystemExit carries the code through run_guarded (typer.Exit's would be dropped)


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


def _print_result(r: dict[str, Any]) -> None:
    con = human(False)
    style = {"completed": "green", "interrupted": "yellow"}.get(r.get("status", ""), "red")
    con.print(f"[bold {style}]{r.get('status')}[/] run {r.get('run_id')}: {r.get('steps')} steps in "
              f"{r.get('train_seconds')} s, best validation loss {r.get('best_val_loss')}, "
              f"peak memory {r.get('peak_memory_mb')} MB")
    for k, v in (r.get("artifacts") or {}).items():
        con.print(f"  {k}: {v}")
    if r.get("error"):
        e = r["error"]
        con.print(f"[red]{e.get('what')}[/]" + (f"\nWhat to do: {e['fix']}" if e.get("fix") else ""))
    d = r.get("diagnosis")
    if d:
        con.print(f"diagnosis: [bold]{d.get('verdict')}[/] {json.dumps(d.get('next_config') or {})}")
    if r.get("status") == "interrupted":
        con.print(f"resume with: tunewise train --resume {r.get('run_id')}")


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
                               lora_r=lora_r, gradient_checkpointing=gradient_checkpointing, bf16=bf16)
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
    from tools.diagnose import diagnose

    d = diagnose(run_id)
    if json_out:
        print_json(d)
        return
    con = human(False)
    con.print(f"[bold]{d['verdict']}[/]: {d['summary']}")
    for i in d["issues"]:
        con.print(f"- {i['id']} ({i.get('sign')}): {i['text']}")
        for f in i.get("fixes", []):
            con.print(f"    fix {f['id']}: {f.get('text', '')} {json.dumps(f.get('params') or {})}")
    if d.get("next_command"):
        con.print(f"next: {d['next_command']}")
    con.print(f"rules: {', '.join(d['rule_ids'])}")


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
    app.command("train")(train_cmd)
    app.command("estimate")(estimate_cmd)
    app.command("diagnose")(diagnose_cmd)
    app.command("export")(export_cmd)
