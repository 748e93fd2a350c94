"""``tunewise advise``: the decision tree as a conversation, a script, or a diagram."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.common import JsonOpt, err, human, print_json

if TYPE_CHECKING:
    from agent.api import Recommendation

ANSWER_HINT = ("type 'back' to revise the previous answer, 'why' for the reason, 'set NAME VALUE' to change a value "
               "read from your data, 'quit' to stop (the session is saved)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("advise")(advise)


def advise(
    answers: str = typer.Option(None, "--answers", help="Answer the questions from a JSON or YAML file (asks nothing)."),
    json_out: bool = JsonOpt,
    resume: str = typer.Option(None, "--resume", help="Continue a saved session by its id."),
    graph: bool = typer.Option(False, "--graph", help="Print the advisor's graph as a Mermaid diagram."),
    model: str | None = typer.Option(None, "--model",
                              help="The model to measure and train, as in every other command "
                                   "(smollm2-135m-instruct, a local folder, openai:MODEL); answers 'model'."),
    chat_url: str | None = typer.Option(None, "--chat-url",
                                 help="Base URL of an OpenAI-compatible chat server (OpenAI, Ollama, vLLM, "
                                      "llama.cpp) to understand free-text answers and explain decisions; optional."),
    chat_model: str | None = typer.Option(None, "--chat-model", "--model-name",
                                   help="The chat model's name on that server."),
    why: bool = typer.Option(False, "--why", help="After the card, print the plan and every cited rule."),
) -> None:
    """Should you fine-tune? Walk the decision tree: prompts first, then data, method and hyperparameters.

    Every recommendation cites its rule ids and the evidence. Scripted use: --answers FILE --json prints
    {"session_id", "recommendation": {"path", "method", "hyperparameters", "memory_estimate_gb", "roi", "reasons"}}.
    """
    if graph:
        from agent.graph import mermaid

        if json_out:
            print_json({"mermaid": mermaid()})
        else:
            typer.echo(mermaid())
        return
    if model and model.startswith(("http://", "https://")):
        # --model used to take the chat server's URL; a URL still works that way, with a note
        err.print("[yellow]note:[/] `advise --model URL` is deprecated: use --chat-url URL "
                  "(--model names the model to measure and train, as in the other commands).", highlight=False)
        chat_url, model = chat_url or model, None
    given = {"model": model} if model else {}
    chat = None
    if chat_url or chat_model:
        from agent import llm

        chat = llm.chat_model(chat_url, chat_model)
    if answers is not None:
        from agent.advisor import run_scripted
        from cli.common import progress_bar
        from tools import processes
        from tools.runlog import new_id

        given_answers = {**load_answers(Path(answers)), **given}
        session_id = resume or new_id("adv-")
        doc: dict[str, Any] | None = None
        # Ctrl-C / SIGTERM: the one stop path (tools.processes) stops the pipeline's training child at a
        # checkpoint and its tools at their next progress event; the graph then ends and we report here.
        with processes.StopSignals(raise_in_main=False,
                                   on_hard_exit=lambda: _interrupted(session_id, answers, json_out, doc, wait=False)):
            try:
                with progress_bar(json_out, "advise") as on_progress:
                    doc = run_scripted(given_answers, session_id=session_id, on_progress=on_progress)
            except KeyboardInterrupt:
                if not processes.stop_requested():
                    processes.note_stop(2)  # a KeyboardInterrupt from elsewhere reads as Ctrl-C
            if processes.stop_requested():
                sys.exit(_interrupted(session_id, answers, json_out, doc))
        assert doc is not None
        if json_out:
            print_json(doc)
        else:
            render_recommendation(doc["recommendation"], human(False), full=why)
            human(False).print(f"[dim]session {doc['session_id']}[/]")
        return
    if resume:
        from agent.advisor import Advisor
        from tools.errors import InputError

        if not Advisor(resume).exists():
            raise InputError(f"no advisor session '{resume}'", where="--resume",
                             fix="list sessions with `tunewise runs sql \"SELECT * FROM sessions\"`")
    interactive(session_id=resume, chat_model=chat, json_out=json_out, answers=given or None)


def _interrupted(session_id: str, answers: str, json_out: bool, doc: dict[str, Any] | None, *,
                 wait: bool = True) -> int:
    """A stopped ``advise --answers``: end the children (bounded), say where each training checkpoint is and how
    to resume, print the one ``--json`` document (``status: interrupted``); returns 130 / 143."""
    from agent import jobs
    from cli.common import interrupted_doc, json_printed, print_json
    from tools import processes

    if wait:
        processes.end_children(processes.second_stop_s() if processes.stop_count() > 1 else None)
    runs = jobs.stopped_runs()
    resume = [r["resume"] for r in runs if r.get("resume")]
    resume.append(f"tunewise advise --answers {answers} --resume {session_id}")
    out = interrupted_doc(session_id=session_id, runs=runs, resume=resume,
                          recommendation=(doc or {}).get("recommendation"))
    con = err
    for r in runs:
        where = f"checkpoint kept at {r['checkpoint']}" if r.get("checkpoint") else "no checkpoint was written"
        con.print(f"training run {r['run_id']} stopped at step {r['step']}: {where}", highlight=False,
                  soft_wrap=True)  # paths and commands stay whole, to copy
    con.print(f"[yellow]interrupted[/] ({out['signal']}). Resume with: " + "; ".join(f"`{c}`" for c in resume),
              highlight=False, soft_wrap=True)
    if json_out and not json_printed():
        print_json(out)
    return processes.interrupted_exit_code()


def load_answers(path: Path) -> dict[str, Any]:
    """Read an answers file: a mapping of question id -> value (optionally under an ``answers`` key)."""
    from tools.errors import InputError

    if not path.exists():
        raise InputError(f"{path} does not exist", where=str(path), fix="give the path of a JSON or YAML answers file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse error is the file's problem
        raise InputError(f"cannot parse the answers file: {e}", where=str(path),
                         fix="write a JSON object (or YAML mapping) of question id -> answer") from None
    if isinstance(data, dict) and isinstance(data.get("answers"), dict):
        data = data["answers"]
    if not isinstance(data, dict):
        raise InputError("the answers file must hold a mapping of question id -> answer", where=str(path),
                         fix='e.g. {"task": "classification", "prompt_quality": 0.8}')
    return data


def _show_question(q: Any, console: Any) -> None:
    console.print(f"\n[bold]{q.prompt}[/]", highlight=False)
    if q.choices:
        console.print("  " + "   ".join(f"[cyan]{i}[/]) {c}" for i, c in enumerate(q.choices, 1)), highlight=False)


def _default_text(q: Any) -> str | None:
    if q.default is None or q.default == "":
        return None
    if isinstance(q.default, list):
        return ",".join(q.default)
    if isinstance(q.default, bool):
        return "yes" if q.default else "no"
    return str(q.default)


def _progress_printer(console: Any) -> Any:
    last: dict[str, int] = {}

    def on_progress(ev: Any) -> None:
        # a line when a stage starts, at every tenth of it, and when it ends
        total = ev.total or 0
        tick = max(1, total // 10) if total else 1
        if ev.stage not in last or ev.step - last[ev.stage] >= tick or (total and ev.step >= total):
            last[ev.stage] = ev.step
            info = " ".join(f"{k}={v:.4g}" for k, v in list(ev.metrics.items())[:3]) or ev.message
            console.print(f"[dim]{ev.stage} {ev.step}/{total or '?'} {info}[/]", highlight=False)

    return on_progress


def interactive(session_id: str | None = None, *, chat_model: Any = None, json_out: bool = False,
                answers: dict[str, Any] | None = None) -> None:
    """The interactive advisor in a plain terminal (`tunewise advise` without --answers)."""
    from rich.console import Console
    from rich.prompt import Prompt

    from agent import llm
    from agent.advisor import Advisor
    from tools.errors import InputError

    console = human(json_out) if json_out else Console()
    if chat_model is None:
        chat_model = llm.chat_model_from_env()
    adv = Advisor(session_id, chat_model=chat_model, on_progress=_progress_printer(console))
    step = adv.start(answers)
    shown = False
    console.print(f"[bold]tunewise advisor[/] — session [cyan]{adv.session_id}[/] ({ANSWER_HINT})", highlight=False)
    try:
        while step.kind == "question" and step.question is not None:
            q = step.question
            if q.id == "go_on" and step.recommendation and not q.error:
                render_recommendation(step.recommendation, console)
                shown = True
            if q.error:
                console.print(f"[red]{q.error}[/]", highlight=False)
            _show_question(q, console)
            raw = Prompt.ask(">", default=_default_text(q), console=console, show_default=True)
            cmd = (raw or "").strip().lower()
            if cmd in ("back", "b"):
                step = adv.back()
            elif cmd in ("why", "why?", "?", "help"):
                if q.id == "go_on" and step.recommendation:  # the full list, one key away from the card
                    render_recommendation(step.recommendation, console, full=True)
                else:
                    console.print(adv.why(raw), highlight=False)
            elif cmd.startswith("set ") and len(cmd.split()) == 3:  # replace a value read from the data
                _, qid, value = (raw or "").split(None, 2)
                try:
                    step = adv.change(qid, value)
                except (KeyError, InputError) as e:
                    console.print(f"[red]{e}[/]", highlight=False)
            elif cmd in ("quit", "q", "exit"):
                console.print(f"Saved. Resume with `tunewise advise --resume {adv.session_id}`.")
                return
            else:
                step = adv.answer(raw)
    except (KeyboardInterrupt, EOFError):
        console.print(f"\nSaved. Resume with `tunewise advise --resume {adv.session_id}`.")
        return
    if json_out:
        print_json({"session_id": adv.session_id,
                    "recommendation": step.recommendation.to_dict() if step.recommendation else None})
    elif not shown or (step.recommendation and step.recommendation.pipeline):
        render_recommendation(step.recommendation or {}, console)
    console.print(f"[dim]Session {adv.session_id} is saved in the run log.[/]", highlight=False)




def _num(n: dict[str, Any]) -> str:
    if n.get("text"):  # the card words it (a graded share, or a similarity that is never set against the bar)
        return str(n["text"])
    v, bar = n["value"], n["bar"]
    if isinstance(v, float) and v <= 1 and isinstance(bar, float):
        return f"{n['name']} {v:.0%} vs bar {bar:.0%} ({n['source']})"
    return f"{n['name']} {v:,} (fine-tuning from {bar:,}) ({n['source']})"


def render_card(rec: dict[str, Any], console: Any) -> None:
    """The short card: decision, method, the key numbers against the bar, the deciding rules, what would
    change the decision."""
    card = rec.get("card") or {}
    console.print(f"\n[bold green]{rec.get('summary') or rec.get('path')}[/]", highlight=False)
    if rec.get("next_step"):
        console.print(f"Next: {rec['next_step']}", highlight=False)
    if card.get("numbers"):
        console.print("Numbers: " + "; ".join(_num(n) for n in card["numbers"]), highlight=False)
    if (card.get("deciding_number") or {}).get("text"):
        console.print(f"Deciding number: {card['deciding_number']['text']}", highlight=False)
    if rec.get("method"):
        console.print(f"Method: [bold]{rec['method']}[/]  (estimated training memory {rec.get('memory_estimate_gb')} GB"
                      " on the machine you train on)", highlight=False)
    if card.get("deciding"):
        console.print("Decided by:", highlight=False)
    for r in card.get("deciding") or []:
        console.print(f"  [cyan]{r['rule']}[/] {r['text']}", highlight=False)
    changes = card.get("what_would_change") or []
    if changes:
        console.print("What would change the decision: " + "; ".join(changes), highlight=False)
    derived = rec.get("derived") or {}
    if derived:
        console.print("Read from your data (type `set NAME VALUE` to change one): "
                      + "; ".join(f"{k} = {v['value']} ({v['from']})" for k, v in derived.items()), highlight=False)


def render_recommendation(rec: Recommendation | dict[str, Any], console: Any, *, full: bool = False) -> None:
    """The recommendation for people: the card first; with ``full`` the plan and every reason with its rule id
    (``why`` in the conversation, ``--why`` in scripted use, ``--json`` for everything)."""
    from rich.table import Table

    if not isinstance(rec, dict):
        rec = rec.to_dict()

    render_card(rec, console)
    n = len(rec.get("reasons") or [])
    if not full:
        console.print(f"[dim]{n} rules cited: type 'why' (or pass --why) for the full list, --json for everything.[/]",
                      highlight=False)
        return
    hp = rec.get("hyperparameters") or {}
    if hp:
        t = Table(title="hyperparameters", show_header=False)
        for k, v in hp.items():
            t.add_row(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        console.print(t)
    if rec.get("roi"):
        r = rec["roi"]
        console.print(f"ROI: prompts ${r['prompt_cost']:,.0f} vs fine-tuning ${r['fine_tune_cost']:,.0f}"
                      f" (ratio {r['ratio']}); needs > {r['min_quality_improvement']:.0%} quality gain.")
    console.print("\n[bold]Why[/]")
    for r in rec.get("reasons") or []:
        ev = f"  [dim]{json.dumps(r['evidence'], default=str)}[/]" if r.get("evidence") is not None else ""
        console.print(f"- [cyan]{r['rule']}[/] {r['text']}{ev}", highlight=False)
    if rec.get("pipeline"):
        console.print("\n[bold]Pipeline[/]")
        console.print_json(json.dumps(rec["pipeline"], default=str))
