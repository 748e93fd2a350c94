"""One page a person can send to their team: what the data was, what prompts reached, how training went, what
the tuned model scored on the test set (with CIs), a sample side by side, whether it forgot, the A/B, the
checklist.

Everything is read from the run log; nothing is recomputed. ``build_report(run_id, "report.html")`` writes HTML
with the plots inline (SVG from matplotlib's Agg backend); ``report.md`` writes Markdown with PNG plots in a
``<name>_files/`` folder beside it. Files are written atomically.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tools.fileio import atomic_open, write_text
from tools.redaction import redact
from tools.runlog import RunLog

# ---------------------------------------------------------------------------------------------- facts

def _latest(log: RunLog, run_id: str, kind: str) -> dict[str, Any] | None:
    rows = log.query("SELECT * FROM evaluations WHERE run_id = ? AND kind = ? ORDER BY created_at DESC LIMIT 1",
                     [run_id, kind])
    if not rows:
        return None
    row = rows[0]
    row["details"] = json.loads(row["details"]) if row.get("details") else {}
    return row


def gather(run_id: str) -> dict[str, Any]:
    """Every fact the report shows, from the run log."""
    from tools.evaluate import prompt_baseline_run

    log = RunLog()
    run = log.find_run(run_id.removeprefix("run:"))
    rid = run["run_id"]
    hashes = run.get("data_hashes") or {}
    datasets = []
    for split, sha in hashes.items() if isinstance(hashes, dict) else []:
        rows = log.query("SELECT path, rows, format, kind, report FROM datasets WHERE sha256 = ? "
                         "ORDER BY created_at DESC LIMIT 1", [sha])
        d = rows[0] if rows else {"path": None, "rows": None, "format": None, "kind": None, "report": None}
        d["report"] = json.loads(str(d["report"])) if d.get("report") else None
        datasets.append({"split": split, "sha256": sha, **d})
    prompt_run = prompt_baseline_run()
    prompt_evals = []
    if prompt_run:
        prompt_evals = log.query("SELECT kind, metric, value, ci_low, ci_high, n, details FROM evaluations "
                                 "WHERE run_id = ? ORDER BY value DESC NULLS LAST", [prompt_run["run_id"]])
    tests = {role: _latest(log, rid, kind) for role, kind in
             (("tuned", "test"), ("base", "test_base"), ("prompt_baseline", "test_prompt_baseline"))}
    n_tests = 0
    if tests["tuned"]:
        n_tests = len(log.query("SELECT eval_id FROM evaluations WHERE kind = 'test' AND test_sha256 = ?",
                                [tests["tuned"]["test_sha256"]]))
    ab_rows = log.query("SELECT experiment, variant, count(*) AS n, avg(outcome) AS rate FROM ab_requests "
                        "GROUP BY experiment, variant ORDER BY experiment, variant")
    return {"run": run, "run_id": rid, "datasets": datasets, "prompt_run": prompt_run, "prompt_evals": prompt_evals,
            "metrics": log.metrics(rid), "tests": tests, "test_evaluations": n_tests,
            "compare": _latest(log, rid, "compare"), "forgetting": _latest(log, rid, "forgetting"),
            "ab": _latest(log, rid, "ab"), "ab_online": ab_rows, "generated_at": datetime.now().isoformat(" ", "seconds")}


def checklist_status(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Each checklist item ticked (True), open (False) or not known from the run log (None), by the one checklist
    evaluator (``tools.checklist``)."""
    from tools.checklist import ChecklistFacts, evaluate

    run = facts["run"]
    cfg = run.get("config") or {}
    train_rows = next((d["rows"] for d in facts["datasets"] if d["split"] == "train"), None)
    splits = {m["split"] for m in facts["metrics"]}
    compare = facts["compare"]
    known = ChecklistFacts(
        prompt_baseline_measured=facts["prompt_run"] is not None,
        n_examples=train_rows,
        dataset_cleaned=any(d.get("kind") in ("clean", "cleaned") or (d.get("report") or {}).get("kept_rows")
                            for d in facts["datasets"]) or None,
        split_created=bool({"train", "test"} <= set(run.get("data_hashes") or {})) or None,
        metric_defined=facts["tests"]["tuned"] is not None or bool(cfg.get("metric")) or None,
        method=(run.get("method") or cfg.get("method") or None),
        learning_rate=cfg.get("learning_rate") or cfg.get("lr"),
        epochs=cfg.get("num_train_epochs") or cfg.get("epochs"),
        val_loss_monitored="val" in splits or "validation" in splits,
        runlog=True,
        test_evaluated=facts["tests"]["tuned"] is not None,
        side_by_side_rows=None if compare is None else int(compare.get("n") or 0),
        forgetting_checked=facts["forgetting"] is not None,
        ab_tested=facts["ab"] is not None or bool(facts["ab_online"]),
        hyperparameters_documented=bool(cfg))
    return [{"n": t.n, "id": t.id, "text": t.text, "evidence": t.evidence, "done": t.done} for t in evaluate(known)]


# ---------------------------------------------------------------------------------------------- plots

def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.fonttype": "none"})
    return plt


def plot_curves(metrics: list[dict[str, Any]]) -> Any | None:
    """Loss (and any other logged metric) against step, one line per split."""
    if not metrics:
        return None
    plt = _figure()
    names = sorted({m["name"] for m in metrics}, key=lambda n: (n != "loss", n))[:2]
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.0), squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        for split in sorted({m["split"] for m in metrics if m["name"] == name}):
            pts = [(m["step"], m["value"]) for m in metrics if m["name"] == name and m["split"] == split]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None, ms=3,
                    label=split)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_scores(bars: Sequence[tuple[str, float, Sequence[Any] | None]], title: str) -> Any | None:
    """Horizontal bars with 95% CI whiskers."""
    if not bars:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(bars)))
    ys = list(range(len(bars)))
    vals = [b[1] for b in bars]
    err = [[max(0.0, b[1] - (b[2] or [b[1], b[1]])[0]) for b in bars],
           [max(0.0, (b[2] or [b[1], b[1]])[1] - b[1]) for b in bars]]
    ax.barh(ys, vals, xerr=err, color=["#4C78A8", "#9ecae9", "#F58518", "#72B7B2"][: len(bars)], capsize=4)
    ax.set_yticks(ys, [b[0] for b in bars])
    ax.set_xlim(0, 1.16)  # room right of 100% for the value labels
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.invert_yaxis()
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    for y, b in zip(ys, bars, strict=True):
        hi = (b[2] or [b[1], b[1]])[1]
        ax.text(float(hi) + 0.02, y, f"{b[1]:.1%}", va="center")
    fig.tight_layout()
    return fig


def plot_categories(cats: dict[str, dict[str, Any]]) -> Any | None:
    """Base vs tuned probe scores per category, side by side."""
    if not cats:
        return None
    plt = _figure()
    names = list(cats)
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.42 * len(names)))
    ys = range(len(names))
    ax.barh([y - 0.2 for y in ys], [cats[c]["base_score"] for c in names], height=0.38, label="base",
            color="#9ecae9")
    ax.barh([y + 0.2 for y in ys], [cats[c]["tuned_score"] for c in names], height=0.38, label="tuned",
            color="#4C78A8")
    ax.set_yticks(list(ys), [c.replace("_", " ") for c in names])
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title("general probes: share answered correctly")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _figure().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _png(fig: Any, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)


# ---------------------------------------------------------------------------------------------- sections
# Each section is a list of blocks: ("h", text) | ("p", text) | ("table", header, rows) | ("plot", key, fig)
Block = tuple[Any, ...]


def _pct(x: Any) -> str:
    return "-" if x is None else f"{float(x):.1%}"


def _ci(lo: Any, hi: Any) -> str:
    return "-" if lo is None or hi is None else f"{float(lo):.1%} – {float(hi):.1%}"


def _short(text: Any, n: int = 160) -> str:
    t = "" if text is None else str(text).replace("\n", " ")
    return t if len(t) <= n else t[: n - 1] + "…"


def sections(f: dict[str, Any]) -> list[tuple[str, list[Block]]]:
    run = f["run"]
    cfg = run.get("config") or {}
    out: list[tuple[str, list[Block]]] = []

    summary: list[Block] = [("table", ["", ""], [
        ["run", f["run_id"]], ["status", run.get("status")], ["model", run.get("model") or cfg.get("model")],
        ["method", run.get("method") or cfg.get("method")],
        ["training time", "-" if run.get("train_seconds") is None else f"{run['train_seconds']:.0f} s"],
        ["steps", run.get("steps")], ["best validation loss", run.get("best_val_loss")],
        ["peak memory", "-" if run.get("peak_memory_mb") is None else f"{run['peak_memory_mb']:.0f} MB"]])]
    t = f["tests"]["tuned"]
    if t:
        base = f["tests"]["base"]
        line = f"Tuned model: {_pct(t['value'])} {t['metric']} on {t['n']} test examples (95% CI {_ci(t['ci_low'], t['ci_high'])})"
        if base:
            line += f"; base model {_pct(base['value'])}"
        summary.insert(0, ("p", line + "."))
    fg = f["forgetting"]
    if fg:
        summary.insert(1 if t else 0, ("p", f"General skills: {fg['details'].get('verdict')}."))
    out.append(("Summary", summary))

    data: list[Block] = []
    if f["datasets"]:
        data.append(("table", ["split", "rows", "format", "file", "sha256"],
                     [[d["split"], d.get("rows"), d.get("format"), _short(d.get("path"), 60), d["sha256"][:12]]
                      for d in f["datasets"]]))
        for d in f["datasets"]:
            rep = d.get("report") or {}
            if rep.get("removed"):
                data.append(("p", f"Cleaning removed from {d['split']}: "
                                  + ", ".join(f"{k} {v}" for k, v in rep["removed"].items())
                                  + f" (kept {rep.get('kept_rows')} of {rep.get('input_rows')})."))
    else:
        data.append(("p", "No dataset is recorded for this run."))
    out.append(("Data", data))

    pb: list[Block] = []
    if f["prompt_run"]:
        rows = [[e["kind"], e["metric"], _pct(e["value"]), _ci(e["ci_low"], e["ci_high"]), e["n"]]
                for e in f["prompt_evals"][:8]]
        pb.append(("p", f"Prompt baseline run {f['prompt_run']['run_id']} (model {f['prompt_run'].get('model')})."))
        if rows:
            pb.append(("table", ["evaluation", "metric", "quality", "95% CI", "n"], rows))
    else:
        pb.append(("p", "No prompt baseline was measured (run `tunewise prompt-eval`). Prompts come first: "
                        "they are enough for most tasks."))
    out.append(("Prompt baseline", pb))

    tr: list[Block] = []
    fig = plot_curves(f["metrics"])
    if fig is not None:
        tr.append(("plot", "curves", fig))
        tr.append(("p", "Hyperparameters: " + ", ".join(f"{k}={v}" for k, v in list(cfg.items())[:14])))
    else:
        tr.append(("p", "No training metrics were logged for this run."))
    out.append(("Training", tr))

    te: list[Block] = []
    if t:
        bars, rows = [], []
        for role, label in (("tuned", "tuned"), ("prompt_baseline", "prompt baseline"), ("base", "base model")):
            e = f["tests"][role]
            if e:
                bars.append((label, float(e["value"]), [e["ci_low"], e["ci_high"]]))
                d = e["details"]
                rows.append([label, d.get("variant"), _pct(e["value"]), _ci(e["ci_low"], e["ci_high"]), e["n"],
                             f"{d.get('latency_ms_mean', 0):.0f} ms", f"{d.get('prompt_tokens_mean', 0):.0f}"])
        te.append(("plot", "test", plot_scores(bars, f"test set, {t['metric']} (95% CI)")))
        te.append(("table", ["", "variant", "quality", "95% CI", "n", "latency", "prompt tokens"], rows))
        if f["test_evaluations"] > 1:
            te.append(("warn", f"This test file has been scored {f['test_evaluations']} times. Choosing a run "
                               "by its test score is test-set peeking; the number is optimistic."))
    else:
        te.append(("p", "Not evaluated on the test set yet (`tunewise eval test`)."))
    out.append(("Test set", te))

    cmp_: list[Block] = []
    c = f["compare"]
    if c:
        cols = c["details"].get("columns", [])
        mark = {True: "✓", False: "✗", None: ""}
        rows = [[_short(r["input"], 120), _short(r["expected"], 40)]
                + [f"{mark[r.get(col + '_ok')]} {_short(r.get(col), 60)}" for col in cols]
                + [", ".join(r.get("why", []))] for r in c["details"].get("rows", [])]
        cmp_.append(("table", ["input", "expected", *[col.replace("_", " ") for col in cols], "why shown"], rows))
    else:
        cmp_.append(("p", "No side-by-side sample yet (`tunewise eval compare`)."))
    out.append(("Side by side", cmp_))

    fo: list[Block] = []
    if fg:
        d = fg["details"]
        fo.append(("p", f"{d['probes']} general probes. Base {_pct(d['base_score'])} "
                        f"({_ci(*d['base_ci95'])}), tuned {_pct(d['tuned_score'])} ({_ci(*d['tuned_ci95'])}); "
                        f"{d['lost']} lost, {d['gained']} gained, {d['changed']} answers changed. "
                        f"Verdict: {d['verdict']}."))
        cats = d.get("categories", {})
        fo.append(("plot", "forgetting", plot_categories(cats)))
        if cats:
            fo.append(("table", ["category", "n", "base", "tuned"],
                       [[k, v["n"], _pct(v["base_score"]), _pct(v["tuned_score"])] for k, v in cats.items()]))
        lost = [i for i in d.get("items", []) if i["status"] == "lost"][:10]
        if lost:
            fo.append(("table", ["lost probe", "expected", "base", "tuned"],
                       [[_short(i["question"], 80), _short(i["answer"], 30), _short(i["base"], 60),
                         _short(i["tuned"], 60)] for i in lost]))
        for fix in d.get("fixes", []):
            fo.append(("p", f"Fix ({fix['rule']}): {fix['text']}"))
    else:
        fo.append(("p", "The forgetting check has not been run (`tunewise eval forgetting`)."))
    out.append(("Forgetting", fo))

    abb: list[Block] = []
    a = f["ab"]
    if a:
        d = a["details"]
        abb.append(("table", ["", "variant", "quality", "95% CI", "latency", "tokens / request"],
                    [[side.upper(), d[side]["variant"], _pct(d[side]["quality"]), _ci(*d[side]["ci95"]),
                      f"{d[side]['latency_ms_mean']:.0f} ms", f"{d[side]['tokens_per_request']:.0f}"]
                     for side in ("a", "b")]))
        mc = d.get("mcnemar") or {}
        abb.append(("p", f"B − A = {d['diff'] * 100:+.1f} points (95% CI {d['diff_ci95'][0] * 100:+.1f} to "
                         f"{d['diff_ci95'][1] * 100:+.1f})" + (f", McNemar p = {mc['p_value']:.3g}" if mc else "")
                    + f". ROI: {d['roi']['verdict'].replace('_', ' ')} — {d['roi']['reason']}."))
    if f["ab_online"]:
        abb.append(("table", ["experiment", "variant", "requests", "success rate"],
                    [[r["experiment"], r["variant"], r["n"], _pct(r["rate"])] for r in f["ab_online"]]))
    if not abb:
        abb.append(("p", "No A/B comparison yet (`tunewise eval ab`)."))
    out.append(("A/B", abb))

    mark = {True: "✓ done", False: "✗ open", None: "? unknown"}
    out.append(("Checklist", [("table", ["#", "step", "status"],
                               [[i["n"], i["text"], mark[i["done"]]] for i in checklist_status(f)])]))
    return out


# ---------------------------------------------------------------------------------------------- rendering

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1080px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em;width:100%}
th,td{border:1px solid #e2e2e2;padding:4px 7px;text-align:left;vertical-align:top}th{background:#f6f6f6}
.meta{color:#777;font-size:.85em}.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em .8em}
.plot svg{max-width:100%;height:auto}
"""


def render_html(f: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>tunewise report {e(f['run_id'])}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>Fine-tuning report: {e(f['run_id'])}</h1>",
             f"<p class='meta'>Generated by tunewise on {e(f['generated_at'])} from the run log.</p>"]
    parts += _html_blocks(sections(f))
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_blocks(secs: list[tuple[str, list[Block]]]) -> list[str]:
    e = html.escape
    parts: list[str] = []
    for title, blocks in secs:
        parts.append(f"<h2>{e(title)}</h2>")
        for b in blocks:
            if b[0] == "p":
                parts.append(f"<p>{e(str(b[1]))}</p>")
            elif b[0] == "warn":
                parts.append(f"<p class='warn'>{e(str(b[1]))}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{e(str(h))}</th>" for h in b[1]) if any(b[1]) else ""
                body = "".join("<tr>" + "".join(f"<td>{e('' if c is None else str(c))}</td>" for c in row) + "</tr>"
                               for row in b[2])
                thead = f"<thead><tr>{head}</tr></thead>" if head else ""
                parts.append(f"<table>{thead}<tbody>{body}</tbody></table>")
            elif b[0] == "plot" and b[2] is not None:
                parts.append(f"<div class='plot'>{_svg(b[2])}</div>")
    return parts


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#"})


def md_escape(text: Any) -> str:
    """User text made inert in Markdown: HTML's ``& < >`` become entities (renderers pass raw HTML through, so
    a test row's ``<script>`` or ``<img onerror>`` would run), Markdown's markup characters are escaped, and
    newlines become spaces."""
    t = "" if text is None else str(text)
    t = t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return t.translate(_MD_SPECIAL).replace("\r", " ").replace("\n", " ")


def _md_cell(c: Any) -> str:
    return md_escape(c)


def render_markdown(f: dict[str, Any], assets: Path, link: Callable[[Path], str]) -> str:
    lines = [f"# Fine-tuning report: {md_escape(f['run_id'])}", "", f"_Generated by tunewise on {f['generated_at']}._", ""]
    lines += _md_blocks(sections(f), assets, link)
    return "\n".join(lines)


def _md_blocks(secs: list[tuple[str, list[Block]]], assets: Path, link: Callable[[Path], str]) -> list[str]:
    lines: list[str] = []
    for title, blocks in secs:
        lines += [f"## {title}", ""]
        for b in blocks:
            if b[0] == "p":
                lines += [md_escape(b[1]), ""]
            elif b[0] == "warn":
                lines += [f"> **Warning:** {md_escape(b[1])}", ""]
            elif b[0] == "table":
                lines.append("| " + " | ".join(_md_cell(h) for h in b[1]) + " |")
                lines.append("|" + "---|" * len(b[1]))
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b[2]]
                lines.append("")
            elif b[0] == "plot" and b[2] is not None:
                png = assets / f"{b[1]}.png"
                _png(b[2], png)
                lines += [f"![{b[1]}]({link(png)})", ""]
    return lines


def build_report(run_id: str, out: str | Path) -> Path:
    """Write the report for a run: HTML (``.html``/``.htm``) or Markdown (``.md``); returns the path."""
    out = Path(out)
    facts = gather(run_id)
    if out.suffix.lower() == ".md":
        assets = out.with_name(out.stem + "_files")
        text = render_markdown(facts, assets, lambda p: f"{assets.name}/{p.name}")
    else:
        text = render_html(facts)
    write_text(out, redact(text))  # no secret in a report, whatever a row or an error carried
    return out


# ---------------------------------------------------------------------------------------------- session report
# The advisor's recommendation as one page: what it decided and why (rule ids), the numbers it measured with
# their CIs, the learning curve, and what would change the decision. Read from the run log's ``sessions`` row,
# which holds the recommendation document of ``tunewise advise --json``; nothing is recomputed.

def is_session(ref: str) -> bool:
    """True when ``ref`` names an advisor session in the run log."""
    return bool(RunLog().query("SELECT 1 FROM sessions WHERE session_id = ?", [ref]))


def gather_session(session_id: str) -> dict[str, Any]:
    """The session's answers and recommendation, or a clear error when it has none yet."""
    from tools.errors import InputError

    rows = RunLog().query("SELECT * FROM sessions WHERE session_id = ?", [session_id])
    if not rows:
        raise InputError(f"no advisor session '{session_id}' in the run log", where=session_id,
                         fix="list sessions with `tunewise runs sql \"SELECT session_id, status FROM sessions\"`")
    row = rows[0]
    rec = json.loads(row["recommendation"]) if row.get("recommendation") else None
    if not rec:
        raise InputError(f"session '{session_id}' has no recommendation yet (status {row.get('status')})",
                         where=session_id, fix=f"finish it with `tunewise advise --resume {session_id}`")
    return {"session_id": session_id, "status": row.get("status"), "updated_at": str(row.get("updated_at")),
            "answers": json.loads(row["answers"]) if row.get("answers") else {}, "rec": rec,
            "generated_at": datetime.now().isoformat(" ", "seconds")}


def plot_learning_curve(curve: dict[str, Any], bar: float | None = None) -> Any | None:
    """Measured points with 95% CI whiskers, the fitted power law, its 90% band at 2x/5x/10x, and the bar."""
    points = curve.get("points") or []
    if not points:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ns = [p["n"] for p in points]
    qs = [p["quality"] for p in points]
    lo = [max(0.0, q - (p.get("ci95") or [q, q])[0]) for p, q in zip(points, qs, strict=True)]
    hi = [max(0.0, (p.get("ci95") or [q, q])[1] - q) for p, q in zip(points, qs, strict=True)]
    ax.errorbar(ns, qs, yerr=[lo, hi], fmt="o", color="#4C78A8", capsize=4, label="measured (95% CI)")
    fit = curve.get("fit") or {}
    preds = curve.get("predictions") or []
    if fit.get("a") is not None and fit.get("b") is not None:
        a, b = float(fit["a"]), float(fit["b"])
        top = max([*ns, *[p["n"] for p in preds]])
        xs = [min(ns) * (top / min(ns)) ** (i / 60) for i in range(61)]
        style = "-" if curve.get("can_extrapolate") else ":"
        ax.plot(xs, [max(0.0, min(1.0, 1 - a * x ** -b)) for x in xs], style, color="#F58518",
                label="power-law fit" + ("" if curve.get("can_extrapolate") else f" ({curve.get('why_not')})"))
    if preds:
        ax.errorbar([p["n"] for p in preds], [p["quality"] for p in preds],
                    yerr=[[max(0.0, p["quality"] - p["band"][0]) for p in preds],
                          [max(0.0, p["band"][1] - p["quality"]) for p in preds]],
                    fmt="s", color="#F58518", mfc="white", capsize=3, label="predicted (90% band)")
    if bar is not None:
        ax.axhline(bar, color="#54A24B", ls="--", lw=1)
        ax.text(min(ns), bar + 0.01, f"bar {bar:.0%}", color="#54A24B", va="bottom")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel(str(curve.get("metric") or "quality"))
    ax.set_title("learning curve on your data")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _ev(evidence: Any, n: int = 220) -> str:
    return "" if evidence is None else _short(json.dumps(evidence, default=str, ensure_ascii=False), n)


def session_sections(f: dict[str, Any]) -> list[tuple[str, list[Block]]]:
    rec = f["rec"]
    card = rec.get("card") or {}
    bar = rec.get("quality_bar")
    out: list[tuple[str, list[Block]]] = []

    top: list[Block] = [("p", rec.get("summary") or rec.get("path") or "")]
    if rec.get("next_step"):
        top.append(("p", f"Next step: {rec['next_step']}."))
    rows = [["decision", rec.get("path")], ["method", rec.get("method") or "-"], ["quality bar", _pct(bar)]]
    for num in card.get("numbers") or []:
        v = num["value"]
        shown = _pct(v) if isinstance(v, float) and v <= 1 else f"{v:,}"
        rows.append([num["name"], f"{shown} ({num['source']})"])
    if rec.get("memory_estimate_gb") is not None:
        rows.append(["training memory (target machine)", f"{rec['memory_estimate_gb']} GB"])
    top.append(("table", ["", ""], rows))
    if card.get("deciding"):
        top.append(("table", ["deciding rule", "why"], [[d["rule"], d["text"]] for d in card["deciding"]]))
    out.append(("Recommendation", top))

    cfs = rec.get("what_would_change") or []
    out.append(("What would change the decision", [
        ("table", ["if", "then", "rules"], [[c["condition"], c["text"].split(": ", 1)[-1],
                                             ", ".join(c.get("rules") or [])] for c in cfs])
        if cfs else ("p", "No single change to the answers or measurements flips this decision.")]))

    meas: list[Block] = []
    pq = rec.get("prompt_quality") or {}
    mrows = []
    for name, key in (("plain prompt", "plain"), ("best prompt variant", "optimized")):
        if pq.get(key) is not None:
            mrows.append([name, _pct(pq[key]), "measured by tunewise"])
    pipe = rec.get("pipeline") or {}
    ev = pipe.get("evaluate") or {}
    if ev.get("quality") is not None:
        ci = ev.get("ci95") or [None, None]
        mrows.append([f"check run, {ev.get('metric') or 'quality'}", f"{_pct(ev['quality'])} ({_ci(*ci[:2])}), "
                      f"n={ev.get('n')}", "measured by tunewise"])
        vs = (ev.get("vs") or {}).get("prompt_baseline") or {}
        if vs.get("quality") is not None:
            mrows.append(["prompt on the same rows", _pct(vs["quality"]), "measured by tunewise"])
    fg = pipe.get("forgetting") or {}
    if fg:
        mrows.append(["general probes", str(fg.get("verdict")), "measured by tunewise"])
    if mrows:
        meas.append(("table", ["measurement", "value (95% CI)", "source"], mrows))
    outcome = rec.get("outcome") or {}
    if (outcome.get("full_run") or {}).get("full_run_seconds"):
        fr = outcome["full_run"]
        meas.append(("p", f"Cost: the check run took {fr['seconds_per_step']:g} s per step on this machine; a full "
                          f"run of {fr['full_run_steps']:,} steps would take about {fr['full_run_seconds'] / 3600:.1f} h."))
    if not meas:
        meas.append(("p", "Nothing was measured in this session: every quality number was reported by the user."))
    out.append(("Measurements", meas))

    curve = rec.get("learning_curve")
    lc: list[Block] = []
    if curve:
        lc.append(("plot", "learning_curve", plot_learning_curve(curve, bar)))
        lc.append(("table", ["examples", "quality", "95% CI", "train s"],
                   [[f"{p['n']:,}", _pct(p["quality"]), _ci(*(p.get("ci95") or [None, None])[:2]),
                     p.get("train_seconds")] for p in curve.get("points") or []]))
        if curve.get("message"):
            lc.append(("p", curve["message"]))
    else:
        lc.append(("p", "No learning curve was measured (`tunewise learning-curve`, or answer yes to it in the "
                        "advisor's pipeline)."))
    out.append(("Learning curve", lc))

    cmp_rows = ((pipe.get("compare") or {}).get("rows") or [])[:8]
    if cmp_rows:
        cols = [k for k in cmp_rows[0] if k not in ("why",) and not k.endswith("_ok")][:4]
        out.append(("Side by side (test rows)", [("table", cols, [[_short(r.get(k), 100) for k in cols]
                                                                 for r in cmp_rows])]))

    out.append(("Decision path", [("table", ["rule", "why", "evidence"],
                                   [[r["rule"], r["text"], _ev(r.get("evidence"))] for r in rec.get("reasons") or []])]))

    plan: list[Block] = []
    hp = rec.get("hyperparameters") or {}
    if hp:
        plan.append(("table", ["setting", "value"], [[k, json.dumps(v) if isinstance(v, (dict, list)) else v]
                                                     for k, v in hp.items()]))
    dev = rec.get("device") or {}
    if dev:
        plan.append(("p", f"This machine (detected): {dev.get('kind')} {dev.get('name') or ''}; the plan is for the "
                          f"machine you train on ({f['answers'].get('gpu_memory_gb', '?')} GB GPU memory)."))
    derived = rec.get("derived") or {}
    if derived:
        plan.append(("table", ["read from your data", "value", "how"],
                     [[k, _short(v.get("value"), 80), v.get("from")] for k, v in derived.items()]))
    if plan:
        out.append(("Plan", plan))
    return out


def render_session_html(f: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>tunewise advice {e(f['session_id'])}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>Should we fine-tune? Session {e(f['session_id'])}</h1>",
             f"<p class='meta'>Generated by tunewise on {e(f['generated_at'])} from the run log "
             f"(session {e(str(f['status']))}, updated {e(f['updated_at'])}).</p>"]
    parts += _html_blocks(session_sections(f))
    parts.append("</body></html>")
    return "\n".join(parts)


def render_session_markdown(f: dict[str, Any], assets: Path, link: Callable[[Path], str]) -> str:
    lines = [f"# Should we fine-tune? Session {md_escape(f['session_id'])}", "",
             f"_Generated by tunewise on {f['generated_at']} from the run log._", ""]
    lines += _md_blocks(session_sections(f), assets, link)
    return "\n".join(lines)


def build_session_report(session_id: str, out: str | Path) -> Path:
    """Write the advisor session's report: HTML (``.html``) or Markdown (``.md``, PNG chart beside it)."""
    out = Path(out)
    facts = gather_session(session_id)
    if out.suffix.lower() == ".md":
        assets = out.with_name(out.stem + "_files")
        text = render_session_markdown(facts, assets, lambda p: f"{assets.name}/{p.name}")
    else:
        text = render_session_html(facts)
    write_text(out, redact(text))  # an answer or a pasted error may carry a key, as in a run's report
    return out
