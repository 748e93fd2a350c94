"""``tunewise eval test|compare|grade|forgetting|ab``, ``tunewise roi`` and ``tunewise report``: did it work, did it
forget, is it worth it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOpt, human, print_json, progress_bar

eval_app = typer.Typer(help="Evaluate a tuned run: test set (once), side by side, forgetting, A/B.",
                       no_args_is_help=True)

RunOpt = typer.Option(..., "--run", help="The training run (id, unique prefix, or run:ID).")
TestOpt = typer.Option(..., "--test", help="Held-out test file (e.g. test.jsonl from `tunewise data split`).")
ProbesOpt = typer.Option(None, "--probes", help="Your own probe file (JSONL: question, answer, check). "
                                               "Default: the general set shipped in knowledge/probes.")
LimitOpt = typer.Option(None, "--limit", min=1, help="Score only the first N test rows (a quick check; the result "
                                                     "says N of how many). Default: every row.")
GradesOpt = typer.Option(None, "--grades", help="Read the grades from a JSONL or CSV file instead of asking: row "
                                               "(0-based test row) or input, and grade (good/bad/skip).")
OutOpt = typer.Option(Path("report.html"), "--out", help="report.html, or report.md for Markdown.")


def _cfg(max_new_tokens: int | None, metric: str | None = None) -> Any:
    from tools.evaluate import EvalConfig

    cfg = EvalConfig(metric=metric)
    if max_new_tokens:
        cfg.max_new_tokens = max_new_tokens
        cfg.probe_max_new_tokens = max_new_tokens
    return cfg


def _ci(ci: list[float] | None) -> str:
    return "-" if not ci else f"{ci[0]:.1%} – {ci[1]:.1%}"


@eval_app.command("test")
def test_cmd(run: str = RunOpt, test: Path = TestOpt,
             metric: str = typer.Option(None, help="exact_match, label_accuracy, macro_f1, contains, json_equal, "
                                                  "chrf, rouge_l, token_f1, pass_at_1, python_syntax, ... or "
                                                  "module:function (run in a sandboxed child). Default: decided "
                                                  "once from the test set's task profile."),
             max_new_tokens: int = typer.Option(None, help="Longest answer generated (default: from the "
                                                          "references' token lengths)."),
             limit: int = LimitOpt,
             json_out: bool = JsonOpt) -> None:
    """Score the run on the held-out test set, beside the base model and the best prompt baseline, with 95% CIs.

    Every scoring is logged; scoring the same test file again warns about test-set peeking."""
    from rich.table import Table

    from tools.evaluate import evaluate_test

    with progress_bar(json_out, "evaluating") as on_progress:
        res = evaluate_test(run, test, config=_cfg(max_new_tokens, metric), on_progress=on_progress, limit=limit)
    con = human(json_out)
    for w in res.warnings:
        con.print(f"[yellow]warning:[/] {w}")
    if json_out:
        print_json({k: v for k, v in res.to_dict().items() if k != "details"})
        return
    of = f" (the first {res.n} of {res.test_rows})" if res.test_rows > res.n else ""
    t = Table(title=f"test set: {res.metric} on {res.n} examples{of}")
    for c in ("", "variant", "quality", "95% CI", "vs tuned (paired)", "latency"):
        t.add_column(c)
    for role in ("tuned", "prompt_baseline", "base"):
        d = res.details.get(role)
        if not d:
            continue
        vs = res.vs.get(role) if role != "tuned" else None
        diff = (f"tuned {vs['diff'] * 100:+.1f} pts ({vs['diff_ci95'][0] * 100:+.1f} to "
                f"{vs['diff_ci95'][1] * 100:+.1f})") if vs else ""
        t.add_row(role.replace("_", " "), d["variant"], f"{d['quality']:.1%}", _ci(d["ci95"]), diff,
                  f"{d['latency_ms_mean']:.0f} ms")
    con.print(t)
    choice = res.choice
    if choice:
        t = Table(title=f"the same rows in choice mode: each of the {choice['labels']} labels scored by "
                        "log-likelihood (reported; free generation above decides)")
        for c in ("", "variant", "label accuracy", "95% CI", "vs tuned (paired)"):
            t.add_column(c)
        for role in ("tuned", "prompt_baseline", "base"):
            d = choice if role == "tuned" else choice["vs"].get(role)
            if not d:
                continue
            diff = (f"tuned {d['diff'] * 100:+.1f} pts ({d['diff_ci95'][0] * 100:+.1f} to "
                    f"{d['diff_ci95'][1] * 100:+.1f})") if role != "tuned" else ""
            t.add_row(role.replace("_", " "), d["variant"], f"{d['quality']:.1%}", _ci(d["ci95"]), diff)
        con.print(t)


@eval_app.command("compare")
def compare_cmd(run: str = RunOpt, test: Path = TestOpt,
                n: int = typer.Option(30, "--n", help="How many examples to show (the seed asks for 20 to 50)."),
                max_new_tokens: int = typer.Option(None, help="Longest answer generated (default: from the "
                                                             "references' token lengths)."),
                limit: int = LimitOpt,
                vote: bool = typer.Option(False, "--vote", help="Vote A (prompt baseline, else base) / B (tuned) / "
                                                                "tie on each row; resumable, stored in the run log."),
                json_out: bool = JsonOpt) -> None:
    """Side by side: input, expected, base, prompt baseline and tuned answers with match marks; the sample
    includes edge cases (longest inputs, rarest labels, answers the tune fixed or broke). With --vote, mark
    each pair A / B / tie: the human win rate with its CI."""
    from rich.table import Table

    from tools.evaluate import compare

    with progress_bar(json_out, "comparing") as on_progress:
        res = compare(run, test, n=n, config=_cfg(max_new_tokens), on_progress=on_progress, limit=limit)
    if vote:
        _vote_loop(res)
    if json_out:
        from tools.evaluate import human_win_rate

        doc = res.to_dict()
        if vote or res.vote_a:
            doc["human_win_rate"] = human_win_rate(res.run_id, res.test_sha256, a_variant=res.vote_a).to_dict()
        print_json(doc)
        return
    mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: ""}
    t = Table(title=f"side by side ({res.n} examples, {res.metric})", show_lines=True)
    for c in ("input", "expected", *[c.replace("_", " ") for c in res.columns], "why"):
        t.add_column(c, overflow="fold")
    for r in res.rows:
        t.add_row(r["input"][:200], r["expected"][:80],
                  *[f"{mark[r[c + '_ok']]} {(r[c] or '')[:80]}" for c in res.columns], ", ".join(r["why"]))
    human(False).print(t)


def _vote_loop(res: Any) -> None:
    """Ask A / B / tie for each row without a vote yet (on stderr, so --json stays one document)."""
    from tools.evaluate import human_win_rate, pending_votes, record_vote

    con = human(True)
    todo = pending_votes(res)
    con.print(f"{len(res.rows) - len(todo)} of {len(res.rows)} rows already voted; A = {res.vote_a}, "
              f"B = {res.vote_b}. Answer a, b, t(ie), s(kip) or q(uit).")
    for r in todo:
        con.print(f"\n[bold]input[/]: {r['input'][:600]}\n[bold]expected[/]: {r['expected'][:400]}")
        con.print(f"[bold]A[/]: {(r.get(res.vote_a) or '')[:600]}\n[bold]B[/]: {(r.get(res.vote_b) or '')[:600]}")
        answer = typer.prompt("A / B / tie", default="s", err=True).strip().lower()
        if answer.startswith("q"):
            break
        if answer.startswith("s"):
            continue
        record_vote(res, r["idx"], "tie" if answer.startswith("t") else answer[:1])
    wr = human_win_rate(res.run_id, res.test_sha256, a_variant=res.vote_a)
    con.print(f"human win rate of B ({res.vote_b}): {wr.rate:.1%} ({_ci(list(wr.ci95))}, n={wr.n}; "
              f"{wr.b_wins} B, {wr.a_wins} A, {wr.ties} ties)")


@eval_app.command("grade")
def grade_cmd(run: str = typer.Option(..., "--run", help="A prompt-eval run (its variants' outputs: Steps 1 and 2) "
                                                          "or a training run (its test-set outputs)."),
              variant: str = typer.Option(None, "--variant", help="Whose outputs: a prompt variant (default "
                                          "baseline, the plain prompt), or tuned / base / prompt_baseline for a "
                                          "training run (default tuned)."),
              n: int = typer.Option(None, "--n", min=1, help="How many outputs to grade, a seeded sample of the "
                                                             "test rows (default: the sample size of knowledge rule "
                                                             "eval.grades)."),
              seed: int = typer.Option(None, "--seed", help="The sample's seed (default: eval.grades). Rows already "
                                                            "graded for other outputs on the same test file (the "
                                                            "prompt's, when grading the tuned model) come first."),
              grades: Path = GradesOpt,
              judge: str = typer.Option(None, "--judge", help="Also let a judge model grade every output; its "
                                        "agreement with your grades decides whether it stands in on the rest."),
              base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for openai: judges."),
              json_out: bool = JsonOpt) -> None:
    """Grade outputs good / bad / skip beside their input and reference (keys g, b, s; q to stop and resume later).

    The acceptance share with its Wilson 95% CI is the quality the 90% rule needs on free text, where chrF and
    ROUGE-L are only similarities. Grades are kept in the run log, so a second call resumes where you stopped."""
    import sys

    import click

    from tools.scoring import grades as G

    def key_pressed() -> str:
        """One key on a terminal; from a pipe, the next non-blank character (scripted use and tests)."""
        if sys.stdin.isatty():
            return str(click.getchar())
        ch = " "
        while ch.isspace():
            ch = sys.stdin.read(1)
            if not ch:
                return "q"
        return ch

    gs = G.grading_set(run, variant=variant, n=n, seed=seed)
    con = human(True)
    if grades is not None:
        G.import_grades(gs, grades)
    elif gs.pending():
        con.print(f"{len(gs.items) - len(gs.pending())} of {len(gs.items)} outputs already graded ({gs.variant} of "
                  f"run {gs.run_id}, seed {gs.seed}). Keys: g good, b bad, s skip, q quit (resume later).")
        for it in gs.pending():
            con.print(f"\n[bold]row {it.idx}[/] — [bold]input[/]: {it.input[:800]}\n[bold]reference[/]: "
                      f"{it.expected[:600]}\n[bold]output[/]: {it.output[:800]}", highlight=False)
            con.print("good / bad / skip? [g/b/s, q to quit] ", end="")
            key = ""
            while key not in G.KEYS and key != "q":
                key = (key_pressed() or "q").lower()
            con.print(key)
            if key == "q":
                break
            G.record_grade(gs, it.idx, G.KEYS[key])
    share = G.logged_share(gs.run_id, gs.variant) or gs.share()
    if judge:
        from agent.prompt_backends import register

        register()
        with progress_bar(json_out, "judging") as on_progress:
            share = G.judge_outputs(gs, judge, base_url=base_url, on_progress=on_progress)
    paired = G.paired_with_others(gs)
    if json_out:
        print_json({**share.to_dict(), "run_id": gs.run_id, "variant": gs.variant, "sample": [it.idx for it in gs.items],
                    "seed": gs.seed, "test_rows": gs.total_rows, "metric_of_run": gs.metric, "paired": paired})
        return
    out = human(False)
    if share.share is None:
        out.print(f"nothing graded good or bad yet ({share.skipped} skipped)")
    else:
        out.print(f"{gs.variant}: {share.share:.1%} accepted ({_ci(list(share.ci95))}, n={share.n}: {share.good} good, "
                  f"{share.bad} bad, {share.skipped} skipped; {len(gs.pending())} of the {len(gs.items)} sampled still to grade)")
    for d in paired:
        out.print(f"vs {d['a_variant']} of run {d['a_run_id']} on the same {d['n']} graded rows: "
                  f"{d['diff'] * 100:+.1f} points (paired 95% CI {d['diff_ci95'][0] * 100:+.1f} to "
                  f"{d['diff_ci95'][1] * 100:+.1f})")
    cal = (share.judge or {}).get("calibration")
    if cal:
        word = "stands in on the other rows" if cal["trusted"] else "does not stand in: your grades alone count"
        out.print(f"judge agreement with your grades: {cal['agreement']:.1%}, kappa {cal['kappa']:.2f} (n={cal['n']}); "
                  f"{word} (floor: kappa {cal['floor_kappa']} on {cal['floor_n']}+ rows, {cal['rule_id']})")


@eval_app.command("judge")
def judge_cmd(run: str = RunOpt, test: Path = TestOpt,
              judge: str = typer.Option(..., "--judge", help="Judge model: a local HF folder, the embedded "
                                                             "model, run:ID or openai:MODEL."),
              mode: str = typer.Option("rubric", "--mode", help="rubric (pass rate) or pairwise (win rate, "
                                                               "positions swapped)."),
              base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for openai: judges."),
              limit: int = LimitOpt,
              json_out: bool = JsonOpt) -> None:
    """A model judges the tuned run's answers; its agreement with your verdicts (executed tests on code, your
    side-by-side votes) is reported as % and Cohen's kappa with n, and decides whether its scores are used."""
    from agent.prompt_backends import register
    from tools.errors import one_of
    from tools.evaluate.judging import judge_run
    from tools.scoring.judge import MODES

    register()
    with progress_bar(json_out, "judging") as on_progress:
        res = judge_run(run, str(test), judge, mode=one_of(mode, MODES, what="--mode"), limit=limit,
                        base_url=base_url, on_progress=on_progress)
    if json_out:
        print_json(res.to_dict())
        return
    con = human(False)
    what = "pass rate" if res.mode == "rubric" else "win rate of the tuned model"
    con.print(f"judge {res.judge} ({res.mode}): {what} {res.rate:.1%} ({_ci(list(res.ci95))}, n={res.valid}"
              + (f", {res.invalid} replies were not verdicts" if res.invalid else "") + ")")
    ag = res.agreement
    if ag is None:
        con.print("no ground truth to check the judge against yet (executed tests, or your votes: "
                  "`tunewise eval compare --vote`); its scores are not used")
    else:
        word = "[green]trusted[/]" if ag.trusted else "[yellow]not trusted[/]"
        con.print(f"agreement with {ag.ground_truth}: {ag.agreement:.1%}, kappa {ag.kappa:.2f} (n={ag.n}); "
                  f"{word} (floor: kappa {ag.floor_kappa} on {ag.floor_n}+ rows, {ag.rule_id})")


@eval_app.command("forgetting")
def forgetting_cmd(run: str = typer.Option(..., "--run", help="The tuned run (or any model, to compare with --base)."),
                   probes: Path = ProbesOpt,
                   base: str = typer.Option(None, help="Compare against this model instead of the run's base."),
                   max_new_tokens: int = typer.Option(None, help="Longest answer generated "
                                                             "(default: EvalConfig.probe_max_new_tokens)."),
                   limit: int = typer.Option(None, "--limit", min=1, help="Ask only N probes, evenly spread over "
                                             "the file (every category keeps a share). Default: all of them."),
                   json_out: bool = JsonOpt) -> None:
    """Catastrophic forgetting check: the base and the tuned model answer the same general questions."""
    from tools.evaluate import forgetting

    with progress_bar(json_out, "forgetting") as on_progress:
        res = forgetting(run, probes=probes, base=base, config=_cfg(max_new_tokens), on_progress=on_progress,
                         limit=limit)
    if json_out:
        print_json(res.to_dict())
        return
    con = human(False)
    colour = "red" if res.degraded else "green"
    of = f" (of {res.probes_total})" if res.probes_total > res.probes else ""
    con.print(f"{res.probes} probes{of}: base {res.base_score:.1%} ({_ci(res.base_ci95)}), tuned "
              f"{res.tuned_score:.1%} ({_ci(res.tuned_ci95)}); {res.lost} lost, {res.gained} gained, "
              f"{res.changed} answers changed.")
    con.print(f"verdict: [bold {colour}]{res.verdict}[/]")
    for cat, v in res.categories.items():
        con.print(f"  {cat:<14} base {v['base_score']:.0%}  tuned {v['tuned_score']:.0%}  (n={v['n']})")
    for it in [i for i in res.items if i["status"] == "lost"][:10]:
        con.print(f"  [red]lost[/] {it['question']} — base: {it['base'][:60]!r}, tuned: {it['tuned'][:60]!r}")
    for fix in res.fixes:
        con.print(f"  fix ({fix['rule']}): {fix['text']}")


@eval_app.command("ab")
def ab_cmd(a: str = typer.Option(..., "--a", help="Variant A: run:ID, base, base:MODEL, prompt:RUN_ID|FILE.json, "
                                                   "or a model."),
           b: str = typer.Option(..., "--b", help="Variant B (same forms as --a)."),
           test: Path = TestOpt,
           bar: float = typer.Option(None, help="Minimum gain of B over A, in absolute points (0.10 = 10 points; "
                                                 "default: rule roi.worth_it)."),
           metric: str = typer.Option(None, help="Metric (default: decided once from the test set's profile)."),
           cost_per_1k_tokens: float = typer.Option(None, help="Price per 1000 tokens, to show cost per request."),
           max_new_tokens: int = typer.Option(None, help="Longest answer generated (default: from the references' "
                                                                  "token lengths)."),
           limit: int = LimitOpt,
           json_out: bool = JsonOpt) -> None:
    """Offline A/B on the same examples: difference with a bootstrap CI, McNemar's test, latency and tokens of
    each, and the ROI rule (is B better by more than the bar, with confidence?)."""
    from tools.evaluate import ab

    with progress_bar(json_out, "A/B") as on_progress:
        res = ab(a, b, test, bar=bar, metric=metric, cost_per_1k_tokens=cost_per_1k_tokens,
                 config=_cfg(max_new_tokens), on_progress=on_progress, limit=limit)
    if json_out:
        print_json(res.to_dict())
        return
    con = human(False)
    for side, s in (("a", res.a), ("b", res.b)):
        cost = f", ${s['cost_per_request']:.5f}/request" if s.get("cost_per_request") is not None else ""
        con.print(f"{side.upper()} {s['variant']}: {s['quality']:.1%} ({_ci(s['ci95'])}), "
                  f"{s['latency_ms_mean']:.0f} ms, {s['tokens_per_request']:.0f} tokens/request{cost}")
    mc = res.mcnemar
    con.print(f"B − A = {res.diff * 100:+.1f} points (95% CI {res.diff_ci95[0] * 100:+.1f} to "
              f"{res.diff_ci95[1] * 100:+.1f})" + (f"; McNemar p = {mc['p_value']:.3g}" if mc else ""))
    verdict = res.roi["verdict"]
    colour = {"worth_it": "green", "not_worth_it": "red"}.get(verdict, "yellow")
    con.print(f"ROI: [bold {colour}]{verdict.replace('_', ' ')}[/] — {res.roi['reason']}")


def roi_cmd(prompt_dev_hours: float = typer.Option(..., help="Hours spent on prompts."),
            hourly_rate: float = typer.Option(..., help="Cost of one engineer hour."),
            data_prep_hours: float = typer.Option(..., help="Hours spent preparing training data."),
            training_cost: float = typer.Option(None, help="Compute spend for training (default: from --run and "
                                                           "--gpu-hour-cost)."),
            run: str = typer.Option(None, "--run", help="Fill measured training time and test gain from this run."),
            gpu_hour_cost: float = typer.Option(None, help="Price of one GPU hour, to cost the run's training time."),
            quality_gain: float = typer.Option(None, help="Measured gain over the prompt baseline (0.12 = 12 points)."),
            bar: float = typer.Option(None, help="Minimum gain that justifies fine-tuning "
                                                 "(default: rule roi.worth_it)."),
            json_out: bool = JsonOpt) -> None:
    """Is fine-tuning worth its cost? The seed's ROI formula on your numbers, filled from a run when given."""
    from tools.evaluate import roi

    res = roi(prompt_dev_hours, hourly_rate, data_prep_hours, training_cost, run_id=run, gpu_hour_cost=gpu_hour_cost,
              quality_gain=quality_gain, bar=bar)
    if json_out:
        print_json(res.to_dict())
        return
    con = human(False)
    ratio = "∞" if res.ratio is None else f"{res.ratio:.1f}x"
    con.print(f"prompt cost ${res.prompt_cost:,.0f}; fine-tuning cost ${res.fine_tune_cost:,.0f} ({ratio})")
    for k, v in res.filled.items():
        con.print(f"  {k}: {v}")
    need = res.min_quality_improvement
    if res.quality_gain is None:
        con.print(f"Fine-tuning pays only with a quality gain above {need * 100:.0f} points; measure it with "
                  "`tunewise eval test`.")
    else:
        word = "[green]worth it[/]" if res.worth_it else "[red]not worth it[/]"
        con.print(f"gain {res.quality_gain * 100:+.1f} points vs a bar of {need * 100:.0f}: {word} "
                  f"({', '.join(res.rule_ids)})")


def report_cmd(run_id: str = typer.Argument(..., help="The run to report on."),
               out: Path = OutOpt,
               json_out: bool = JsonOpt) -> None:
    """One page for your team: data, prompt baseline, training curves, test results with CIs, a side-by-side
    sample, forgetting, A/B and the checklist, from the run log."""
    from tools.report import build_report

    path = build_report(run_id, out)
    if json_out:
        print_json({"report": str(path), "format": "markdown" if path.suffix == ".md" else "html"})
    else:
        human(False).print(f"report written to {path}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(eval_app, name="eval")
    app.command("roi")(roi_cmd)
    app.command("report")(report_cmd)
