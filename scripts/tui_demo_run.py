"""Drive the real app headless through the built-in demo task, to an evaluated adapter.

Picks "the built-in demo task", accepts each remaining question's default (and answers yes to go on), waits for
the advisor's pipeline (prompt baseline -> decision -> clean -> split -> short LoRA run -> evaluation), then
prints the recommendation, the pipeline's results and a text picture of each view. Exit 0 when the pipeline
evaluated a trained run. Slow on CPU (minutes): this is a manual check, not a test.

    python scripts/tui_demo_run.py [--max-steps N] [--timeout 1800] [--svg-dir DIR] [--skip-baseline]
                                   [--results benchmarks/results/tui_demo.json]

Per-phase wall times come from the run log's tool calls (one row per tool the advisor called); --results writes
them with the machine and the command.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def screen_text(app: Any) -> str:
    from rich.console import Console

    w, h = app.size
    c = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, record=True, color_system=None)
    c.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return c.export_text()


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-steps", type=int, default=None, help="default: the demo's own step count")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--svg-dir", default=None)
    ap.add_argument("--results", default=None, help="write the per-phase timings and the machine to this JSON file")
    ap.add_argument("--note", default="", help="a note for the results file (e.g. what else the machine was doing)")
    ap.add_argument("--skip-baseline", action="store_true",
                    help="report prompt scores instead of measuring them (a quicker check of the rest of the flow)")
    args = ap.parse_args()

    from textual.widgets import RadioSet

    from tui import services
    from tui.app import TunewiseApp
    from tui.screens.advisor import AdvisorView
    from tui.widgets.question import QuestionInput

    class DemoServices:
        def __getattr__(self, name: str) -> Any:
            return getattr(services, name)

        def demo_answers(self) -> dict[str, Any]:
            answers = {**services.demo_answers(), "go_on": True}
            if args.max_steps:
                answers["max_steps"] = args.max_steps
            if args.skip_baseline:
                answers.update(test_set="", prompt_quality=0.6, optimized_prompt_quality=0.7)
            return answers

    app = TunewiseApp(services=DemoServices(), chat=False)
    t0 = time.monotonic()
    wall_start = datetime.now(UTC)
    load_start = os.getloadavg()
    async with app.run_test(size=(110, 34)) as pilot:
        # the cursor starts on the default ("my own task") once the options are laid out: let that happen (and
        # the start question be the one shown), then one down to the demo; Enter on the highlighted option answers
        for _ in range(100):
            await pilot.pause(0.1)
            found = app.query("#question")
            if found and found.first(QuestionInput).question.id == "_start" and found.first().query(RadioSet):
                break
        await pilot.pause(1.5)  # the start question is asked again once the earlier sessions are listed
        for _ in range(50):
            radios = app.query("#question RadioSet")
            if radios:
                break
            await pilot.pause(0.1)
        radios.first().focus()
        await pilot.pause(0.3)
        await pilot.press("down", "enter")
        await pilot.pause(0.5)
        if not any("Demo task" in str(n.render()) for n in app.query(".note")):
            print("the demo was not chosen: the start question took another option", flush=True)
            return 1
        view = app.query_one(AdvisorView)
        asked: list[str] = []
        while time.monotonic() - t0 < args.timeout:
            await pilot.pause(0.5)
            if view.step is not None and view.step.kind == "done":
                break
            found = app.query("#question")
            if not found or view.busy:
                continue
            qi = found.first(QuestionInput)
            if qi.question.id == "_start" or qi.disabled:
                continue
            asked.append(qi.question.id)
            if qi.question.error:
                print(f"the advisor re-asked {qi.question.id}: {qi.question.error}", flush=True)
                if asked.count(qi.question.id) > 2:
                    return 1
            # the demo pre-fills go_on; every other question takes its default (a user pressing Enter), so
            # optional extras such as the learning curve stay off
            value = True if qi.question.id == "go_on" else qi.question.default
            if qi.question.id == "data":
                value = str(services.demo_dataset())
            print(f"[{time.monotonic() - t0:6.1f}s] {qi.question.id} -> {value!r}", flush=True)
            qi.post_message(QuestionInput.Answered(qi.question.id, value))
            view.busy = True
        typed = view.step.recommendation if view.step else None  # agent.api.Recommendation (typed)
        rec = typed.to_dict() if typed is not None and hasattr(typed, "to_dict") else dict(typed or {})
        pipe = rec.get("pipeline") or {}
        total_s = round(time.monotonic() - t0, 1)
        phases = phase_times(view.step.session_id if view.step else None)
        for ph in phases:
            print(f"phase {ph['phase']:<14} {ph['seconds']:7.1f} s  {ph['status']}", flush=True)
        print(f"phase {'total':<14} {total_s:7.1f} s", flush=True)
        print(json.dumps({"seconds": round(time.monotonic() - t0, 1), "asked": asked, "path": rec.get("path"),
                          "pipeline_keys": sorted(pipe), "error": pipe.get("error"),
                          "train": {k: (pipe.get("train") or {}).get(k) for k in ("run_id", "status", "best_val_loss")},
                          "evaluate": {k: (pipe.get("evaluate") or {}).get(k) for k in ("quality", "ci95", "n")}},
                         default=str, indent=2))
        for key in ("f1", "f2", "f4", "f6"):
            await pilot.press(key)
            await pilot.pause(0.5)
            print(screen_text(app))
            if args.svg_dir:
                Path(args.svg_dir).mkdir(parents=True, exist_ok=True)
                (Path(args.svg_dir) / f"demo-{key}.svg").write_text(app.export_screenshot(title="tunewise demo"))
    ok = bool((pipe.get("train") or {}).get("run_id")) and bool(pipe.get("evaluate"))
    if args.results:
        write_results(Path(args.results), ok=ok, total_s=total_s, phases=phases, rec=rec, started=wall_start,
                      note=args.note, load=(load_start, os.getloadavg()))
    return 0 if ok else 1


def phase_times(session_id: str | None) -> list[dict[str, Any]]:
    """Each tool the advisor called in this session, in order, with its wall time (from the run log)."""
    from tools.runlog import RunLog

    rows = RunLog().query("SELECT name, status, started_at, duration_s FROM tool_calls WHERE session_id = ? "
                          "ORDER BY started_at", [session_id])
    return [{"phase": r["name"], "status": r["status"], "seconds": round(float(r["duration_s"] or 0), 1),
             "started_at": str(r["started_at"])} for r in rows]


def gain_over_best_prompt(ev: dict[str, Any] | None) -> dict[str, Any] | None:
    """The tuned model minus the best prompt on the same test rows, with the paired bootstrap CI (evaluate_test's
    ``vs.prompt_baseline``): the demo's question is whether this CI excludes 0."""
    pb = ((ev or {}).get("vs") or {}).get("prompt_baseline")
    if not pb:
        return None
    lo, hi = pb.get("diff_ci95") or (None, None)
    return {"tuned": (ev or {}).get("quality"), "best_prompt": pb.get("quality"), "best_prompt_variant": pb.get("variant"),
            "diff": pb.get("diff"), "diff_ci95": [lo, hi], "n": pb.get("n"),
            "ci_excludes_0": lo is not None and hi is not None and (lo > 0 or hi < 0)}


def cpu_description() -> dict[str, Any]:
    """The CPU's model name and the instruction-set flags that decide training speed (bf16, AVX-512, AMX)."""
    from tools.device import cpu_flags

    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    flags = cpu_flags()
    keep = sorted(f for f in flags if f in {"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                            "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8",
                                            "amx_tile", "avx_vnni"})
    return {"cpu_model": name, "cpu_flags": keep, "cpu_bf16": bool(flags & {"avx512_bf16", "amx_bf16"})}


def write_results(path: Path, *, ok: bool, total_s: float, phases: list[dict[str, Any]], rec: dict[str, Any],
                  started: datetime, note: str, load: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    import torch

    pipe = rec.get("pipeline") or {}
    tools_s = sum(p["seconds"] for p in phases)
    pick = lambda d, *ks: {k: (d or {}).get(k) for k in ks}  # noqa: E731
    doc = {
        "benchmark": "tui_demo",
        "what": "the built-in demo task driven through the real TUI headless (scripts/tui_demo_run.py): questions "
                "answered with the demo's pre-fills and defaults, prompt baseline -> decision -> clean -> split -> "
                "short LoRA run -> evaluation (test subset, side by side, A/B, forgetting) -> diagnosis",
        "ok": ok,
        "started_at": started.isoformat(timespec="seconds"),
        "total_seconds": total_s,
        "phases": phases,
        "tools_seconds": round(tools_s, 1),
        "other_seconds": round(total_s - tools_s, 1),  # the app, the advisor's graph, model loading between tools
        "short_run": rec.get("short_run"),
        "train": pick(pipe.get("train"), "run_id", "status", "steps", "train_seconds", "best_val_loss"),
        "evaluate": pick(pipe.get("evaluate"), "quality", "ci95", "n", "test_rows", "metric"),
        "gain_over_best_prompt": gain_over_best_prompt(pipe.get("evaluate")),
        # the same rows in choice mode (each label scored by log-likelihood), reported beside generation
        "choice_mode": (pipe.get("paired") or {}).get("choice"),
        "outcome": (rec.get("outcome") or {}).get("summary") if isinstance(rec.get("outcome"), dict) else None,
        "under_5_minutes": total_s < 300,
        "compare": pick(pipe.get("compare"), "n", "sampled_from"),
        "ab": pick(pipe.get("ab"), "n", "reused", "diff", "diff_ci95"),
        "forgetting": pick(pipe.get("forgetting"), "probes", "probes_total", "verdict", "base_score", "tuned_score"),
        "errors": pipe.get("errors") or pipe.get("error"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "gpu": "none (CPU only)" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
                    **cpu_description()},
        "command": " ".join(["python", *sys.argv]),
        "env": {k: os.environ[k] for k in ("TUNEWISE_HOME", "TUNEWISE_CACHE", "HF_HUB_OFFLINE") if k in os.environ},
        "load_average_1_5_15min": {"start": [round(x, 2) for x in load[0]], "end": [round(x, 2) for x in load[1]]},
        "note": note,
    }
    if path.exists():  # keep the earlier measurements beside the new one
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        earlier = old.pop("earlier", [])
        doc["earlier"] = [old, *earlier] if old else earlier
    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import save_result  # the one result writer: adds the commit, CPU flags and load

    save_result(doc, path, echo=False)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
