"""`tunewise train | estimate | diagnose | export` through the CLI: one JSON document on stdout, JSONL events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tw(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def _data(tmp_path: Path) -> tuple[Path, Path]:
    rows = [json.dumps({"messages": [{"role": "user", "content": f"card problem {i}"},
                                     {"role": "assistant", "content": "card_issue"}]}) for i in range(20)]
    (tmp_path / "t.jsonl").write_text("\n".join(rows[:16]) + "\n")
    (tmp_path / "v.jsonl").write_text("\n".join(rows[16:]) + "\n")
    return tmp_path / "t.jsonl", tmp_path / "v.jsonl"


def test_estimate_json_has_every_component() -> None:
    doc = json.loads(tw("estimate", "--params-b", "7", "--method", "full", "--json").stdout)
    for key in ("weights_gb", "gradients_gb", "optimizer_gb", "activations_gb", "quantization_gb", "overhead_gb",
                "total_gb", "seed_reference_gb"):
        assert key in doc
    assert doc["weights_gb"] == pytest.approx(28, rel=0.01) and doc["seed_reference_gb"] == 120
    allm = json.loads(tw("estimate", "--params-b", "13", "--json").stdout)
    assert set(allm["estimates"]) == {"full", "lora", "qlora"}


def test_print_launch_builds_an_accelerate_command(tmp_path: Path) -> None:
    cfg = REPO / "knowledge" / "configs" / "accelerate_fsdp.yaml"
    r = tw("train", "--train", "t.jsonl", "--method", "qlora", "--lr", "0.0001", "--no-bf16", "--launcher",
           "accelerate", "--accelerate-config", str(cfg), "--print-launch", "--json")
    cmd = json.loads(r.stdout)["command"]
    assert cmd[:4] == ["accelerate", "launch", "--config_file", str(cfg)]
    assert cmd[4:7] == ["-m", "cli", "train"]
    assert "--no-bf16" in cmd and cmd[cmd.index("--lr") + 1] == "0.0001" and "--launcher" not in cmd


def test_train_events_jsonl_then_diagnose_and_export(tiny_model_dir: Path, tmp_path: Path) -> None:
    t, v = _data(tmp_path)
    r = tw("train", "--train", str(t), "--val", str(v), "--model", str(tiny_model_dir), "--max-steps", "3",
           "--eval-steps", "3", "--batch-size", "4", "--events", "jsonl")
    lines = [json.loads(x) for x in r.stdout.splitlines()]  # every stdout line is JSON
    steps = [x for x in lines if x["stage"] == "train" and x["metrics"]]
    assert [x["step"] for x in steps] == [1, 2, 3]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "eta_s"} <= set(steps[-1]["metrics"])
    result = lines[-1]["result"]
    assert lines[-1]["stage"] == "result" and result["status"] == "completed"
    for key in ("run_id", "status", "best_val_loss", "steps", "train_seconds", "peak_memory_mb", "artifacts"):
        assert key in result
    d = json.loads(tw("diagnose", result["run_id"], "--json").stdout)
    assert d["run_id"] == result["run_id"] and d["verdict"] in {"too_short", "healthy", "lr_too_low",
                                                                "not_converged", "overfitting", "lr_too_high"}
    out = tmp_path / "merged"
    e = json.loads(tw("export", result["run_id"], "--merged", str(out), "--json").stdout)
    assert Path(e["merged"]) == out and (out / "config.json").exists()


def test_train_errors_are_messages(tmp_path: Path) -> None:
    r = tw("train", "--train", str(tmp_path / "missing.jsonl"), "--json", check=False)
    assert r.returncode == 2
    assert json.loads(r.stdout)["error"]["where"].endswith("missing.jsonl")
    r = tw("diagnose", "nope", "--json", check=False)
    assert r.returncode == 2 and "runs list" in json.loads(r.stdout)["error"]["fix"]


def test_advisor_plan_maps_onto_train_config(tmp_path: Path) -> None:
    from cli.train import _read_plan
    from tools.train.config import TrainConfig, plan_fields

    def _plan_fields(path: str) -> dict:
        return plan_fields(_read_plan(path))

    plan = {"method": "qlora", "hyperparameters": {
        "learning_rate": 1e-4, "epochs": 2, "per_device_batch_size": 4, "gradient_accumulation_steps": 8,
        "weight_decay": 0.1, "warmup_ratio": 0.05, "lr_scheduler": "linear",
        "lora": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": "all-linear"},
        "early_stopping": {"patience": 3, "threshold": 0.01}}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    f = _plan_fields(str(tmp_path / "plan.json"))
    assert f == {"method": "qlora", "learning_rate": 1e-4, "num_train_epochs": 2, "per_device_train_batch_size": 4,
                 "gradient_accumulation_steps": 8, "weight_decay": 0.1, "warmup_ratio": 0.05,
                 "lr_scheduler_type": "linear", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.1,
                 "target_modules": "all-linear", "early_stopping_patience": 3, "early_stopping_threshold": 0.01}
    (tmp_path / "flat.json").write_text(json.dumps({"train_config": {"lora_r": 4, "bogus": 1}}))
    assert _plan_fields(str(tmp_path / "flat.json")) == {"lora_r": 4}
    # one function turns a plan into a config: the short run wins over the hyperparameters, given fields win
    plan["short_run"] = {"per_device_batch_size": 2, "gradient_accumulation_steps": 16, "max_steps": 20}
    cfg = TrainConfig.from_plan(plan, train="t.jsonl", method=None)
    assert (cfg.train, cfg.method, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps,
            cfg.max_steps) == ("t.jsonl", "qlora", 2, 16, 20)
    assert TrainConfig.from_plan(None, max_steps="20", learning_rate="1e-4").max_steps == 20  # typed answers


def test_sigint_checkpoints_and_marks_the_run_interrupted(tiny_model_dir: Path, tmp_path: Path) -> None:
    import signal

    t, v = _data(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "cli", "train", "--train", str(t), "--val", str(v), "--model",
                          str(tiny_model_dir), "--max-steps", "500", "--eval-steps", "100", "--batch-size", "2",
                          "--events", "jsonl"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    lines = []
    for line in p.stdout:
        lines.append(json.loads(line))
        if lines[-1]["stage"] == "train" and lines[-1]["metrics"]:
            p.send_signal(signal.SIGINT)
            break
    rest, _ = p.communicate(timeout=300)
    lines += [json.loads(x) for x in rest.splitlines()]
    result = lines[-1]["result"]
    assert p.returncode == 130 and result["status"] == "interrupted" and result["steps"] < 500
    ckpts = list((Path(result["artifacts"]["checkpoints"])).glob("checkpoint-*"))
    assert ckpts, "the interrupted run saved a checkpoint to resume from"


def test_accelerate_launch_single_cpu_process_trains(tiny_model_dir: Path, tmp_path: Path) -> None:
    t, v = _data(tmp_path)
    cfg = REPO / "knowledge" / "configs" / "accelerate_cpu_single.yaml"
    r = tw("train", "--train", str(t), "--val", str(v), "--model", str(tiny_model_dir), "--max-steps", "2",
           "--eval-steps", "2", "--batch-size", "4", "--launcher", "accelerate", "--accelerate-config", str(cfg),
           "--json")
    doc = json.loads(r.stdout[r.stdout.index("{"):])
    assert doc["status"] == "completed" and doc["steps"] == 2


def test_train_options_come_from_train_config() -> None:
    """Every TrainConfig field is an option whose help is the field's own text, and the old flags still work."""
    import typer

    from cli.train import register
    from tools.train.config import TrainConfig, cli_fields

    app = typer.Typer()
    register(app)
    cmd = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    opts = {o: p for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for flag in ("--train", "--val", "--method", "--model", "--plan", "--lr", "--epochs", "--batch-size",
                 "--grad-accum", "--weight-decay", "--warmup-ratio", "--lora-r", "--lora-alpha", "--lora-dropout",
                 "--target-modules", "--max-seq-length", "--packing", "--no-packing", "--group-by-length",
                 "--no-group-by-length", "--shared-prefix", "--no-shared-prefix", "--bf16", "--no-bf16",
                 "--gradient-checkpointing", "--no-gradient-checkpointing", "--limit", "--max-steps", "--eval-steps",
                 "--patience", "--seed", "--save-merged", "--auto-retry", "--resume", "--events", "--launcher",
                 "--accelerate-config", "--print-launch", "--json", "--threads"):
        assert flag in opts, flag
    shown = {cf.name for cf in cli_fields()}
    assert shown == set(TrainConfig.__dataclass_fields__) - {"rule_ids"}
    for cf in cli_fields():
        assert opts[cf.option].help == cf.help and cf.help == TrainConfig.__dataclass_fields__[cf.name].metadata["help"]


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli", "train", *args, "--events", "jsonl"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _until_first_step(p: subprocess.Popen[str]) -> list[dict]:
    assert p.stdout is not None
    lines = []
    for line in p.stdout:
        lines.append(json.loads(line))
        if lines[-1]["stage"] == "train" and lines[-1]["metrics"]:
            return lines
    raise AssertionError(f"no training step: {p.stderr.read()[-2000:] if p.stderr else ''}")


def test_kill_9_then_runs_list_shows_crashed(tiny_model_dir: Path, tmp_path: Path) -> None:
    import signal

    t, v = _data(tmp_path)
    p = _start(["--train", str(t), "--val", str(v), "--model", str(tiny_model_dir), "--max-steps", "500",
                "--eval-steps", "100", "--batch-size", "2", "--run-id", "train-killed"])
    _until_first_step(p)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    runs = {r["run_id"]: r for r in json.loads(tw("runs", "list", "--json").stdout)["runs"]}
    assert runs["train-killed"]["status"] == "crashed"
    crashed = json.loads(tw("runs", "list", "--status", "crashed", "--json").stdout)["runs"]
    assert [r["run_id"] for r in crashed] == ["train-killed"]
    assert json.loads(tw("runs", "show", "train-killed", "--json").stdout)["run"]["status"] == "crashed"


DDP = REPO / "knowledge" / "configs" / "accelerate_cpu_ddp.yaml"


def test_two_cpu_processes_train_like_one_and_log_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    """DDP over gloo with 2 processes x batch 2 follows the 1 x batch 4 loss curve; rank 0 alone writes."""
    from tools.runlog import RunLog

    t, v = _data(tmp_path)
    common = ["--train", str(t), "--val", str(v), "--model", str(tiny_model_dir), "--max-steps", "6",
              "--eval-steps", "3", "--grad-accum", "1", "--lr", "0.002", "--json"]
    tw("train", *common, "--batch-size", "4", "--run-id", "one-process")
    r = tw("train", *common, "--batch-size", "2", "--run-id", "two-processes", "--launcher", "accelerate",
           "--accelerate-config", str(DDP))
    doc = json.loads(r.stdout)  # one JSON document: rank 1 prints nothing
    assert doc["status"] == "completed" and doc["steps"] == 6 and doc["processes"] == 2
    assert doc["threads"]["processes"] == 2
    runs = json.loads(tw("runs", "list", "--json").stdout)["runs"]
    assert sorted(r["run_id"] for r in runs) == ["one-process", "two-processes"]
    log = RunLog()

    def curve(run_id: str, split: str) -> list[float]:
        return [m["value"] for m in log.metrics(run_id) if m["split"] == split and m["name"] == "loss"]

    for split in ("train", "val"):
        one, two = curve("one-process", split), curve("two-processes", split)
        assert len(one) == len(two) > 0
        assert max(abs(a - b) for a, b in zip(one, two, strict=True)) < 0.02, (split, one, two)


def test_ctrl_c_stops_both_processes(tiny_model_dir: Path, tmp_path: Path) -> None:
    import signal

    import psutil

    from tools.runlog import RunLog

    t, v = _data(tmp_path)
    p = _start(["--train", str(t), "--val", str(v), "--model", str(tiny_model_dir), "--max-steps", "500",
                "--eval-steps", "100", "--batch-size", "2", "--run-id", "ddp-ctrl-c", "--launcher", "accelerate",
                "--accelerate-config", str(DDP)])
    _until_first_step(p)
    family = psutil.Process(p.pid).children(recursive=True)
    assert len([c for c in family if "cli" in " ".join(c.cmdline()) and "accelerate" not in " ".join(c.cmdline())]) >= 2
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=120)
    result = [json.loads(x) for x in rest.splitlines()][-1]["result"]
    assert p.returncode == 130 and result["status"] == "interrupted" and result["steps"] < 500
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, alive
    assert RunLog().get_run("ddp-ctrl-c")["status"] == "interrupted"
    assert list((Path(result["artifacts"]["checkpoints"])).glob("checkpoint-*"))
