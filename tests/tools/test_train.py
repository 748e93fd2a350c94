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
    assert res["status"] == "completed" and res["steps"] == 4
    assert res["best_val_loss"] is not None and math.isfinite(res["best_val_loss"])
    assert res["peak_memory_mb"] > 0 and res["train_seconds"] > 0
    adapter = Path(res["artifacts"]["adapter"])
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    steps = [e for e in events if e.stage == "train" and e.metrics]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "eta_s"} <= set(steps[0].metrics)
    assert any(e.stage == "eval" and "val_token_accuracy" in e.metrics for e in events)
    # the run log holds the verbatim config, data hashes, versions, revision and the metric rows
    log = RunLog()
    run = log.get_run(res["run_id"])
    assert run is not None and run["status"] == "completed" and run["steps"] == 4
    assert run["config"]["learning_rate"] == 1e-3 and run["config"]["seed"] == 0
    assert "hp.warmup" in run["config"]["rule_ids"]
    assert set(run["data_hashes"]) == {"train", "val"} and "transformers" in run["versions"]
    rows = log.metrics(res["run_id"])
    assert {(r["split"], r["name"]) for r in rows} >= {("train", "loss"), ("train", "lr"), ("val", "loss"),
                                                       ("val", "token_accuracy")}
    # a trained run loads as a model
    spec = models.resolve(f"run:{res['run_id']}")
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
    from tools.diagnose import diagnose

    prompts = [f"Item number {i}" for i in range(24)]
    tr = _write(tmp_path / "t.jsonl", [(p, "alpha") for p in prompts])
    va = _write(tmp_path / "v.jsonl", [(p, "omega") for p in prompts[:8]])
    res = train(_cfg(tiny_model_dir, (tr, va), method="full", max_steps=30, eval_steps=2, learning_rate=1e-2,
                     early_stopping_patience=3, warmup_ratio=0.0))
    assert res["status"] == "completed"
    assert res["steps"] < 30, "early stopping should have ended the run"
    d = diagnose(res["run_id"])
    assert d["verdict"] == "overfitting"
    assert "diag.overfitting" in d["rule_ids"] and d["next_config"]["weight_decay"] == 0.1


def test_resume_continues_the_same_loss_curve(tiny_model_dir: Path, arith: tuple[Path, Path]) -> None:
    from tools.runlog import RunLog

    full = train(_cfg(tiny_model_dir, arith, max_steps=6, eval_steps=3))
    ref = {r["step"]: r["value"] for r in RunLog().metrics(full["run_id"]) if r["split"] == "train"
           and r["name"] == "loss"}

    seen: list[int] = []
    part = train(_cfg(tiny_model_dir, arith, max_steps=6, eval_steps=3),
                 on_progress=lambda e: seen.append(e.step) if e.stage == "train" and e.metrics else None,
                 should_stop=lambda: len(seen) >= 2)
    # the stop request is seen at the end of the next step, which is checkpointed
    assert part["status"] == "interrupted" and part["steps"] == 3
    assert RunLog().get_run(part["run_id"])["status"] == "interrupted"
    done = train(TrainConfig(), resume=part["run_id"])
    assert done["run_id"] == part["run_id"] and done["status"] == "completed" and done["steps"] == 6
    got = {r["step"]: r["value"] for r in RunLog().metrics(part["run_id"]) if r["split"] == "train"
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
    assert "qlora" in (e.value.fix or "") and "per_device_train_batch_size=2" in (e.value.fix or "")
    run = RunLog().get_run(e.value.run_id)  # type: ignore[attr-defined]
    assert run["status"] == "failed" and "What to do" in run["error"]
    from tools.diagnose import diagnose

    d = diagnose(run["run_id"])
    assert d["verdict"] == "out_of_memory" and d["next_config"] == {"method": "qlora"}


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
    assert res["status"] == "completed"
    assert [r["fix"] for r in res["retries"]] == ["diag.out_of_memory.fix.batch_one"]
    assert res["config"]["per_device_train_batch_size"] == 2


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
    assert res["status"] == "failed" and res["steps"] == 3
    assert res["diagnosis"]["verdict"] == "diverged"
    assert "hp.lr.too_high" in res["diagnosis"]["rule_ids"]
    assert res["diagnosis"]["next_config"]["learning_rate"] < 1e-3
    assert "learning rate" in res["error"]["fix"]
    assert RunLog().get_run(res["run_id"])["status"] == "failed"


def test_qlora_and_merged_export(tiny_model_dir: Path, arith: tuple[Path, Path], tmp_path: Path) -> None:
    from tools.train import export_merged

    res = train(_cfg(tiny_model_dir, arith, method="qlora", max_steps=2))
    assert res["status"] == "completed"
    out = export_merged(res["run_id"], tmp_path / "merged")
    assert (out / "config.json").exists() and any(out.glob("*.safetensors"))
    assert not (out / "adapter_config.json").exists()


@pytest.mark.real_model
def test_real_model_few_steps_on_banking77(real_model_dir: Path, banking77: Path, tmp_path: Path) -> None:
    import csv

    rows = list(csv.DictReader((banking77 / "train.csv").open(encoding="utf-8")))[:40]
    tr = _write(tmp_path / "b_train.jsonl", [(r["text"], r["category"]) for r in rows[:32]])
    va = _write(tmp_path / "b_val.jsonl", [(r["text"], r["category"]) for r in rows[32:]])
    res = train(TrainConfig(train=str(tr), val=str(va), max_steps=3, eval_steps=3, per_device_train_batch_size=4))
    assert res["status"] == "completed" and res["steps"] == 3
    assert res["best_val_loss"] is not None and res["best_val_loss"] < 10
    assert res["config"]["learning_rate"] == 2e-4  # hp.lr.lora.1b for a 0.135B model


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
