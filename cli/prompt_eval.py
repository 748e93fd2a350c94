"""``tunewise prompt-eval``: measure a prompt (Step 1) and its cheap improvements (Step 2) before fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOpt, human, print_json, progress_bar
from cli.data import TaskKindOpt


def prompt_eval(
    test: str = typer.Option(..., "--test", help="Test file: inputs with expected outputs (JSONL or CSV)."),
    system: str = typer.Option(None, "--system", help="System message."),
    system_file: str = typer.Option(None, "--system-file", help="Read the system message from this file."),
    shots: int = typer.Option(0, "--shots", help="Few-shot examples before each input."),
    shots_from: str = typer.Option(None, "--shots-from", help="File to draw the few-shot examples from."),
    variants: bool = typer.Option(False, "--variants",
                                  help="Step 2: also try 5/10 shots, chain of thought, an output-format "
                                       "spec and other system messages; report the best."),
    model: str = typer.Option(None, "--model",
                              help="smollm2-135m-instruct (default), a local HF folder, run:ID or openai:MODEL."),
    metric: str = typer.Option(None, "--metric",
                               help="exact_match, label_accuracy, macro_f1, contains, regex, json_valid, "
                                    "json_schema, json_equal, chrf, rouge_l, token_f1, python_syntax, pass_at_1 "
                                    "or module:function, run in a sandboxed child (default: decided once from "
                                    "the test set's task profile)."),
    schema: str = typer.Option(None, "--schema", help="JSON schema file (json_schema metric, format variant)."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N test rows."),
    bar: float = typer.Option(None, "--bar", help="Quality bar (default: rule dt.quality_bar)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens",
                                       help="Longest reply generated (default: from the references' token "
                                            "lengths; 32 when unknown)."),
    cot_max_new_tokens: int = typer.Option(192, "--cot-max-new-tokens",
                                           help="Longest reply under the chain-of-thought variant."),
    batch_size: int = typer.Option(128, "--batch-size", help="Prompts per batch (local models)."),
    sequential: bool = typer.Option(False, "--sequential",
                                    help="One example at a time (true single-request latency; slow)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the few-shot selection and of the row order."),
    task_kind: str = TaskKindOpt,
    full: bool = typer.Option(False, "--full",
                              help="Score every prompt on every row. Default: stop once the bar is decisively "
                                   "above or below the interval (rule eval.sequential.stop) and race the Step 2 "
                                   "variants (eval.race.halving)."),
    json_out: bool = JsonOpt,
) -> None:
    """Measure a prompt on a test set: quality with a 95% interval, latency and tokens; with --variants, Step 2.

    Greedy decoding (temperature 0). Predictions and the summary go to the run log (`tunewise runs show ID`).
    """
    from agent.prompt_backends import register
    from tools.errors import InputError
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval

    if system is not None and system_file is not None:
        raise InputError("give --system or --system-file, not both", where="--system-file")
    if system_file is not None:
        try:
            system = Path(system_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise InputError(f"cannot read the system message: {e}", where=system_file) from e
    register()
    config = PromptEvalConfig(
        test=str(test), system=system, shots=shots, shots_from=str(shots_from) if shots_from else None,
        variants=variants, model=model, metric=metric, schema=str(schema) if schema else None, limit=limit,
        bar=bar, max_new_tokens=max_new_tokens,
        cot_max_new_tokens=cot_max_new_tokens, batch_size=batch_size, sequential=sequential,
        base_url=base_url, seed=seed, task_kind=task_kind, full=full)
    with progress_bar(json_out, "prompt-eval") as on_progress:
        result = run_prompt_eval(config, on_progress=on_progress)
    if json_out:
        print_json(result.to_dict())
    else:
        _render(result.to_dict())


def _render(r: dict[str, Any]) -> None:
    from rich.table import Table

    con = human(False)
    lo, hi = r["ci95"]
    con.print(f"[bold]{r['metric']}[/] = {r['quality']:.3f}  (95% CI {lo:.3f}-{hi:.3f}, n={r['n']}, "
              f"model {r['model']})")
    if r.get("decision"):
        con.print(f"  [dim]{r['decision']} ({(r.get('race') or r['sequential'])['rule']})[/]")
    for k in ("rouge_l", "token_f1", "python_syntax", "final_answer_strict", "final_answer_flexible"):
        if k in r and f"{k}_ci95" in r:
            con.print(f"  {k} = {r[k]:.3f}  (95% CI {r[k + '_ci95'][0]:.3f}-{r[k + '_ci95'][1]:.3f})")
    if r.get("code_context_rows"):
        con.print(f"  {r['code_context_rows']} of {r['n']} rows ran with the code in their prompt (as HumanEval's "
                  "harness runs prompt + completion)")
    note = r.get("task_profile") or {}
    if note.get("detected_kind"):
        why = (note["reason"] if note["source"] == "training_data" else
               f"set by you; the test rows alone read as {note['detected_kind']}: {note['reason']}")
        con.print(f"[yellow]task kind {note['output_kind']}: {why}[/]")
    if r.get("choice"):
        c = r["choice"]
        con.print(f"  choice mode (each label scored by log-likelihood): {c['quality']:.3f} "
                  f"(95% CI {c['ci95'][0]:.3f}-{c['ci95'][1]:.3f})")
    lat, pt = r["latency_ms"], r["prompt_tokens"]
    con.print(f"latency p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms ({lat['mode']}); "
              f"prompt tokens mean {pt['mean']:.0f}, output tokens mean {r['output_tokens']['mean']:.1f}")
    sv = r.get("savings") or {}
    if sv:
        con.print(f"a fine-tuned model would need about {sv['finetuned_prompt_tokens']:.0f} prompt tokens "
                  f"({sv['token_reduction']:.0%} fewer); p50 latency at most about {sv['est_latency_ms_p50']:.0f} ms")
    if len(r["variants"]) > 1:
        t = Table(title="Step 2: prompt variants")
        for c in ("variant", "quality", "95% CI", "n", "shots", "prompt tokens", "p50 ms"):
            t.add_column(c)
        for v in r["variants"]:
            mark = " *" if v["name"] == r["best"] else ""
            gone = f" (dropped at n={v['dropped_at']})" if v.get("dropped_at") else ""
            t.add_row(v["name"] + mark + gone, f"{v['quality']:.3f}", f"{v['ci95'][0]:.3f}-{v['ci95'][1]:.3f}",
                      str(v["n"]), str(v["shots"]), f"{v['prompt_tokens']['mean']:.0f}",
                      f"{v['latency_ms']['p50']:.0f}")
        con.print(t)
    verdict = "reaches" if r["reaches_bar"] else "does not reach"
    con.print(f"best: [bold]{r['best']}[/] ({r['best_quality']:.3f}) {verdict} the bar {r['bar']:.2f} "
              f"[dim]({r['rule']})[/]")
    con.print(f"[dim]run {r['run_id']}: per-example predictions in the run log (`tunewise runs show "
              f"{r['run_id']}`)[/]")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("prompt-eval")(prompt_eval)
