"""Data: the inspect/clean report (counts per reason, examples, length histogram) and the spot-check flow
(g / b / s, a reason for bad, resumable through the run log, the proposed rule to accept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Static

from tui.messages import Progress, TaskDone, progress_line
from tui.widgets.charts import Histogram
from tui.widgets.field import Field
from tui.widgets.question import PathSuggester


class DataView(Vertical):
    BINDINGS = [Binding("g", "verdict('good')", "Good", show=False),
                Binding("b", "verdict('bad')", "Bad", show=False),
                Binding("s", "verdict('skip')", "Skip", show=False)]
    can_focus = True  # focused during a spot-check, so g / b / s reach it

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spot: Any = None
        self.item: Any = None
        self.proposed: dict[str, Any] | None = None
        self.columns_found: list[str] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Field(compact=True, placeholder="data file (JSONL, CSV, Parquet…)", id="data-path", suggester=PathSuggester())
            yield Button("Inspect", compact=True, id="data-inspect")
            yield Button("Clean", compact=True, id="data-clean", variant="primary")
            yield Button("Split", compact=True, id="data-split")
            yield Button("Spot-check", compact=True, id="data-spot")
        with Horizontal(classes="toolbar -hidden", id="data-columns"):
            # shown when the file's columns cannot be told apart: the user says which is which
            yield Static("", id="data-columns-found")
            yield Field(compact=True, placeholder="input column", id="data-input-col")
            yield Field(compact=True, placeholder="output column", id="data-output-col")
        with Horizontal(id="data-body"):
            with VerticalScroll(id="data-report"):
                yield Static("Pick a file, then Inspect or Clean.", id="data-summary")
                table: DataTable[str] = DataTable(id="data-reasons", cursor_type="row")
                table.add_columns("removed because", "rows")
                yield table
                yield Static("", id="data-examples")
                hist = Histogram(id="data-hist")
                hist.border_title = "output length (chars)"
                yield hist
            with Vertical(id="spot"):
                yield Static("Spot-check: read examples one by one; g good, b bad (give a reason), s skip.",
                             id="spot-item")
                yield Field(compact=True, placeholder="why is it bad? (enter)", id="spot-reason", classes="-hidden")
                yield Static("", id="spot-rule")
                yield Button("Accept rule", compact=True, id="spot-accept", classes="-hidden")

    def _path(self) -> str:
        return self.query_one("#data-path", Input).value.strip()

    def _columns(self) -> tuple[str, str] | None:
        """The input/output columns the user named (after the view asked), or None."""
        i = self.query_one("#data-input-col", Input).value.strip()
        o = self.query_one("#data-output-col", Input).value.strip()
        return (i, o) if i and o else None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid, path = event.button.id, self._path()
        if bid == "data-accept" or bid == "spot-accept":
            self.accept_rule()
            return
        if not path:
            self.query_one("#data-summary", Static).update("[red]Give a data file first.[/red]")
            return
        self.query_one("#data-summary", Static).update(f"{bid.removeprefix('data-') if bid else ''}: working…")
        if bid == "data-inspect":
            self.run_tool("inspect", path)
        elif bid == "data-clean":
            self.run_tool("clean", path)
        elif bid == "data-split":
            self.run_tool("split", path)
        elif bid == "data-spot":
            self.run_tool("spotcheck", path)

    @work(thread=True, exclusive=True, group="data")
    def run_tool(self, kind: str, path: str) -> None:
        app: Any = self.app
        svc = app.services
        p = Path(path)

        def progress(ev: Any) -> None:
            self.post_message(Progress(kind, ev.to_dict() if hasattr(ev, "to_dict") else dict(ev)))

        from tools.data.formats import AmbiguousColumnsError

        cols = self._columns()
        kw: dict[str, Any] = {"columns": cols} if cols else {}
        try:
            if kind == "inspect":
                result = svc.inspect_data(path, **kw)
            elif kind == "clean":
                out = p.with_name(p.stem + ".clean.jsonl")
                result = svc.clean_data(path, str(out), on_progress=progress, **kw)
            elif kind == "split":
                result = svc.split_data(path, str(p.with_name(p.stem + "_split")), on_progress=progress, **kw)
            else:
                spot = svc.spotcheck(path)
                result = {"spot": spot, "item": spot.next()}
        except AmbiguousColumnsError as e:
            self.columns_found = e.columns  # read on the UI thread in on_task_done
            self.post_message(TaskDone(kind, error=svc.describe_error(e)))
            return
        except Exception as e:  # noqa: BLE001
            self.post_message(TaskDone(kind, error=svc.describe_error(e)))
            return
        self.columns_found = None
        self.post_message(TaskDone(kind, result=result.to_dict() if hasattr(result, "to_dict") else result))

    def on_progress(self, message: Progress) -> None:
        message.stop()
        self.feed(message.event, source=message.source)

    def feed(self, ev: dict[str, Any], *, source: str = "advisor") -> None:
        self.query_one("#data-summary", Static).update(progress_line(ev, source=source))

    def on_task_done(self, message: TaskDone) -> None:
        message.stop()
        summary = self.query_one("#data-summary", Static)
        if message.error:
            summary.update(f"[red]✗ {escape(message.error)}[/red]")
            if self.columns_found:
                self.ask_columns(self.columns_found)
            return
        r = message.result
        if message.source == "spotcheck":
            self.spot = r["spot"]
            summary.update("Spot-check started (progress is saved: you can stop and come back).")
            self.show_item(r["item"])
        elif message.source == "split":
            files = r.get("files", {})
            summary.update(f"split: train {r.get('train')}, val {r.get('val')}, test {r.get('test')} "
                           f"(rule {r.get('rule')})\n" + escape("\n".join(f"  {k}: {v}" for k, v in files.items())))
            if files.get("train"):
                self.app.query_one("#train-data", Input).value = str(Path(files["train"]).parent)
        else:
            self.show_report(message.source, r)

    def ask_columns(self, found: list[str]) -> None:
        """Ask which column is the input and which the output (the file's names did not say)."""
        bar = self.query_one("#data-columns")
        bar.remove_class("-hidden")
        self.query_one("#data-columns-found", Static).update(
            "Which column is which? Found: " + escape(", ".join(found)))
        self.query_one("#data-input-col", Input).focus()

    def show_inspect(self, r: dict[str, Any]) -> None:
        chars = (r.get("chars") or {}).get("output") or {}
        head = (f"inspect: {r.get('rows')} rows ({r.get('valid_rows')} valid, {r.get('invalid_rows')} invalid), "
                f"{r.get('format')}, outputs: {r.get('output_kind')}"
                + (f", {r['label_count']} labels" if r.get("label_count") else "")
                + (f", output chars mean {chars.get('mean'):.0f}" if isinstance(chars.get("mean"), (int, float)) else ""))
        if not r.get("rows"):
            head += "\n  [yellow]⚠ the file holds no rows: nothing to measure or train on; check the path and the " \
                    "file's format.[/yellow]"
        profile = r.get("profile")
        if isinstance(profile, dict):
            head += "\n  " + escape(profile_line(profile))
        tokens = r.get("tokens") or {}
        if tokens:
            head += f"\n  tokens ({escape(str(tokens.get('model')))}): {tokens.get('total')} in all, " \
                    f"{tokens.get('over_context', 0)} rows over the context"
        self.query_one("#data-summary", Static).update(head)
        table = self.query_one("#data-reasons", DataTable)
        table.clear()
        problems = r.get("problems") or []
        self.query_one("#data-examples", Static).update(
            "\n".join(f"[red]{escape(_one_line(p.get('where') or p.get('line') or ''))}[/red] "
                      f"{escape(_one_line(p.get('message', p)))}" for p in problems[:8] if isinstance(p, dict)))
        hist = self.query_one("#data-hist", Histogram)
        hist.border_title = "rows per label" if r.get("labels") else "output length (chars)"
        hist.set_bins(r.get("labels") or {})

    def show_report(self, kind: str, r: dict[str, Any]) -> None:
        if kind == "inspect":
            self.show_inspect(r)
            return
        self.query_one("#data-hist", Histogram).border_title = "output length (chars)"
        rows_in = r.get("input_rows", r.get("rows", "?"))
        kept = r.get("kept_rows")
        head = f"{kind}: {rows_in} rows" + (f", {kept} kept" if kept is not None else "")
        if r.get("out"):
            head += f"\n  written to {escape(str(r['out']))}"
        if isinstance(r.get("profile"), dict):
            head += "\n  " + escape(profile_line(r["profile"]))
        if r.get("flagged"):
            flagged = r["flagged"]
            head += f"\n  flagged: {sum(flagged.values()) if isinstance(flagged, dict) else flagged}"
        self.query_one("#data-summary", Static).update(head)
        table = self.query_one("#data-reasons", DataTable)
        table.clear()
        for reason, n in (r.get("removed") or {}).items():
            table.add_row(str(reason), str(n))
        examples = r.get("examples") or {}
        lines = []
        if isinstance(examples, dict):
            for reason, items in list(examples.items())[:6]:
                for item in (items or [])[:2]:
                    lines.append(f"[b]{escape(str(reason))}[/b]: {escape(_one_line(item))}")
        self.query_one("#data-examples", Static).update("\n".join(lines))
        self.query_one("#data-hist", Histogram).set_bins(_flat_hist(r.get("histograms") or {}))

    # -- spot-check ---------------------------------------------------------------------------------------
    def show_item(self, item: Any) -> None:
        self.item = item
        box = self.query_one("#spot-item", Static)
        if item is None:
            box.update("Spot-check finished.")
            try:
                self.proposed = self.spot.propose_rule() if self.spot is not None else None
            except Exception as e:  # noqa: BLE001
                self.proposed = None
                box.update(f"[red]✗ {escape(self.app.services.describe_error(e))}[/red]")  # type: ignore[attr-defined]
            if self.proposed:
                self.query_one("#spot-rule", Static).update(
                    "[b]Proposed cleaning rule[/b]: " + escape(_one_line(self.proposed)))
                self.query_one("#spot-accept", Button).remove_class("-hidden")
            return
        total = f"/{item['total']}" if isinstance(item, dict) and item.get("total") else ""
        flags = f" [yellow]{escape(', '.join(item['flags']))}[/yellow]" if isinstance(item, dict) and item.get("flags") else ""
        box.update(f"[b]#{_idx(item) + 1 if isinstance(_idx(item), int) else _idx(item)}{total}[/b]{flags}\n"
                   f"{escape(_render_item(item))}\n\n[dim]g good · b bad · s skip[/dim]")
        self.focus()

    def action_verdict(self, verdict: str) -> None:
        if self.spot is None or self.item is None:
            return
        if verdict == "bad":
            reason = self.query_one("#spot-reason", Input)
            reason.remove_class("-hidden")
            reason.value = ""
            reason.focus()
            return
        self._record(verdict, None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "data-path":  # Enter in the path field inspects that file (a new path, a new report)
            event.stop()
            self.query_one("#data-inspect", Button).press()
            return
        if event.input.id == "spot-reason":
            event.stop()
            event.input.add_class("-hidden")
            self._record("bad", event.value.strip() or None)

    def _record(self, verdict: str, reason: str | None) -> None:
        try:
            self.spot.verdict(_idx(self.item), verdict, reason=reason)
            self.show_item(self.spot.next())
        except Exception as e:  # noqa: BLE001
            self.query_one("#spot-item", Static).update(
                f"[red]✗ {escape(self.app.services.describe_error(e))}[/red]")  # type: ignore[attr-defined]

    def accept_rule(self) -> None:
        if not self.proposed:
            return
        where = self.app.services.accept_rule(self.proposed, self.spot)  # type: ignore[attr-defined]
        self.query_one("#spot-rule", Static).update(f"Rule applied: the cleaned data is in {escape(where)}.")
        self.query_one("#spot-accept", Button).add_class("-hidden")


def profile_line(p: dict[str, Any]) -> str:
    """The task profile (``TaskProfile.to_dict()``) in one line."""
    from tools.types import TaskProfile

    return TaskProfile.from_dict(p).summary(lengths=False)


def _flat_hist(h: Any) -> Any:
    """``{"output_chars": {"all": {...}, "kept": {...}}, ...}`` -> the kept output lengths ``{bin: n}``."""
    while isinstance(h, dict) and h and all(isinstance(v, dict) for v in h.values()):
        h = next((h[k] for k in ("output_chars", "kept", "all") if k in h), next(iter(h.values())))
    return h or {}


def _idx(item: Any) -> Any:
    if isinstance(item, dict):
        for k in ("position", "idx", "index"):  # the spot-check's sample position is what verdict() takes
            if k in item:
                return item[k]
    return getattr(item, "idx", getattr(item, "index", 0))


def _render_item(item: Any) -> str:
    if isinstance(item, dict):
        ex = item.get("example", item)
        if isinstance(ex, dict) and "messages" in ex:
            return "\n".join(f"{m['role']}: {m['content']}" for m in ex["messages"])
        if hasattr(ex, "messages"):
            return "\n".join(f"{m.role}: {m.content}" for m in ex.messages)
        return "\n".join(f"{k}: {v}" for k, v in item.items() if k not in ("idx", "index", "position", "total"))
    return str(item)


def _one_line(x: Any) -> str:
    s = str(x).replace("\n", " ")
    return s if len(s) < 160 else s[:157] + "…"
