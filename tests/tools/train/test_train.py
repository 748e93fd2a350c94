"""Training on the tiny model: completion-only labels, progress and run-log rows, early stopping on a planted
overfitting set, resume continuity, simulated out-of-memory, NaN stop, and one real-model run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tools.errors import InputError, OutOfMemoryError
from tools.train import TrainConfig, train
from tools.train.data import IGNORE, CompletionCollator, encode_example
from tools.types import Example


def _write(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                      {"role": "assistant", "content": a}]}) + "\n"
                            for q, a in pairs), encoding="utf-8")
    return path


@pytest.fixture
def arith(tmp_path: Path) -> tuple[Path, Path]:
    pairs = [(f"What is {i} plus {i}?", str(2 * i)) for i in range(40)]
    return _write(tmp_path / "train.jsonl", pairs[:32]), _write(tmp_path / "val.jsonl", pairs[32:])


def _cfg(tiny: Path, data: tuple[Path, Path], **kw: Any) -> TrainConfig:
    base = {"train": str(data[0]), "val": str(data[1]), "model": str(tiny), "max_steps": 4, "eval_steps": 2,
            "per_device_train_batch_size": 4, "learning_rate": 1e-3, "seed": 0}
    return TrainConfig(**(base | kw))


# ---------------------------------------------------------------------------------------------- labels

def test_completion_only_labels_mask_prompt_and_end_with_eos(tiny_model_dir: Path) -> None:
    from tools.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    ex = Example.from_pair("Which card is lost?", "lost_or_stolen_card", system="Classify.")
    enc = encode_example(tok, ex, 512)
    n_prompt = sum(1 for x in enc.labels if x == IGNORE)
    completion = enc.input_ids[n_prompt:]
    assert enc.labels[:n_prompt] == [IGNORE] * n_prompt and enc.labels[n_prompt:] == completion
    assert completion[-1] == tok.eos_token_id
    assert tok.decode(completion[:-1]) == "lost_or_stolen_card"
    assert "assistant" in tok.decode(enc.input_ids[:n_prompt])  # the header is prompt, not target
    # a prompt longer than the budget loses its left end; the answer survives
    long = Example.from_pair("word " * 400, "yes")
    enc = encode_example(tok, long, 64)
    assert len(enc) == 64 and tok.decode([x for x in enc.labels if x != IGNORE][:-1]) == "yes"


def test_every_assistant_turn_of_a_chat_is_trained_and_nothing_else(tiny_model_dir: Path) -> None:
    from tools.models import load_tokenizer
    from tools.types import Message

    tok = load_tokenizer(str(tiny_model_dir))
    ex = Example([Message("system", "Be brief."), Message("user", "My card is lost."),
                  Message("assistant", "lost_card"), Message("user", "And it was stolen too."),
                  Message("assistant", "stolen_card")])
    enc = encode_example(tok, ex, 512)
    runs: list[list[int]] = []  # maximal runs of labelled tokens
    for i, lab in enumerate(enc.labels):
        if lab == IGNORE:
            continue
        assert lab == enc.input_ids[i]
        if runs and enc.labels[i - 1] != IGNORE:
            runs[-1].append(lab)
        else:
            runs.append([lab])
    assert [tok.decode(r) for r in runs] == ["lost_card<|im_end|>", "stolen_card<|im_end|>"]
    masked = tok.decode([t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab == IGNORE])
    assert "My card is lost." in masked and "Be brief." in masked and "lost_card" not in masked
    # cut from the left, the earlier answer goes first; the final answer survives
    short = encode_example(tok, ex, 12)
    assert tok.decode([x for x in short.labels if x != IGNORE]) == "stolen_card<|im_end|>"


def test_all_masked_labels_are_an_error_that_says_why(tiny_model_dir: Path) -> None:
    from tools.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    ex = Example.from_pair("hello", "  ", meta={"source": "d.jsonl", "line": 7})
    with pytest.raises(InputError, match="no assistant answer") as e:
        encode_example(tok, ex, 128)
    assert e.value.where == "d.jsonl:7:assistant" and e.value.fix
    with pytest.raises(InputError, match="every label masked"):
        CompletionCollator(0)([{"input_ids": [1, 2, 3], "labels": [IGNORE] * 3}])


# ---------------------------------------------------------------------------------------------- a run

def test_lora_run_completes_streams_progress_and_logs(tiny_model_dir: Path, arith: tuple[Path, Path]) -> None:
    from tools import models
    from tools.runlog import RunLog

    events: list[Any] = []
    res = train(_cfg(tiny_model_dir, arith), on_progress=events.append)
    assert res.status == "completed" and res.steps == 4
    assert res.best_val_loss is not None and math.isfinite(res.best_val_loss)
    assert res.peak_memory_mb > 0 and res.train_seconds > 0
    adapter = Path(res.artifacts["adapter"])
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    steps = [e for e in events if e.stage == "train" and e.metrics]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "eta_s", "memory_mb", "rss_mb"} <= set(steps[0].metrics)
    assert 10 < steps[0].metrics["memory_mb"] < 1e5  # this process's RSS in MB, not bytes or pages
    assert any(e.stage == "eval" and "val_token_accuracy" in e.metrics for e in events)
    assert res.threads is not None and res.threads["threads"] >= 1 and res.to_dict()["threads"] == res.threads
    # the run log holds the verbatim config, data hashes, versions, revision and the metric rows
    log = RunLog()
    run = log.get_run(res.run_id)
    assert run is not None and run["status"] == "completed" and run["steps"] == 4
    assert run["config"]["learning_rate"] == 1e-3 and run["config"]["seed"] == 0
    assert "hp.warmup" in run["config"]["rule_ids"]
    assert set(run["data_hashes"]) == {"train", "val"} and "transformers" in run["versions"]
    assert run["pid"] and run["host"] and run["heartbeat_at"] and run["summary"]["threads"] == res.threads
    rows = log.metrics(res.run_id)
    assert {(r["split"], r["name"]) for r in rows} >= {("train", "loss"), ("train", "lr"), ("val", "loss"),
                                                       ("val", "token_accuracy")}
    # a trained run loads as a model
    spec = models.resolve(f"run:{res.run_id}")
    assert spec.adapter == adapter.resolve()
    model, _ = models.load_model(spec)
    assert model is not None


def test_defaults_come_from_the_knowledge_tables(tiny_model_dir: Path, arith: tuple[Path, Path]) -> None:
    from tools.train import resolve_defaults

    cfg = resolve_defaults(TrainConfig(train="x", method="lora"), n_train=500, params_b=0.135)
    assert cfg.learning_rate == 2e-4 and cfg.num_train_epochs == 5 and cfg.weight_decay == 0.1
    assert cfg.lora_alpha == 16
    assert {"hp.lr.lora.1b", "hp.epochs.lt_1k", "hp.wd.strong", "hp.lora.alpha"} <= set(cfg.rule_ids)
    full = resolve_defaults(TrainConfig(train="x", method="full"), n_train=2000, params_b=7)
    assert full.learning_rate == 1e-5 and full.num_train_epochs == 3 and full.weight_decay == 0.01


def test_early_stopping_on_planted_overfitting(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Training answers 'alpha', validation answers 'omega' to the same prompts: the better the model
    learns the training set, the worse validation gets. Early stopping must end the run early."""
    from tools.train.diagnose import diagnose

    prompts = [f"Item number {i}" for i in range(24)]
    tr = _write(tmp_path / "t.jsonl", [(p, "alpha") for p in prompts])
    va = _write(tmp_path / "v.jsonl", [(p, "omega") for p in prompts[:8]])
    res = train(_cfg(tiny_model_dir, (tr, va), method="full", max_steps=30, eval_steps=2, learning_rate=1e-2,
                     early_stopping_patience=3, warmup_ratio=0.0))
    assert res.status == "completed"
    assert res.steps < 30, "early stopping should have ended the run"
    d = diagnose(res.run_id)
    assert d.verdict == "overfitting"
    assert "diag.overfitting" in d.rule_ids and d.next_config["weight_decay"] == 0.1
    assert d.issues[0].rule == "diag.sign.overfitting" and d.to_dict()["issues"][0]["rule"] == "diag.sign.overfitting"


def test_resume_continues_the_same_loss_curve(tiny_model_dir: Path, arith: tuple[Path, Path]) -> None:
    from tools.runlog import RunLog

    full = train(_cfg(tiny_model_dir, arith, max_steps=6, eval_steps=3))
    ref = {r["step"]: r["value"] for r in RunLog().metrics(full.run_id) if r["split"] == "train"
           and r["name"] == "loss"}

    seen: list[int] = []
    part = train(_cfg(tiny_model_dir, arith, max_steps=6, eval_steps=3),
                 on_progress=lambda e: seen.append(e.step) if e.stage == "train" and e.metrics else None,
                 should_stop=lambda: len(seen) >= 2)
    # the stop request is seen at the end of the next step, which is checkpointed
    assert part.status == "interrupted" and part.steps == 3
    assert RunLog().get_run(part.run_id)["status"] == "interrupted"
    done = train(TrainConfig(), resume=part.run_id)
    assert done.run_id == part.run_id and done.status == "completed" and done.steps == 6
    got = {r["step"]: r["value"] for r in RunLog().metrics(part.run_id) if r["split"] == "train"
           and r["name"] == "loss"}
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):  # the same data order and schedule give the same losses after the restart
        assert got[step] == pytest.approx(ref[step], abs=1e-4), step


def test_out_of_memory_is_caught_with_the_fix(tiny_model_dir: Path, arith: tuple[Path, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from tools.runlog import RunLog
    from tools.train import hf

    def boom(self: Any, *a: Any, **k: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(hf.CompletionTrainer, "training_step", boom)
    with pytest.raises(OutOfMemoryError) as e:
        train(_cfg(tiny_model_dir, arith))
    # the fixes are knowledge/diagnosis.yaml's diag.out_of_memory rows, in order: QLoRA, then batch 1 x 32
    fix = e.value.fix or ""
    assert fix.index("method=qlora") < fix.index("per_device_train_batch_size=1, gradient_accumulation_steps=32")
    assert e.value.to_dict()["run_id"] == e.value.run_id
    run = RunLog().get_run(e.value.run_id)
    assert run["status"] == "failed" and "What to do" in run["error"]
    from tools.train.diagnose import diagnose

    d = diagnose(run["run_id"])
    assert d.verdict == "out_of_memory" and d.next_config == {"method": "qlora"}
    assert d.issues[0].fixes[0].id == "diag.out_of_memory.fix.qlora"


def test_out_of_memory_auto_retry_uses_smaller_batch(tiny_model_dir: Path, arith: tuple[Path, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from tools.train import hf

    real = hf.CompletionTrainer.training_step

    def oom_when_big(self: Any, *a: Any, **k: Any) -> Any:
        if self.args.per_device_train_batch_size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(self, *a, **k)

    monkeypatch.setattr(hf.CompletionTrainer, "training_step", oom_when_big)
    res = train(_cfg(tiny_model_dir, arith, method="full", auto_retry=True, max_steps=2))
    assert res.status == "completed"
    assert [r.fix for r in res.retries] == ["diag.out_of_memory.fix.batch_one"]  # full: no QLoRA step
    assert (res.config["per_device_train_batch_size"], res.config["gradient_accumulation_steps"]) == (1, 32)


def test_nan_loss_stops_with_a_diagnosis(tiny_model_dir: Path, arith: tuple[Path, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.runlog import RunLog
    from tools.train import hf

    real = hf.CompletionTrainer.compute_loss

    def poisoned(self: Any, model: Any, inputs: Any, *a: Any, **k: Any) -> Any:
        loss = real(self, model, inputs, *a, **k)
        return loss * float("nan") if model.training and self.state.global_step >= 2 else loss

    monkeypatch.setattr(hf.CompletionTrainer, "compute_loss", poisoned)
    res = train(_cfg(tiny_model_dir, arith, max_steps=8))
    assert res.status == "failed" and res.steps == 3
    assert res.diagnosis is not None and res.diagnosis.verdict == "diverged"
    assert "hp.lr.too_high" in res.diagnosis.rule_ids
    assert res.diagnosis.next_config["learning_rate"] < 1e-3
    assert "learning rate" in res.error["fix"]
    assert RunLog().get_run(res.run_id)["status"] == "failed"


def test_qlora_and_merged_export(tiny_model_dir: Path, arith: tuple[Path, Path], tmp_path: Path) -> None:
    from tools.train import export_merged

    res = train(_cfg(tiny_model_dir, arith, method="qlora", max_steps=2))
    assert res.status == "completed"
    out = export_merged(res.run_id, tmp_path / "merged")
    assert (out / "config.json").exists() and any(out.glob("*.safetensors"))
    assert not (out / "adapter_config.json").exists()


@pytest.mark.real_model
def test_real_model_few_steps_on_banking77(real_model_dir: Path, banking77: Path, tmp_path: Path) -> None:
    import csv

    rows = list(csv.DictReader((banking77 / "train.csv").open(encoding="utf-8")))[:40]
    tr = _write(tmp_path / "b_train.jsonl", [(r["text"], r["category"]) for r in rows[:32]])
    va = _write(tmp_path / "b_val.jsonl", [(r["text"], r["category"]) for r in rows[32:]])
    res = train(TrainConfig(train=str(tr), val=str(va), max_steps=3, eval_steps=3, per_device_train_batch_size=4))
    assert res.status == "completed" and res.steps == 3
    assert res.best_val_loss is not None and res.best_val_loss < 10
    assert res.config["learning_rate"] == 2e-4  # hp.lr.lora.1b for a 0.135B model


def test_packing_has_no_attention_across_examples(tiny_model_dir: Path) -> None:
    """The same examples, packed into one row or padded into a batch, give the same completion loss."""
    import torch
    from transformers import AutoModelForCausalLM

    from tools.models import load_tokenizer
    from tools.train.data import PackingCollator, encode_all
    from tools.train.hf import completion_loss_sums

    tok = load_tokenizer(str(tiny_model_dir))
    rows = encode_all(tok, [Example.from_pair(f"question {i} " * (i + 1), f"answer {i}") for i in range(3)], 128)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        packed = completion_loss_sums(model, PackingCollator()(rows), autocast_dtype=None)
        padded = completion_loss_sums(model, CompletionCollator(tok.pad_token_id)(rows), autocast_dtype=None)
    assert int(packed[2]) == int(padded[2])
    assert float(packed[0]) == pytest.approx(float(padded[0]), rel=1e-4)


# ---------------------------------------------------------------------------------------------- crashes and resume

def _losses(run_id: str) -> dict[int, float]:
    from tools.runlog import RunLog

    return {r["step"]: r["value"] for r in RunLog().metrics(run_id) if r["split"] == "train" and r["name"] == "loss"}


def test_resume_in_epoch_two_matches_the_uninterrupted_losses(tiny_model_dir: Path,
                                                              arith: tuple[Path, Path]) -> None:
    """32 rows in batches of 4: 8 steps an epoch. Stopped at step 10 (epoch 2) and resumed, the run trains on
    the batches an uninterrupted run would, with the same dropout: the same losses to float precision."""
    kw = {"max_steps": 14, "eval_steps": 5, "lora_dropout": 0.1}
    full = train(_cfg(tiny_model_dir, arith, **kw))
    ref = _losses(full.run_id)
    seen: list[int] = []
    part = train(_cfg(tiny_model_dir, arith, **kw),
                 on_progress=lambda e: seen.append(e.step) if e.stage == "train" and e.metrics else None,
                 should_stop=lambda: bool(seen) and seen[-1] >= 9)
    assert part.status == "interrupted" and part.steps == 10
    done = train(TrainConfig(), resume=part.run_id)
    assert done.status == "completed" and done.steps == 14 and done.resumed_from.endswith("checkpoint-10")
    got = _losses(part.run_id)
    assert sorted(got) == list(range(1, 15))
    for step in range(1, 15):
        assert got[step] == pytest.approx(ref[step], abs=1e-4), step


_KILL_DURING_SECOND_SAVE = """
import json, os, signal, sys
from transformers import Trainer
from tools.train import TrainConfig, train

real, saves = Trainer._save_rng_state, []

def killed_midway(self, output_dir):  # weights, optimizer and scheduler are written; the rest never will be
    saves.append(output_dir)
    if len(saves) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, output_dir)

Trainer._save_rng_state = killed_midway
train(TrainConfig(**json.loads(sys.argv[1])))
"""


def test_kill_9_during_a_checkpoint_save_then_resume(tiny_model_dir: Path, arith: tuple[Path, Path]) -> None:
    import signal
    import subprocess
    import sys

    from tools import paths
    from tools.runlog import RunLog

    repo = Path(__file__).resolve().parents[3]
    cfg = _cfg(tiny_model_dir, arith, max_steps=6, eval_steps=2, run_id="train-killed-in-save")
    p = subprocess.run([sys.executable, "-c", _KILL_DURING_SECOND_SAVE, json.dumps(cfg.to_dict())], cwd=repo,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    ckpts = paths.run_dir(cfg.run_id) / "checkpoints"
    assert (ckpts / "checkpoint-4" / "optimizer.pt").exists()  # the half-written checkpoint is there
    assert not (ckpts / "checkpoint-4" / "trainer_state.json").exists()
    # the dead run reads as crashed, and the time trained before the kill was kept by the heartbeat
    run = RunLog().get_run(cfg.run_id)
    assert run["status"] == "crashed" and run["pid"] and run["host"]
    before = float(run["train_seconds"] or 0)
    assert before > 0

    done = train(TrainConfig(), resume=cfg.run_id)
    assert done.status == "completed" and done.steps == 6
    assert done.resumed_from is not None and done.resumed_from.endswith("checkpoint-2")
    assert done.train_seconds is not None and done.train_seconds > before
    assert RunLog().get_run(cfg.run_id)["status"] == "completed"


def test_live_status_reads_a_dead_running_run_as_crashed() -> None:
    import os
    import socket
    import subprocess
    import sys
    from datetime import timedelta

    from tools.runlog import RunLog, now

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()
    assert RunLog.live_status({"status": "running", "pid": gone.pid, "host": here}) == "crashed"
    assert RunLog.live_status({"status": "running", "pid": os.getpid(), "host": here}) == "running"
    assert RunLog.live_status({"status": "completed", "pid": gone.pid, "host": here}) == "completed"
    old, fresh = now() - timedelta(hours=2), now()
    assert RunLog.live_status({"status": "running", "pid": 1, "host": "elsewhere", "heartbeat_at": old}) == "crashed"
    assert RunLog.live_status({"status": "running", "pid": 1, "host": "elsewhere", "heartbeat_at": fresh}) == "running"
    assert RunLog.live_status({"status": "running"}) == "running"  # an old record without a pid: unknown


def test_threads_come_from_free_cores_or_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.train.threads import choose_threads

    monkeypatch.delenv("TUNEWISE_THREADS", raising=False)
    assert choose_threads(cores=8, load_1m=0.2).threads == 8
    assert choose_threads(cores=8, load_1m=5.6).threads == 2  # six cores busy
    assert choose_threads(cores=2, load_1m=7.0).threads == 1  # oversubscribed: one thread, never zero
    assert choose_threads(cores=8, load_1m=0.0, processes=2).threads == 4  # shared by the run's processes
    assert choose_threads(3, cores=8, load_1m=7.0).source == "config"
    monkeypatch.setenv("TUNEWISE_THREADS", "5")
    c = choose_threads(cores=8, load_1m=0.0)
    assert (c.threads, c.source) == (5, "env")


def test_threads_leave_a_core_to_other_work_but_not_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load is other work's (sampled), not the load average: this process busy on two cores keeps both
    cores; another process busy on one leaves one (measured: 1 thread 2x faster then, threads_rule.json)."""
    import subprocess
    import sys
    import threading

    from tools import estimate_time
    from tools.train.threads import choose_threads

    monkeypatch.delenv("TUNEWISE_THREADS", raising=False)
    stop = threading.Event()
    spin = [threading.Thread(target=lambda: [sum(range(100)) for _ in iter(lambda: stop.is_set(), True)])
            for _ in range(2)]
    for t in spin:
        t.start()
    try:
        estimate_time._sampled.clear()
        ours = choose_threads(cores=2).load_1m
    finally:
        stop.set()
        for t in spin:
            t.join()
    other = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        estimate_time._sampled.clear()
        theirs = choose_threads(cores=2)
    finally:
        other.kill()
        other.wait()
    assert ours is not None and theirs.load_1m is not None and theirs.load_1m - ours > 0.5
    assert theirs.threads == 1


@pytest.mark.real_model
def test_real_model_resume_in_epoch_two_on_banking77(real_model_dir: Path, banking77: Path) -> None:
    """SmolLM2-135M on 16 banking77 rows (4 steps an epoch): stopped in epoch 2 and resumed, the same losses."""
    import csv

    rows = list(csv.DictReader((banking77 / "train.csv").open(encoding="utf-8")))[:20]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tr = _write(Path(d) / "t.jsonl", [(r["text"], r["category"]) for r in rows[:16]])
        va = _write(Path(d) / "v.jsonl", [(r["text"], r["category"]) for r in rows[16:]])
        kw = {"train": str(tr), "val": str(va), "max_steps": 7, "eval_steps": 3, "per_device_train_batch_size": 4,
              "gradient_accumulation_steps": 1, "seed": 0}
        full = train(TrainConfig(**kw))
        seen: list[int] = []
        part = train(TrainConfig(**kw),
                     on_progress=lambda e: seen.append(e.step) if e.stage == "train" and e.metrics else None,
                     should_stop=lambda: bool(seen) and seen[-1] >= 5)
        assert part.status == "interrupted" and part.steps == 6
        done = train(TrainConfig(), resume=part.run_id)
    assert done.status == "completed" and done.steps == 7
    ref, got = _losses(full.run_id), _losses(part.run_id)
    assert sorted(got) == list(range(1, 8))
    for step in range(1, 8):
        assert got[step] == pytest.approx(ref[step], abs=1e-3), step
