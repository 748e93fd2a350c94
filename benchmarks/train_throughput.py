"""Training throughput: tunewise's default path against the seed's Trainer recipe, same examples, one run.

Baseline (the seed's recipe): transformers Trainer + TrainingArguments, per-batch padding, no length grouping,
fp32 on CPU (fp16 on GPU), loss on the full sequence. tunewise: ``tools.train.train`` with its defaults
(bf16 where the hardware has it, length-grouped dynamic padding, completion-only loss computed only at the
labelled positions, the batch's shared prompt prefix encoded once, LoRA dropout masks from a cheaper RNG). Both train the same LoRA (r=8, alpha=16, all linear layers) on SmolLM2-135M-Instruct
with the same learning rate, batch and schedule over the same banking77 examples, for one epoch.

Measured: non-padding tokens per second over the training steps (evaluation and saving excluded), and the
validation loss of both final models on the same held-out examples, computed by the same code (mean
cross-entropy over the answer tokens, fp32). Writes benchmarks/results/train_throughput.json.

    python benchmarks/train_throughput.py [--n-train 256] [--n-val 64] [--ablate]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
BANKING77 = REPO.parent / "shared" / "data" / "banking77"
SYSTEM = "Classify the banking customer's message into one intent label. Answer with the label only."


def banking77(n_train: int, n_val: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    def rows(name: str) -> list[tuple[str, str]]:
        with (BANKING77 / name).open(encoding="utf-8") as f:
            return [(r["text"], r["category"]) for r in csv.DictReader(f)]

    tr, te = rows("train.csv"), rows("test.csv")
    random.Random(0).shuffle(tr)
    random.Random(1).shuffle(te)
    return tr[:n_train], te[:n_val]


def write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"messages": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": q},
        {"role": "assistant", "content": a}]}) + "\n" for q, a in pairs), encoding="utf-8")


def val_loss(model, tok, pairs: list[tuple[str, str]]) -> float:  # type: ignore[no-untyped-def]
    """Mean cross-entropy over answer tokens (+EOS), fp32, the same for both models."""
    import torch

    from tools.train.data import CompletionCollator, encode_all
    from tools.train.hf import completion_loss_sums
    from tools.types import Example

    rows = encode_all(tok, [Example.from_pair(q, a, system=SYSTEM) for q, a in pairs], 512)
    coll = CompletionCollator(tok.pad_token_id)
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), 16):
            batch = coll(rows[i:i + 16])
            s, _, c = completion_loss_sums(model.float(), batch, autocast_dtype=None)
            total += float(s)
            n += int(c)
    return total / n


def run_baseline(base: Path, pairs: list[tuple[str, str]], args: argparse.Namespace, out: Path) -> dict:
    """The seed's recipe: Trainer, per-batch padding, random order, fp32 (fp16 on GPU), full-sequence loss."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(base)
    tok.pad_token = tok.pad_token or tok.eos_token
    texts = [tok.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": q},
                                      {"role": "assistant", "content": a}], tokenize=False) for q, a in pairs]
    data = [{"input_ids": tok(t, add_special_tokens=False)["input_ids"]} for t in texts]
    tokens = sum(len(d["input_ids"]) for d in data)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    cuda = torch.cuda.is_available()
    targs = TrainingArguments(output_dir=str(out / "baseline"), per_device_train_batch_size=args.batch,
                              gradient_accumulation_steps=1, learning_rate=args.lr, num_train_epochs=1,
                              weight_decay=0.01, warmup_steps=max(1, round(0.1 * len(pairs) / args.batch)),
                              lr_scheduler_type="linear", fp16=cuda, logging_steps=10, save_strategy="no",
                              eval_strategy="no", report_to="none", disable_tqdm=True, seed=0,
                              use_cpu=not cuda)
    trainer = Trainer(model=model, args=targs, train_dataset=data,
                      data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 2), "tokens_per_cpu_s": round(tokens / cpu, 2),
            "model": model, "tok": tok}


def run_tunewise(train_file: Path, val_file: Path, args: argparse.Namespace, **overrides: object) -> dict:
    from tools.train import TrainConfig, train

    marks: dict[str, float] = {}

    def on_progress(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.stage == "train" and not ev.metrics:
            marks["start"], marks["cpu_start"] = time.perf_counter(), time.process_time()
        if ev.stage == "train" and ev.metrics:
            marks["end"], marks["cpu_end"] = time.perf_counter(), time.process_time()

    import torch

    steps = -(-args.n_train // args.batch)
    # the baseline runs with torch's own thread count; tunewise would choose from the free cores, so pin it
    # to the same number for a like-for-like comparison
    cfg = TrainConfig(train=str(train_file), val=str(val_file), learning_rate=args.lr, num_train_epochs=1,
                      per_device_train_batch_size=args.batch, gradient_accumulation_steps=1, weight_decay=0.01,
                      eval_steps=steps, seed=0, threads=torch.get_num_threads(), **overrides)  # type: ignore[arg-type]
    res = train(cfg, on_progress=on_progress).to_dict()
    seconds, cpu = marks["end"] - marks["start"], marks["cpu_end"] - marks["cpu_start"]
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "tokens": res["train_tokens"],
            "tokens_per_s": round(res["train_tokens"] / seconds, 2),
            "tokens_per_cpu_s": round(res["train_tokens"] / cpu, 2), "result": res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--n-val", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for both runs (1: CPU time per token is robust on a shared machine)")
    ap.add_argument("--ablate", action="store_true", help="also run tunewise without shared-prefix encoding")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_throughput.json"))
    args = ap.parse_args()

    import torch

    from tools import models
    from tools.device import detect

    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    os.environ.setdefault("TUNEWISE_HOME", str(tmp / "home"))
    tr, va = banking77(args.n_train, args.n_val)
    write_jsonl(tmp / "train.jsonl", tr)
    write_jsonl(tmp / "val.jsonl", va)
    base = models.ensure_embedded()

    base_run = run_baseline(base, tr, args, tmp)
    base_val = val_loss(base_run.pop("model"), base_run.pop("tok"), va)
    tw_run = run_tunewise(tmp / "train.jsonl", tmp / "val.jsonl", args)
    res = tw_run.pop("result")
    ablation: dict[str, object] = {}
    if args.ablate:  # what the shared-prefix encoding contributes, on the same examples
        off = run_tunewise(tmp / "train.jsonl", tmp / "val.jsonl", args, shared_prefix=False)
        off.pop("result")
        ablation = {"without_shared_prefix": off | {
            "speedup": round(off["tokens_per_cpu_s"] / base_run["tokens_per_cpu_s"], 3)}}
    model, tok = models.load_model(f"run:{res['run_id']}", device="cpu", dtype=torch.float32)
    tw_val = val_loss(model, tok, va)

    dev = detect()
    doc = {
        "benchmark": "train_throughput",
        "speedup": round(tw_run["tokens_per_cpu_s"] / base_run["tokens_per_cpu_s"], 3),
        "speedup_basis": "non-padding tokens per CPU-second of the training steps (one torch thread each); the "
                         "machine is shared, so wall-clock ratios are also given but are noisier. Each side counts "
                         "its own tokens (the seed's template adds a newline after the answer), so the ratio of "
                         "CPU time for the same examples is given too",
        "speedup_wall_clock": round(tw_run["tokens_per_s"] / base_run["tokens_per_s"], 3),
        "speedup_examples_per_cpu_s": round(base_run["cpu_seconds"] / tw_run["cpu_seconds"], 3),
        "baseline_tokens_per_s": base_run["tokens_per_s"], "tunewise_tokens_per_s": tw_run["tokens_per_s"],
        "baseline_tokens_per_cpu_s": base_run["tokens_per_cpu_s"],
        "tunewise_tokens_per_cpu_s": tw_run["tokens_per_cpu_s"],
        "baseline_val_loss": round(base_val, 4), "tunewise_val_loss": round(tw_val, 4),
        "val_loss_equal_or_lower": tw_val <= base_val,
        "baseline": {k: v for k, v in base_run.items()}, "tunewise": tw_run | {
            "bf16": res["config"]["bf16"] if res["config"].get("bf16") is not None else dev.bf16,
            "run_id": res["run_id"], "best_val_loss_in_run": res["best_val_loss"],
            "attn_implementation": res.get("attn_implementation"), "shared_prefix": res.get("shared_prefix")},
        "ablation": ablation or "not run (pass --ablate)",
        "setup": {"model": models.EMBEDDED_NAME, "method": "lora r=8 alpha=16 all-linear", "n_train": args.n_train,
                  "n_val": args.n_val, "batch": args.batch, "learning_rate": args.lr, "epochs": 1,
                  "data": "banking77 train.csv (shuffled, seed 0) / test.csv (shuffled, seed 1)",
                  "val_loss": "mean cross-entropy over answer tokens + EOS, fp32, same code for both models",
                  "tokens": "non-padding tokens of the training examples; time = training steps only"},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "device": dev.to_dict(),
                    "note": "shared machine (2 cores shared with other sessions): absolute numbers are noisy; "
                            "the ratio is measured in one run"},
        "gpu": "not measured: no GPU was available in this task (tokens/s and MFU on a ~1B model on H100/H200 "
               "remain to be done)",
        "command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]),
    }
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(doc, args.out, echo=False)
    print(json.dumps({k: doc[k] for k in ("speedup", "speedup_wall_clock", "baseline_tokens_per_s", "tunewise_tokens_per_s",
                                          "baseline_val_loss", "tunewise_val_loss")}, indent=2))


if __name__ == "__main__":
    main()
