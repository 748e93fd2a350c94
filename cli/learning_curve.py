"""``tunewise learning-curve``: how quality grows with data on your own task (issue 16)."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import JsonOpt, human, print_json, progress_bar


def learning_curve(
    train: str = typer.Option(..., "--train", help="Training file (the cleaned training split)."),
    test: str = typer.Option(..., "--test", help="Test file: every subset is scored on the same rows."),
    val: str = typer.Option(None, "--val", help="Validation file for every run (default: 10% of each subset)."),
    model: str = typer.Option("smollm2-135m-instruct", "--model", help="Base model (embedded name or local folder)."),
    bar: float = typer.Option(None, "--bar", help="Quality bar: how many examples reach it (e.g. 0.9)."),
    fractions: str = typer.Option(None, "--fractions", help="Nested subsets, e.g. 0.25,0.5,1 (default from lc.measured)."),
    max_steps: int = typer.Option(20, "--max-steps", help="Steps of the 100% subset (the short run's budget); "
                                                         "smaller subsets get the same passes over their rows."),
    epochs: float = typer.Option(None, "--epochs", help="Passes over each subset (overrides --max-steps)."),
    test_rows: int = typer.Option(None, "--test-rows", help="Score only the first N test rows."),
    batch_size: int = typer.Option(8, "--batch-size", help="Sequences per step."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subset order and the training runs."),
    json_out: bool = JsonOpt,
) -> None:
    """Train the same short-run recipe on nested subsets of the training data, score each on the same test rows,
    and fit a power law with a bootstrap band: predicted quality at 2x/5x/10x the data, the examples needed to
    reach the bar, or why the curve cannot extrapolate (too few points, too flat, too noisy). Prints the cost.
    """
    from tools.errors import InputError
    from tools.evaluate.learning_curve import CurveConfig
    from tools.evaluate.learning_curve import learning_curve as run

    fr = None
    if fractions:
        try:
            fr = tuple(float(x) for x in fractions.split(",") if x.strip())
        except ValueError:
            raise InputError(f"--fractions {fractions!r} is not a list of numbers", where="--fractions",
                             fix="e.g. --fractions 0.25,0.5,1") from None
    cfg = CurveConfig(train=train, test=test, val=val, model=model, bar=bar, fractions=fr, max_steps=max_steps,
                      epochs=epochs, test_rows=test_rows, per_device_batch_size=batch_size, seed=seed)
    with progress_bar(json_out, "learning-curve") as on_progress:
        result = run(cfg, on_progress=on_progress)
    if json_out:
        print_json(result.to_dict())
    else:
        render(result.to_dict())


def render(doc: dict[str, Any]) -> None:
    from rich.table import Table

    con = human(False)
    t = Table(title=f"learning curve ({doc['metric']}, {doc['test_rows']} test rows, {doc['epochs']:g} passes)")
    for c in ("examples", "steps", "quality", "95% CI", "train s", "eval s"):
        t.add_column(c)
    for p in doc["points"]:
        t.add_row(f"{p['n']:,}", str(p["steps"]), f"{p['quality']:.1%}", f"{p['ci95'][0]:.1%}–{p['ci95'][1]:.1%}",
                  f"{p['train_seconds']:.0f}", f"{p['eval_seconds']:.0f}")
    con.print(t)
    for p in doc.get("predictions") or []:
        con.print(f"at {p['factor']:g}x ({p['n']:,} examples): {p['quality']:.1%} "
                  f"(90% band {p['band'][0]:.1%}–{p['band'][1]:.1%})", highlight=False)
    con.print(f"[bold]{doc['message']}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("learning-curve")(learning_curve)
