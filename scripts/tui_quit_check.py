"""ctrl+q during the advisor's pipeline training, in the real app in tmux (issue 15, "Done when").

Starts the real app (real advisor, real tools, the real training child process) in a tmux pane with a fresh
TUNEWISE_HOME, chooses the built-in demo with the prompt scores stated instead of measured (so the pipeline
reaches training in seconds, not minutes), waits until training steps show on screen, presses ctrl+q, chooses
"stop it", and measures how long the process takes to be back at the shell. Then it waits for the trainer to
finish its checkpoint and checks the run log: status ``interrupted`` and a checkpoint ``--resume`` can use.

    python scripts/tui_quit_check.py [--out result.json] [--key C-q|C-c]

Prints one JSON document; exit 0 when every check holds. ``--app`` is the pane's side (not for people).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def fast_demo_answers(demo_answers: Any) -> dict[str, Any]:
    """The demo's answers with the prompt scores stated (no prompt baseline) and the pipeline accepted."""
    answers = dict(demo_answers())
    answers["test_set"] = ""  # no test set: the prompt scores below are stated, not measured
    answers.update({"prompt_quality": 0.4, "optimized_prompt_quality": 0.5, "latency_budget_ms": "",
                    "prompt_dev_hours": "", "go_on": True, "max_steps": 300})
    return answers


def app_side() -> None:
    """The pane: the real app, only the demo's pre-filled answers differ."""
    from tui import app, services

    demo_answers = services.demo_answers
    services.demo_answers = lambda: fast_demo_answers(demo_answers)  # type: ignore[assignment]
    app.run()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--key", default="C-q")
    ap.add_argument("--keep", action="store_true", help="keep the temporary TUNEWISE_HOME")
    args = ap.parse_args()
    if args.app:
        app_side()
        return 0
    if shutil.which("tmux") is None:
        print(json.dumps({"skipped": "tmux is not installed"}))
        return 2
    home = Path(tempfile.mkdtemp(prefix="tunewise-quit-"))
    session = f"tunewise-quit-{os.getpid()}"
    exit_file = home / "exit.txt"
    env = {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "HF_HUB_OFFLINE": "1", "TUNEWISE_HOME": str(home),
           "TUNEWISE_CACHE": os.environ.get("TUNEWISE_CACHE", str(Path.home() / ".cache" / "tunewise"))}
    envs = " ".join(f"{k}='{v}'" for k, v in env.items())
    cmd = (f"cd '{REPO}' && env {envs} '{sys.executable}' scripts/tui_quit_check.py --app; "
           f"echo $? > '{exit_file}'; sleep 600")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd], check=True)
    result: dict[str, Any] = {"home": str(home), "key": args.key}

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                              text=True).stdout

    def wait_for(pred: Any, seconds: float, what: str) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if exit_file.exists():
                raise RuntimeError(f"the app ended early; last screen:\n{screen()}")
            s = screen()
            if pred(s):
                return s
            time.sleep(0.1)
        raise TimeoutError(f"{what} not seen after {seconds:.0f} s; last screen:\n{screen()}")

    try:
        wait_for(lambda s: "How would you like to begin" in s, 90, "the first question")
        subprocess.run(["tmux", "send-keys", "-t", session, "Down", "Enter"], check=True)  # the demo
        t_demo = time.monotonic()

        def training(s: str) -> bool:
            for line in s.splitlines():
                parts = line.split()
                if "train" in parts:
                    i = parts.index("train")
                    if i + 1 < len(parts) and parts[i + 1].split("/")[0].isdigit() and \
                            int(parts[i + 1].split("/")[0]) >= 3:
                        return True
            return False

        # questions the pre-fills leave open (the test set, ...): accept each default with Enter
        deadline, presses, last = time.monotonic() + 600, 0, ""
        while True:
            if exit_file.exists():
                raise RuntimeError(f"the app ended early; last screen:\n{screen()}")
            s = screen()
            if training(s):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"training step 3 not seen; last screen:\n{s}")
            if "default:" in s and s == last and presses < 30:
                subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
                presses += 1
                result.setdefault("questions_answered_by_default", []).append(
                    next((ln.strip() for ln in s.splitlines()[-12:] if "?" in ln), ""))
                time.sleep(1.0)
            last = s
            time.sleep(1.0)
        result["seconds_to_training"] = round(time.monotonic() - t_demo, 1)
        subprocess.run(["tmux", "send-keys", "-t", session, args.key], check=True)
        dialog = wait_for(lambda s: "Work is still running" in s, 10, "the quit dialog")
        result["dialog"] = [line.strip() for line in dialog.splitlines() if "•" in line]
        t0 = time.monotonic()
        subprocess.run(["tmux", "send-keys", "-t", session, "s"], check=True)
        while not exit_file.exists() and time.monotonic() - t0 < 30:
            time.sleep(0.02)
        result["seconds_to_shell"] = round(time.monotonic() - t0, 2)
        result["exit_code"] = exit_file.read_text().strip() if exit_file.exists() else None
        time.sleep(0.3)
        result["shell_screen"] = [line for line in screen().splitlines() if line.strip()][-4:]
        # the trainer finishes its step, writes the checkpoint, marks the run interrupted (in its own process)
        probe = (
            "import json, time, sys\n"
            "from tools.runlog import RunLog\n"
            "from tools import paths\n"
            "from tools.train.checkpoints import newest_complete\n"
            "deadline = time.monotonic() + 180\n"
            "while True:\n"
            "    runs = RunLog().query(\"SELECT run_id, status, steps, error FROM runs WHERE kind = 'train'\")\n"
            "    if runs and runs[0]['status'] != 'running' or time.monotonic() > deadline: break\n"
            "    time.sleep(0.5)\n"
            "r = runs[0] if runs else {}\n"
            "ck = newest_complete(paths.run_dir(r['run_id']) / 'checkpoints') if r else None\n"
            "print(json.dumps({**r, 'checkpoint': str(ck) if ck else None}, default=str))\n")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, **env}, timeout=240)
        run = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {"error": out.stderr[-800:]}
        result["run"] = run
        result["ok"] = bool(result["seconds_to_shell"] < 2.0 and run.get("status") == "interrupted"
                            and run.get("checkpoint"))
    except Exception as e:  # noqa: BLE001 - report what was seen
        result["ok"] = False
        result["error"] = str(e)[-3000:]
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    if args.out:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from eval_metrics_speed import save_result  # the one result writer

        save_result(result, args.out, echo=False)
    print(json.dumps(result, indent=2, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
