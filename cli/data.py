"""``tunewise data inspect|convert|clean|spotcheck|split|augment``: thin shells over ``tools.data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOpt, human, print_json, progress_bar

data_app = typer.Typer(help="Dataset tools: inspect, convert, clean, spot-check, split, augment.", no_args_is_help=True)

FormatOpt = typer.Option(None, "--format", help="openai, prompt_completion, input_output, alpaca, sharegpt, csv, "
                                                "parquet or hf (default: detected).")
InColOpt = typer.Option(None, "--input-col", help="CSV/Parquet/datasets column holding the input.")
OutColOpt = typer.Option(None, "--output-col", help="CSV/Parquet/datasets column holding the output.")
TaskKindOpt = typer.Option(None, "--task-kind", help="What the outputs are: label, structured, code, short_answer, "
                                                     "reasoning or text (default: detected from the rows).")


def _columns(input_col: str | None, output_col: str | None) -> tuple[str, str] | None:
    from tools.errors import InputError

    if bool(input_col) != bool(output_col):
        raise InputError("give both --input-col and --output-col, or neither")
    return (input_col, output_col) if input_col and output_col else None


def register(app: typer.Typer) -> None:
    """Add ``tunewise data ...`` to the app."""
    app.add_typer(data_app, name="data")


# ---------------------------------------------------------------------------------------------- inspect
@data_app.command("inspect")
def inspect_cmd(file: Annotated[Path, typer.Argument(help="The data file (or datasets folder).")],
                fmt: str = FormatOpt, model: str = typer.Option(None, help="Count tokens with this model's "
                                                                         "tokenizer (e.g. smollm2-135m-instruct)."),
                input_col: str = InColOpt, output_col: str = OutColOpt, task_kind: str = TaskKindOpt,
                json_out: bool = JsonOpt) -> None:
    """Show a data file's format, rows, validity problems (file:line:field), task profile, lengths, tokens
    and labels."""
    from tools.data.inspection import inspect

    rep = inspect(file, fmt=fmt, model=model, columns=_columns(input_col, output_col), task_kind=task_kind)
    r = rep.to_dict()
    if json_out:
        print_json(r)
        return
    con = human(False)
    con.print(f"[bold]{r['path']}[/]  format={r['format']}  rows={r['rows']}  valid={r['valid_rows']}  "
              f"invalid={r['invalid_rows']}  outputs look like: {r['output_kind']}", highlight=False)
    con.print(rep.profile.summary(), highlight=False)
    if rep.columns:
        con.print(f"columns: input={rep.columns['input']}  output={rep.columns['output']}"
                  + (f"  context={rep.columns['context']}" if rep.columns.get("context") else "")
                  + (f"  tests={rep.columns['tests']}" if rep.columns.get("tests") else ""), highlight=False)
    for side in ("input", "output"):
        s = r["chars"][side]
        if s:
            con.print(f"{side} chars: min {s['min']}  median {s['median']:.0f}  p95 {s['p95']:.0f}  max {s['max']}")
    if r.get("tokens"):
        t = r["tokens"]
        con.print(f"tokens ({t['model']}): median {t['median']:.0f}  max {t['max']}  total {t['total']}  "
                  f"over context ({t['context_length']}): {t['over_context']}")
    if r["labels"]:
        top = ", ".join(f"{k} {v}" for k, v in list(r["labels"].items())[:10])
        con.print(f"{r['label_count']} labels (max/min ratio {r['label_imbalance']}): {top}"
                  + (" ..." if r["label_count"] > 10 else ""))
    for p in r["problems"][:20]:
        con.print(f"[red]{p['where']}[/]: {p['message']}", highlight=False)
    if r["invalid_rows"] > 20:
        con.print(f"... {r['invalid_rows'] - 20} more invalid rows")


# ---------------------------------------------------------------------------------------------- convert
@data_app.command("convert")
def convert_cmd(file: Annotated[Path, typer.Argument(help="The data file (or datasets folder).")],
                out: Annotated[Path, typer.Option("--out", help="OpenAI chat JSONL, or a datasets folder when the "
                                                                "path has no suffix.")],
                fmt: str = FormatOpt, input_col: str = InColOpt, output_col: str = OutColOpt,
                skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Leave invalid rows out."),
                json_out: bool = JsonOpt) -> None:
    """Rewrite any supported format as OpenAI chat JSONL or a Hugging Face datasets folder, unchanged otherwise."""
    from tools.data.formats import load, write_examples, write_hf
    from tools.errors import InputError

    if out.resolve() == file.resolve():
        raise InputError("the output would overwrite the input", where=str(out), fix="choose another --out")
    res = load(file, fmt, skip_invalid=skip_invalid, columns=_columns(input_col, output_col))
    if out.suffix:
        write_examples(res.examples, out)
    else:
        write_hf(res.examples, out)
    r = {"in": str(file), "format": res.format, "out": str(out), "rows": len(res.examples),
         "skipped": len(res.problems)}
    if json_out:
        print_json(r)
    else:
        human(False).print(f"{r['rows']} rows ({res.format}) -> {out}" + (f", {r['skipped']} invalid skipped"
                                                                          if r["skipped"] else ""))


# ---------------------------------------------------------------------------------------------- clean
@data_app.command("clean")
def clean_cmd(file: Annotated[Path, typer.Argument(help="The data file (or datasets folder); never modified.")],
              out: Annotated[Path, typer.Option("--out", help="Cleaned OpenAI chat JSONL (a path without a suffix "
                                                          "writes a datasets folder).")],
              report: Annotated[Path | None, typer.Option("--report", help="Write the report here as JSON (and .md beside).")] = None,
              fmt: str = FormatOpt, input_col: str = InColOpt, output_col: str = OutColOpt,
              task_kind: str = TaskKindOpt,
              skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Leave invalid rows out instead of "
                                                                              "stopping."),
              pii: str = typer.Option(None, "--pii", help="flag, mask or remove rows with personal data "
                                                    "(default: rule data.clean.pii)."),
              quality: str = typer.Option(None, "--quality", help="remove or flag low-quality free text "
                                                            "(default: rule data.clean.quality.action)."),
              language: str = typer.Option(None, "--language", help="Expected language (ISO code); default: the "
                                                                    "majority language."),
              near_dup_threshold: float = typer.Option(None, "--near-dup-threshold", help="Jaccard threshold "
                                                                                          "(default: rule "
                                                                                          "data.clean.near_duplicates)."),
              off: Annotated[list[str] | None, typer.Option("--no", help="Switch a filter off (repeatable): empty, error_markers, "
                                                            "length, completeness, language, exact_duplicates, "
                                                            "near_duplicates, conflicting_labels, pii, quality.")] = None,
              json_out: bool = JsonOpt) -> None:
    """Filter, deduplicate and write a clean copy, with a report of what was removed and why."""
    from tools.data.cleaning import clean
    from tools.data.config import CleanConfig
    from tools.errors import InputError

    kw: dict[str, Any] = {"fmt": fmt, "skip_invalid": skip_invalid, "columns": _columns(input_col, output_col),
                          "task_kind": task_kind}
    for name in off or []:
        name = name.replace("-", "_")
        if name not in CleanConfig.SWITCHES:
            raise InputError(f"unknown filter {name!r}", fix=f"use one of: {', '.join(CleanConfig.SWITCHES)}")
        kw[name] = False
    if pii:
        kw["pii_action"] = pii
    if quality:
        kw["quality_action"] = quality
    if language:
        kw["expected_language"] = language
    if near_dup_threshold is not None:
        kw["near_dup_threshold"] = near_dup_threshold
    try:
        cfg = CleanConfig(**kw)
    except ValueError as e:
        raise InputError(str(e)) from e
    with progress_bar(json_out, "cleaning") as on_progress:
        rep = clean(file, out, config=cfg, report_path=report, on_progress=on_progress)
    r = rep.to_dict()
    if json_out:
        print_json({k: v for k, v in r.items() if k != "config"})
        return
    con = human(False)
    con.print(f"[bold]{r['input_rows']}[/] rows read, [bold green]{r['kept_rows']}[/] kept -> {r['out']} "
              f"({r['rows_per_s']} rows/s)")
    con.print(rep.profile.summary(), highlight=False)
    for k, v in r["removed"].items():
        if v:
            ex = (r["examples"].get(k) or [{}])[0]
            hint = f"  e.g. line {ex['line']}: {ex['input'][:60]!r}" if ex else ""
            con.print(f"  removed {k}: {v}{hint}", highlight=False)
    for k, v in r["flagged"].items():
        if v:
            con.print(f"  flagged {k}: {v}")
    if report:
        con.print(f"report: {report} and {Path(report).with_suffix('.md')}")


# ---------------------------------------------------------------------------------------------- split
@data_app.command("split")
def split_cmd(file: Annotated[Path, typer.Argument(help="The (cleaned) data file.")],
              out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for train/val/test.jsonl.")],
              seed: int = typer.Option(None, help="Random seed (default: rule data.split.settings)."),
              fmt: str = FormatOpt, input_col: str = InColOpt, output_col: str = OutColOpt,
              skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Leave invalid rows out."),
              json_out: bool = JsonOpt) -> None:
    """Split into train/val/test by the size rule, stratified by label, near duplicates kept together."""
    from tools.data.splitting import split

    r = split(file, out_dir, seed=seed, fmt=fmt, skip_invalid=skip_invalid,
              columns=_columns(input_col, output_col)).to_dict()
    if json_out:
        print_json(r)
        return
    con = human(False)
    con.print(f"train {r['train']}  val {r['val']}  test {r['test']}  (rule {r['rule']}, seed {r['seed']}, "
              f"stratified by {r['stratified_by'] or 'nothing'}) -> {out_dir}")
    for w in r["warnings"]:
        con.print(f"[yellow]warning:[/] {w}")


# ---------------------------------------------------------------------------------------------- spotcheck
def _ask(text: str, default: str, json_mode: bool) -> str:
    """A prompt on the terminal (stderr under --json); end of input counts as 'q' (pause), so nothing is lost."""
    try:
        return str(typer.prompt(text, default=default, err=json_mode))
    except (typer.Abort, EOFError):
        return "q" if default == "g" else default


@data_app.command("spotcheck")
def spotcheck_cmd(file: Annotated[Path, typer.Argument(help="The (cleaned) data file.")],
                  n: int = typer.Option(100, "--n", help="Sample size."),
                  seed: int = typer.Option(0, help="Sample seed."),
                  out: Annotated[Path | None, typer.Option("--out", help="Where to write the file if a proposed rule is "
                                                               "accepted (default: FILE.spotchecked.jsonl).")] = None,
                  json_out: bool = JsonOpt) -> None:
    """Judge a seeded sample one example at a time (g=good, b=bad, s=skip, q=pause); resumes where you stopped.

    From the bad reasons it proposes a filter rule and says how many other rows it would remove.
    """
    from tools.data.spotcheck import SpotCheck

    sc = SpotCheck(file, n=n, seed=seed)
    con = human(json_out)
    done = sc.progress()["done"]
    if done:
        con.print(f"resuming: {done} of {len(sc.sample)} already judged")
    while (item := sc.next()) is not None:
        con.rule(f"{item['position'] + 1}/{item['total']}  line {item['line']}"
                 + (f"  label={item['label']}" if item["label"] else "")
                 + (f"  flags={','.join(item['flags'])}" if item["flags"] else ""))
        for m in item["messages"]:
            con.print(f"[bold]{m['role']}:[/] {m['content']}", highlight=False)
        answer = _ask("good / bad / skip / quit [g/b/s/q]", "g", json_out).strip().lower()[:1]
        if answer == "q":
            break
        verdict = {"g": "good", "b": "bad", "s": "skip"}.get(answer)
        if verdict is None:
            con.print("answer g, b, s or q")
            continue
        reason = _ask("why is it bad? (quote a word or /regex/ to suggest a rule)", "", json_out) \
            if verdict == "bad" else None
        sc.verdict(item["position"], verdict, reason or None)
    prog = sc.progress()
    rule = sc.propose_rule()
    result: dict[str, Any] = {**prog, "rule": rule, "applied": None}
    if rule:
        con.print(f"proposed rule: {rule['text']}")
        if _ask("apply it? [y/N]", "n", json_out).strip().lower().startswith("y"):
            target = out or file.with_name(file.stem + ".spotchecked.jsonl")
            result["applied"] = sc.apply_rule(rule, target)
            con.print(f"wrote {target}: {result['applied']['kept']} kept, {result['applied']['removed']} removed")
    if json_out:
        print_json(result)
    else:
        con.print(f"judged {prog['done']}/{prog['total']}: {prog['good']} good, {prog['bad']} bad, {prog['skip']} skipped")


# ---------------------------------------------------------------------------------------------- augment
@data_app.command("augment")
def augment_cmd(file: Annotated[Path, typer.Argument(help="The data file to draw from.")],
                out: Annotated[Path, typer.Option("--out", help="Where to write original + synthetic rows.")],
                method: str = typer.Option("paraphrase", help="paraphrase, back_translation or synthetic."),
                n: int = typer.Option(20, "--n", help="How many synthetic rows to generate."),
                model: str = typer.Option(None, help="The generating model (default: the embedded model)."),
                seed: int = typer.Option(0, help="Which rows to draw."),
                json_out: bool = JsonOpt) -> None:
    """Generate synthetic rows (marked synthetic: train only, queued for spot-check)."""
    from tools.data.augment import augment

    with progress_bar(json_out, "augmenting") as on_progress:
        r = augment(file, out, method=method, n=n, model=model, seed=seed, on_progress=on_progress)
    if json_out:
        print_json(r.to_dict())
        return
    human(False).print(f"{r.synthetic} synthetic rows ({method}) + {r.original} originals -> {r.out}; "
                       f"spot-check them with `tunewise data spotcheck {r.out}`")
