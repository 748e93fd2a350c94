"""The newcomer path of issue 26, in the real app in tmux: the user's own files, quit during training, reopen,
resume.

Writes a ``text,intent`` training CSV and a small test CSV of the user's own (from banking77's labelled rows,
``--labels`` intents, ``--test-rows`` test rows: small settings for a shared CPU), starts the real app (real
advisor, real tools, the real trainer) in a tmux pane with a fresh TUNEWISE_HOME and answers as a newcomer
would: "my own task", the data file and the test file typed at the first two questions, Enter on what was read
from the data, ``none`` for the GPU, yes to the check run. It checks that

- the prompt baseline measured on the user's test file (the run log's tool call names it),
- ctrl+q during training opens the quit dialog naming the run id (not "None", not "starting"),
- after "stop it", the run is ``interrupted`` with a checkpoint,
- reopened, the Advisor offers the earlier session, the Training view (F4) shows the run with Resume enabled,
  and Resume (ctrl+r) continues training past the checkpoint's step.

    python scripts/tui_newcomer_check.py [--out result.json] [--labels 30] [--test-rows 12] [--keep]

Prints one JSON document; exit 0 when every check holds. ``--app`` is the pane's side (not for people).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BANKING = REPO.parent / "shared" / "data" / "banking77" / "test.csv"


def write_user_files(folder: Path, *, labels: int, test_rows: int) -> tuple[Path, Path]:
    """The user's own files: ``text,intent`` rows of the first ``labels`` intents; ``test_rows`` held out."""
    with BANKING.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keep = sorted({r["category"] for r in rows})[:labels]
    chosen = [r for r in rows if r["category"] in keep]
    test_every = max(1, len(chosen) // test_rows)
    test = [r for i, r in enumerate(chosen) if i % test_every == 0][:test_rows]
    train = [r for r in chosen if r not in test]
    paths = (folder / "my_intents.csv", folder / "my_test.csv")
    for path, part in zip(paths, (train, test), strict=True):
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "intent"])
            w.writerows([r["text"], r["category"]] for r in part)
    return paths


class Pane:
    """One tmux session running the app; ``exit_file`` gets the app's exit code."""

    def __init__(self, name: str, cmd: str, exit_file: Path) -> None:
        self.name, self.exit_file = name, exit_file
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "110", "-y", "34", cmd], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *(["-l"] if literal else []), *keys], check=True)

    def wait_for(self, pred: Any, seconds: float, what: str) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.exit_file.exists():
                raise RuntimeError(f"the app ended early; last screen:\n{self.screen()}")
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.2)
        raise TimeoutError(f"{what} not seen after {seconds:.0f} s; last screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def train_step(screen: str) -> int:
    """The highest training step on screen ("train 12/300" in the advisor's status, "step 12/300" in the view)."""
    found = [int(m.group(2)) for m in re.finditer(r"\b(train|step) (\d+)/\d+", screen)]
    return max(found, default=0)


# question prompt (a piece of it) -> keys; anything else with a default on screen: Enter
ANSWERS: list[tuple[str, list[str]]] = [
    ("Latency budget per request", ["C-u", "500", "Enter"]),
    ("GPU memory of the machine", ["C-u", "none", "Enter"]),
    ("Clean the data, split it", ["Up", "Enter"]),  # the cursor starts on the default "no"
    ("Optimizer steps for the short run", ["C-u", "300", "Enter"]),
]


def probe(env: dict[str, str], code: str) -> Any:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **env}, timeout=240)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": out.stderr[-800:]}


RUN_PROBE = """
import json, time
from tools.runlog import RunLog
from tools import paths
from tools.train.checkpoints import newest_complete
deadline = time.monotonic() + 180
while True:
    runs = RunLog().query("SELECT run_id, status, steps FROM runs WHERE kind = 'train' ORDER BY started_at DESC")
    if runs and runs[0]['status'] != 'running' or time.monotonic() > deadline: break
    time.sleep(0.5)
r = runs[0] if runs else {}
ck = newest_complete(paths.run_dir(r['run_id']) / 'checkpoints') if r else None
calls = RunLog().query("SELECT arguments FROM tool_calls WHERE name = 'prompt_eval'")
print(json.dumps({**r, 'checkpoint': str(ck) if ck else None,
                  'prompt_eval_args': [c['arguments'] for c in calls]}, default=str))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--labels", type=int, default=30)  # 30 intents: about 1,200 rows, the fine-tune band
    ap.add_argument("--test-rows", type=int, default=12)
    ap.add_argument("--keep", action="store_true", help="keep the temporary TUNEWISE_HOME")
    args = ap.parse_args()
    if args.app:
        from tui import app

        app.run()
        return 0
    if shutil.which("tmux") is None:
        print(json.dumps({"skipped": "tmux is not installed"}))
        return 2
    home = Path(tempfile.mkdtemp(prefix="tunewise-newcomer-"))
    data, test = write_user_files(home, labels=args.labels, test_rows=args.test_rows)
    env = {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "HF_HUB_OFFLINE": "1", "TUNEWISE_HOME": str(home),
           "TUNEWISE_CACHE": os.environ.get("TUNEWISE_CACHE", str(Path.home() / ".cache" / "tunewise"))}
    envs = " ".join(f"{k}='{v}'" for k, v in env.items())
    result: dict[str, Any] = {"home": str(home), "data": str(data), "test": str(test), "labels": args.labels,
                              "test_rows": args.test_rows, "machine": "shared CPU (2 cores, other work running)"}

    def start(tag: str) -> Pane:
        exit_file = home / f"exit-{tag}.txt"
        cmd = (f"cd '{REPO}' && env {envs} '{sys.executable}' scripts/tui_newcomer_check.py --app; "
               f"echo $? > '{exit_file}'; sleep 600")
        return Pane(f"tunewise-newcomer-{tag}-{os.getpid()}", cmd, exit_file)

    def quit_stopping(pane: Pane, key: str) -> list[str]:
        pane.keys("C-q")
        dialog = pane.wait_for(lambda s: "Work is still running" in s, 15, "the quit dialog")
        lines = [line.strip() for line in dialog.splitlines() if "•" in line]
        result[key] = lines
        t0 = time.monotonic()
        pane.keys("s")
        while not pane.exit_file.exists() and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        result[f"{key}_seconds_to_shell"] = round(time.monotonic() - t0, 2)
        time.sleep(0.5)
        result[f"{key}_shell"] = [line for line in pane.screen().splitlines() if line.strip()][-3:]
        return lines

    first = start("first")
    second: Pane | None = None
    checks: dict[str, bool] = {}
    try:
        t0 = time.monotonic()
        first.wait_for(lambda s: "How would you like to begin" in s, 120, "the first question")
        first.keys("Enter")  # my own task
        first.wait_for(lambda s: "Your data file" in s, 120, "the data question")
        first.keys(str(data), literal=True)
        first.keys("Enter")
        first.wait_for(lambda s: "labelled test set" in s, 120, "the test-set question")
        first.keys(str(test), literal=True)
        first.keys("Enter")
        # the rest: the table above, Enter on a default; until training shows step 3
        answered: list[str] = []
        last, deadline = "", time.monotonic() + 1500
        while train_step(first.screen()) < 3:
            if first.exit_file.exists():
                raise RuntimeError(f"the app ended early; last screen:\n{first.screen()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"training step 3 not seen; last screen:\n{first.screen()}")
            s = first.screen()
            # "Stop (ctrl+x)" shows while the advisor works: its question is not open for an answer then
            if s == last and "Answer" in s and "Stop (ctrl+x)" not in s and len(answered) < 60:
                # an optional question without a default takes Enter (empty) too
                keys = next((k for text, k in ANSWERS if text in s), ["Enter"])
                if keys:
                    prompt = next((ln.strip() for ln in s.splitlines() if "?" in ln and "Help" not in ln), "")
                    answered.append(f"{prompt[:70]} <- {' '.join(keys)}")
                    for k in keys:
                        first.keys(k, literal=k not in ("Enter", "Up", "C-u"))
                    time.sleep(1.5)
            last = s
            time.sleep(1.0)
        result["answered"] = answered
        result["seconds_to_training"] = round(time.monotonic() - t0, 1)
        dialog = quit_stopping(first, "quit_dialog")
        run = probe(env, RUN_PROBE)
        result["run"] = run
        run_id = str(run.get("run_id"))
        checks["baseline_on_user_test"] = any(str(test) in str(a) for a in run.get("prompt_eval_args") or [])
        checks["dialog_names_run_id"] = any(run_id in line for line in dialog) and not any(
            "None" in line or "(starting)" in line for line in dialog)
        checks["interrupted_with_checkpoint"] = run.get("status") == "interrupted" and bool(run.get("checkpoint"))
        ck_step = int(str(run.get("checkpoint") or "-0").rsplit("-", 1)[-1] or 0)

        second = start("second")
        s = second.wait_for(lambda s: "How would you like to begin" in s, 120, "the first question after reopening")
        second.wait_for(lambda s: "resume adv-" in s or "show the result of adv-" in s, 60, "the earlier session")
        checks["earlier_session_offered"] = True
        second.keys("F4")
        s = second.wait_for(lambda s: run_id in s and "Resume" in s and "interrupted" in s, 60,
                            "the interrupted run in the Training view")
        result["training_view_after_reopen"] = [ln.strip() for ln in s.splitlines() if run_id in ln]
        second.keys("C-r")
        s = second.wait_for(lambda s: train_step(s) > ck_step, 600, f"training past step {ck_step}")
        result["resumed_to_step"] = train_step(s)
        checks["resume_continues"] = True
        quit_stopping(second, "second_quit_dialog")
    except Exception as e:  # noqa: BLE001 - report what was seen
        result["error"] = str(e)[-3000:]
    finally:
        first.close()
        if second is not None:
            second.close()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    result["checks"] = checks
    result["ok"] = "error" not in result and len(checks) == 5 and all(checks.values())
    doc = json.dumps(result, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(doc + "\n")
    print(doc)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
