"""Fault injection: kill the real CLI at seeded random moments inside each long stage and count what survives.

Stages (small real data: banking77 rows, an mbpp-style code slice for prompt-eval, the tiny random Llama the
tests use): ``clean``, ``prompt-eval``, ``train`` (checkpoints every 2 steps, so kills land inside saves too),
``eval test`` and the ``advise --answers`` pipeline. Each kill is SIGINT, SIGTERM or SIGKILL (round robin), sent
at a seeded random moment after the stage's first progress line, within the uninterrupted run's duration.

After each kill, checked (issue 23 item 4):
- ``orphans``: a process the killed command started (or that names it as its tunewise parent) still alive 10 s
  after the command ended;
- ``running``: a run the run log still reads as ``running`` once every process is gone;
- ``inputs_changed``: the user's input files' sha256 changed;
- ``partial_outputs``: an output file that exists but is not the uninterrupted run's (or a temp file left);
- ``lost`` (training): a resume from the kept checkpoint that fails or does not reach the uninterrupted run's
  final loss within 1e-4; a kill before the first checkpoint is counted as ``restart`` (nothing to resume).
``survived`` counts kills with every check passed.

    PYTHONPATH=. python benchmarks/fault_injection.py --kills clean=4,prompt-eval=4,train=8,eval=4,advise=2
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
PY = sys.executable
ORPHAN_WAIT_S = 10.0


@dataclass
class StageCount:
    kills: int = 0
    missed: int = 0  # the command had finished before its kill came
    survived: int = 0
    orphans: int = 0
    running: int = 0
    inputs_changed: int = 0
    partial_outputs: int = 0
    lost: int = 0
    restart: int = 0
    resumed: int = 0
    inside_save: int = 0
    temp_files_left: int = 0
    by_signal: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    stop_seconds_max: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Stage:
    name: str
    cmd: list[str]
    inputs: list[Path]
    outputs: list[Path] = field(default_factory=list)
    home: Path | None = None
    events_on_stdout: bool = False  # train: wait for the first training step on stdout
    baseline_s: float = 0.0
    baseline_first_s: float = 0.0
    baseline_outputs: dict[str, str] = field(default_factory=dict)


def sha(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(path).as_posix().encode())
                h.update(p.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "TUNEWISE_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}


def family_of(pid: int) -> list[Any]:
    import psutil

    found: dict[int, Any] = {}
    try:
        for c in psutil.Process(pid).children(recursive=True):
            found[c.pid] = c
    except psutil.NoSuchProcess:
        pass
    for p in psutil.process_iter(["pid", "environ"]):
        try:
            if str((p.info.get("environ") or {}).get("TUNEWISE_PARENT", "")).startswith(f"{pid}:"):
                found[p.pid] = p
        except (psutil.Error, TypeError):
            continue
    return list(found.values())


def still_alive(procs: list[Any], timeout: float) -> list[Any]:
    import psutil

    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def start(stage: Stage, log: Path) -> tuple[subprocess.Popen[str], Any]:
    err = log.open("w")
    p = subprocess.Popen(stage.cmd, cwd=REPO, env=env_for(stage.home or Path()), stdout=subprocess.PIPE,
                         stderr=err, text=True, start_new_session=True)
    return p, err


def wait_first_progress(p: subprocess.Popen[str], stage: Stage, log: Path, limit: float) -> float | None:
    """Seconds until the stage's first progress (a training step on stdout, else a progress line on stderr)."""
    t0 = time.monotonic()
    if stage.events_on_stdout:
        assert p.stdout is not None
        for line in p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("stage") == "train" and ev.get("metrics"):
                return time.monotonic() - t0
        return None
    while time.monotonic() - t0 < limit:
        if p.poll() is not None:
            return None
        text = log.read_text(errors="replace") if log.exists() else ""
        if "s] " in text:  # tunewise's plain progress lines: "[   1.2s] clean: read 100/1000"
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def wait_for_step(p: subprocess.Popen[str], step: int) -> None:
    """Read training events until ``step`` has ended (its checkpoint save starts right after)."""
    assert p.stdout is not None
    for line in p.stdout:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("stage") == "train" and ev.get("metrics") and int(ev.get("step") or 0) >= step:
            return


def baseline(stage: Stage, work: Path) -> None:
    """The uninterrupted run: its duration, when its first progress line came, and its outputs."""
    log = work / f"{stage.name}-baseline.stderr"
    t0 = time.monotonic()
    p, err = start(stage, log)
    first = wait_first_progress(p, stage, log, 900)
    out, _ = p.communicate(timeout=1800)
    err.close()
    stage.baseline_s = time.monotonic() - t0
    stage.baseline_first_s = first or 0.0
    if p.returncode != 0:
        raise SystemExit(f"{stage.name} baseline failed ({p.returncode}): {log.read_text()[-2000:]}")
    stage.baseline_outputs = {str(o): sha(o) for o in stage.outputs}
    stage.extra_stdout = out  # type: ignore[attr-defined]


def runs_left_running(home: Path) -> int:
    os.environ["TUNEWISE_HOME"] = str(home)
    from tools.runlog import RunLog

    if not (home / "runlog.duckdb").exists() and not any(home.glob("*.duckdb")):
        return 0
    rows = RunLog().query("SELECT * FROM runs")
    return sum(1 for r in rows if RunLog.live_status(r) == "running")


def temp_leftovers(folder: Path) -> list[Path]:
    """tools.fileio's temp files (``.NAME.XXXX.tmp``): a SIGKILL between write and rename leaves one."""
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp")] if folder.is_dir() else []


def kill_once(stage: Stage, sig: int, rng: random.Random, work: Path, count: StageCount, i: int) -> dict[str, Any]:
    for o in stage.outputs:  # each kill starts from no output, as a first run would
        if o.is_dir():
            shutil.rmtree(o, ignore_errors=True)
        else:
            o.unlink(missing_ok=True)
    if stage.name == "train":
        forget_run(stage)
    before = {str(p): sha(p) for p in stage.inputs}
    log = work / f"{stage.name}-{i}.stderr"
    p, err = start(stage, log)
    first = wait_first_progress(p, stage, log, 900)
    span = max(0.2, stage.baseline_s - stage.baseline_first_s)
    delay = rng.uniform(0.0, span)
    if stage.name == "train" and i % 2 == 1:  # aim inside a checkpoint save: just after a save step ends
        save_step = 2 * rng.randint(1, TRAIN_STEPS // 2 - 1)
        wait_for_step(p, save_step)
        delay = rng.uniform(0.0, 0.4)
    time.sleep(delay)
    family = family_of(p.pid)
    t_kill = time.monotonic()
    with_signal = signal.Signals(sig).name
    hit = p.poll() is None  # False: the command had already finished (the kill came too late)
    with contextlib.suppress(ProcessLookupError):
        os.kill(p.pid, sig)
    try:
        p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        count.notes.append(f"{stage.name} #{i}: still running 120 s after {with_signal}; killed")
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
    err.close()
    stop_s = time.monotonic() - t_kill
    family = {x.pid: x for x in family + family_of(p.pid)}.values()  # type: ignore[assignment]
    left = still_alive(list(family), ORPHAN_WAIT_S)
    for x in left:  # clean up, counted
        x.kill()
    running = runs_left_running(stage.home or Path())
    changed = sum(1 for k, v in before.items() if sha(Path(k)) != v)
    partial = temp_left = 0
    for o in stage.outputs:
        if o.exists() and sha(o) != stage.baseline_outputs.get(str(o)):
            partial += 1
        temp_left += len(temp_leftovers(o.parent))
    row = {"stage": stage.name, "signal": with_signal, "hit": hit, "delay_s": round(delay, 2),
           "first_progress_s": None if first is None else round(first, 2), "exit_code": p.returncode,
           "stop_s": round(stop_s, 2), "orphans": len(left), "running": running, "inputs_changed": changed,
           "partial_outputs": partial, "temp_files_left": temp_left}
    count.kills += 1
    count.missed += int(not hit)
    count.by_signal[with_signal] = count.by_signal.get(with_signal, 0) + 1
    count.exit_codes[str(p.returncode)] = count.exit_codes.get(str(p.returncode), 0) + 1
    count.orphans += len(left)
    count.running += running
    count.inputs_changed += changed
    count.partial_outputs += partial
    count.temp_files_left += temp_left
    count.stop_seconds_max = max(count.stop_seconds_max, round(stop_s, 2))
    ok = not (left or running or changed or partial)
    if stage.name == "train":
        ok = train_after_kill(stage, row, count) and ok
    count.survived += int(ok)
    row["survived"] = ok
    return row


# ------------------------------------------------------------------------------------------------ training
TRAIN_STEPS = 12


def final_loss(stdout: str) -> float | None:
    loss = None
    for line in stdout.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("stage") == "train" and ev.get("step") == TRAIN_STEPS and "loss" in (ev.get("metrics") or {}):
            loss = float(ev["metrics"]["loss"])
    return loss


def train_after_kill(stage: Stage, row: dict[str, Any], count: StageCount) -> bool:
    """Resume the killed run; it must reach the uninterrupted run's final loss within 1e-4."""
    from tools.train import checkpoints

    run_id = stage.cmd[stage.cmd.index("--run-id") + 1]
    os.environ["TUNEWISE_HOME"] = str(stage.home)
    from tools.runlog import RunLog

    run = RunLog().get_run(run_id)
    row["run_status"] = None if run is None else run["status"]
    if not row["hit"] or row["run_status"] == "completed":
        # the run had finished before its kill (or the kill came while the process was exiting): nothing to resume
        row["resume"] = "completed before the kill"
        forget_run(stage)
        return True
    folder = (stage.home or Path()) / "runs" / run_id / "checkpoints"
    incomplete = [c for c in checkpoints.checkpoints(folder) if not checkpoints.is_complete(c)]
    if incomplete:
        count.inside_save += 1
        row["inside_save"] = [c.name for c in incomplete]
    newest = checkpoints.newest_complete(folder)
    ok = True
    if newest is None:
        count.restart += 1
        row["resume"] = "no checkpoint yet: start again"
    else:
        r = subprocess.run([PY, "-m", "cli", "train", "--resume", run_id, "--events", "jsonl"], cwd=REPO,
                           env=env_for(stage.home or Path()), capture_output=True, text=True, timeout=1800)
        # the resumed run's last step, or the killed one's when it had trained every step before its kill
        loss = final_loss(r.stdout)
        if loss is None and r.returncode == 0:
            last = [m["value"] for m in RunLog().metrics(run_id)
                    if m["split"] == "train" and m["name"] == "loss" and m["step"] == TRAIN_STEPS]
            loss = last[-1] if last else None
        want = stage.baseline_loss  # type: ignore[attr-defined]
        row["resume"] = {"from": newest.name, "exit_code": r.returncode, "final_loss": loss, "baseline": want}
        if r.returncode != 0 or loss is None or abs(loss - want) > 1e-4:
            count.lost += 1
            ok = False
        else:
            count.resumed += 1
    forget_run(stage)  # the next kill starts a fresh run under the same id
    return ok


def forget_run(stage: Stage) -> None:
    run_id = stage.cmd[stage.cmd.index("--run-id") + 1]
    shutil.rmtree((stage.home or Path()) / "runs" / run_id, ignore_errors=True)
    os.environ["TUNEWISE_HOME"] = str(stage.home)
    from tools.runlog import RunLog

    RunLog().execute("DELETE FROM runs WHERE run_id = ?", [run_id])
    RunLog().execute("DELETE FROM metrics WHERE run_id = ?", [run_id])


# ------------------------------------------------------------------------------------------------ setup
def tiny_model(work: Path) -> Path:
    from transformers import AutoTokenizer

    from tests._tiny import tiny_llama
    from tools import models

    out = work / "tiny"
    tok = AutoTokenizer.from_pretrained(models.ensure_embedded())
    tiny_llama(tok, seed=0).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def data(work: Path, rows: int) -> dict[str, Path]:
    with (DATA / "banking77" / "train.csv").open(encoding="utf-8") as f:
        b77 = list(csv.DictReader(f))
    with (work / "b77.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(b77[:rows])
    with (work / "b77_1200.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(b77[:1200])  # enough rows for the advisor to train (size.band.*)
    (work / "test3.jsonl").write_text("".join(json.dumps({"input": r["text"], "output": r["category"]}) + "\n"
                                              for r in b77[1000:1003]))
    chat = [json.dumps({"messages": [{"role": "user", "content": r["text"]},
                                     {"role": "assistant", "content": r["category"]}]}) for r in b77[:80]]
    (work / "train.jsonl").write_text("\n".join(chat[:64]) + "\n")
    (work / "val.jsonl").write_text("\n".join(chat[64:72]) + "\n")
    (work / "test.jsonl").write_text("".join(json.dumps({"input": r["text"], "output": r["category"]}) + "\n"
                                             for r in b77[1000:1012]))
    mbpp = [json.loads(x) for x in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines()[:6]]
    (work / "mbpp.jsonl").write_text("".join(json.dumps({"input": m["text"], "output": m["code"],
                                                         "tests": m["test_list"]}) + "\n" for m in mbpp))
    return {"csv": work / "b77.csv", "advise_csv": work / "b77_1200.csv", "test3": work / "test3.jsonl", "train": work / "train.jsonl", "val": work / "val.jsonl",
            "test": work / "test.jsonl", "mbpp": work / "mbpp.jsonl"}


def stages(work: Path, model: Path, files: dict[str, Path], rows: int) -> dict[str, Stage]:
    cli = [PY, "-m", "cli"]
    out: dict[str, Stage] = {}
    home = work / "home"
    out["clean"] = Stage("clean", [*cli, "data", "clean", str(files["csv"]), "--out", str(work / "clean" / "out.jsonl"),
                                   "--json"], [files["csv"]], [work / "clean" / "out.jsonl"], home / "clean")
    out["prompt-eval"] = Stage("prompt-eval", [*cli, "prompt-eval", "--test", str(files["mbpp"]), "--model", str(model),
                                               "--max-new-tokens", "48", "--json"], [files["mbpp"]], [], home / "pe")
    out["train"] = Stage("train", [*cli, "train", "--train", str(files["train"]), "--val", str(files["val"]),
                                   "--model", str(model), "--max-steps", str(TRAIN_STEPS), "--eval-steps", "2",
                                   "--batch-size", "4", "--run-id", "train-fault", "--events", "jsonl"],
                         [files["train"], files["val"]], [], home / "train", events_on_stdout=True)
    out["eval"] = Stage("eval", [*cli, "eval", "test", "--run", "train-fault", "--test", str(files["test"]),
                                 "--max-new-tokens", "8", "--json"], [files["test"]], [], home / "train")
    answers = {"task": "classification", "goals": ["quality"], "quality_target": 0.9, "model": str(model),
               "model_params_b": 0.135, "gpu_memory_gb": 24, "gpus": 1, "consistency": "high",
               "data": str(files["advise_csv"]), "test_set": str(files["test3"]), "max_steps": 6, "go_on": True}
    (work / "answers.json").write_text(json.dumps(answers))
    out["advise"] = Stage("advise", [*cli, "advise", "--answers", str(work / "answers.json"), "--json"],
                          [files["advise_csv"], files["test3"], work / "answers.json"], [], home / "advise")
    for s in out.values():
        assert s.home is not None
        s.home.mkdir(parents=True, exist_ok=True)
    return out


def parse_kills(text: str) -> dict[str, int]:
    out = {}
    for part in text.split(","):
        name, _, n = part.partition("=")
        out[name.strip()] = int(n)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", default="clean=4,prompt-eval=4,train=8,eval=4,advise=2",
                    help="kills per stage, e.g. clean=4,train=8 (stages: clean, prompt-eval, train, eval, advise)")
    ap.add_argument("--rows", type=int, default=9000, help="banking77 rows for clean (advise trains on 1,200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "fault_injection.json"))
    ap.add_argument("--work", default=None, help="working folder (default: a temp folder, removed at the end)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from benchmarks.eval_metrics_speed import machine, save_result

    kills = parse_kills(args.kills)
    rng = random.Random(args.seed)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="tunewise-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.monotonic()
    try:
        model = tiny_model(work)
        files = data(work, args.rows)
        all_stages = stages(work, model, files, args.rows)
        counts: dict[str, StageCount] = {}
        rows: list[dict[str, Any]] = []
        baselines: dict[str, float] = {}
        for name in ("clean", "prompt-eval", "train", "eval", "advise"):
            n = kills.get(name, 0)
            if n <= 0:
                continue
            stage = all_stages[name]
            if name == "eval" and "train" not in baselines:  # eval needs the trained run
                forget_run(all_stages["train"])
                baseline(all_stages["train"], work)
            baseline(stage, work)
            if name == "train":
                stage.baseline_loss = final_loss(stage.extra_stdout)  # type: ignore[attr-defined]
            baselines[name] = round(stage.baseline_s, 2)
            count = counts.setdefault(name, StageCount())
            offset = rng.randrange(3)
            for i in range(n):
                sig = SIGNALS[(offset + i) % 3]  # round robin from a seeded start
                rows.append(kill_once(stage, sig, rng, work, count, i))
                print(json.dumps(rows[-1]), flush=True)
            if name == "train" and kills.get("eval", 0) > 0:  # leave a finished run under the id for eval
                forget_run(stage)
                baseline(stage, work)
        total = StageCount()
        for c in counts.values():
            for k in ("kills", "missed", "survived", "orphans", "running", "inputs_changed", "partial_outputs", "lost",
                      "restart", "resumed", "inside_save", "temp_files_left"):
                setattr(total, k, getattr(total, k) + getattr(c, k))
        result = {
            "benchmark": "fault_injection",
            "what": "the real CLI killed (SIGINT/SIGTERM/SIGKILL round robin) at seeded random moments inside each "
                    "long stage, on the tiny random Llama and banking77/mbpp slices; counts per stage",
            "seed": args.seed, "kills_asked": kills, "rows": args.rows, "train_steps": TRAIN_STEPS,
            "machine": machine(),
            "shared_machine": "2 CPU cores shared with other engineers' test runs while this ran (see the load "
                              "average): timings are loose, counts are what matters",
            "baseline_seconds": baselines,
            "totals": {k: v for k, v in asdict(total).items() if isinstance(v, int)},
            "stages": {k: asdict(v) for k, v in counts.items()},
            "kills": rows,
            "seconds": round(time.monotonic() - t_all, 1),
        }
        save_result(result, args.out, echo=False)
        bad = total.orphans + total.running + total.inputs_changed + total.partial_outputs + total.lost
        print(json.dumps(result["totals"]))
        return 1 if bad else 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
