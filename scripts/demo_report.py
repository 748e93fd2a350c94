"""Build a real report end to end on the embedded SmolLM2-135M: a short LoRA run on a few banking77 intents,
then test evaluation, side by side, forgetting and A/B, then the HTML report and its screenshot.

    PYTHONPATH=. python scripts/demo_report.py --out docs/report.html --png docs/report.png

The training here is a deliberately small loop (a few dozen steps on CPU) so the report has real curves and a
real adapter; real training lives in ``tools.train``. Uses a temporary TUNEWISE_HOME unless one is set.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed")
SYSTEM = "Classify the banking request. Answer with one label: " + ", ".join(LABELS) + "."


def rows(split: str, n: int, seed: int) -> list[dict[str, str]]:
    with (BANKING77 / f"{split}.csv").open(encoding="utf-8") as f:
        data = [r for r in csv.DictReader(f) if r["category"] in LABELS]
    random.Random(seed).shuffle(data)
    return data[:n]


def chat(r: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["text"]},
                         {"role": "assistant", "content": r["category"]}]}


def train_lora(run_id: str, train: list[dict], val: list[dict], steps: int, log, batch: int = 8) -> Path:  # type: ignore[no-untyped-def]
    """A minimal LoRA loop: loss on the assistant tokens only, AdamW, validation loss every few steps."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tools import models, paths

    spec = models.resolve(None)
    base = models.base_path(spec)
    from transformers import AutoModelForCausalLM

    tok = models.load_tokenizer(spec)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))

    def encode(ex: dict) -> tuple[list[int], list[int]]:
        prompt = tok.apply_chat_template(ex["messages"][:-1], add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
        answer = tok(ex["messages"][-1]["content"] + tok.eos_token, add_special_tokens=False)["input_ids"]
        return list(prompt) + answer, [-100] * len(prompt) + answer

    def batch_loss(exs: list[dict]) -> torch.Tensor:
        enc = [encode(e) for e in exs]
        width = max(len(i) for i, _ in enc)
        ids = torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i, _ in enc])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in enc])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in enc])
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    rng = random.Random(0)
    best = float("inf")
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        model.train()
        loss = batch_loss(rng.sample(train, batch))
        loss.backward()
        opt.step()
        opt.zero_grad()
        log.log_metrics(run_id, step, "train", {"loss": loss.item()})
        if step % max(1, steps // 6) == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                vl = float(batch_loss(val[:8]))
            best = min(best, vl)
            log.log_metrics(run_id, step, "val", {"loss": vl})
            print(f"step {step}: train {loss.item():.3f} val {vl:.3f}", flush=True)
    adapter = paths.run_dir(run_id) / "adapter"
    model.save_pretrained(adapter)
    log.update_run(run_id, status="completed", artifacts={"adapter": str(adapter)}, steps=steps,
                   train_seconds=time.perf_counter() - t0, best_val_loss=best)
    return adapter


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/report.html")
    ap.add_argument("--png", default="docs/report.png")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--n-test", type=int, default=30)
    ap.add_argument("--probe-tokens", type=int, default=24)
    ap.add_argument("--probe-every", type=int, default=1, help="Use every k-th shipped probe (1 = all).")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("TUNEWISE_HOME", tempfile.mkdtemp(prefix="tunewise-demo-"))
    work = Path(os.environ["TUNEWISE_HOME"]) / "demo"
    work.mkdir(parents=True, exist_ok=True)

    from tools import evaluate as E
    from tools.fileio import sha256_file, write_jsonl
    from tools.report import build_report
    from tools.runlog import RunLog

    train, val, test = rows("train", 400, 0), rows("train", 600, 1)[400:], rows("test", args.n_test, 2)
    files = {}
    for name, data in (("train", train), ("val", val), ("test", test)):
        files[name] = work / f"{name}.jsonl"
        write_jsonl(files[name], (chat(r) for r in data))
    log = RunLog()
    hashes = {}
    for name, p in files.items():
        hashes[name] = sha256_file(p)
        log.log_dataset(p, sha256=hashes[name], fmt="openai_chat", rows=sum(1 for _ in p.open()), kind="split")
    prompt_run = log.start_run("prompt_eval", config={"model": "smollm2-135m-instruct"}, model="smollm2-135m-instruct")
    log.update_run(prompt_run, status="completed", summary={"best": "labels_listed", "variants": [
        {"name": "labels_listed", "system": SYSTEM,
         "few_shot": [{"input": train[i]["text"], "output": train[i]["category"]} for i in range(3)]}]})
    config = {"model": "smollm2-135m-instruct", "method": "lora", "learning_rate": 2e-3, "lora_r": 8,
              "lora_alpha": 16, "batch_size": args.batch, "max_steps": args.steps, "num_train_epochs": 1}
    run_id = log.start_run("train", config=config, method="lora", model="smollm2-135m-instruct", data_hashes=hashes)
    train_lora(run_id, [chat(r) for r in train], [chat(r) for r in val], args.steps, log, args.batch)

    cfg = E.EvalConfig(max_new_tokens=10, probe_max_new_tokens=args.probe_tokens)
    res = E.evaluate_test(run_id, files["test"], config=cfg)
    print("test:", json.dumps({k: res[k] for k in ("quality", "ci95", "n", "metric")}), flush=True)
    E.compare(run_id, files["test"], n=12, config=cfg)
    probes = None
    if args.probe_every > 1:
        probes = work / "probes.jsonl"
        write_jsonl(probes, E.load_probes()[:: args.probe_every])
    fg = E.forgetting(run_id, probes=probes, config=cfg)
    print("forgetting:", fg["verdict"], fg["base_score"], fg["tuned_score"], flush=True)
    ab = E.ab(f"prompt:{prompt_run}", f"run:{run_id}", files["test"], config=cfg)
    print("ab:", ab["diff"], ab["diff_ci95"], ab["roi"]["verdict"], flush=True)
    out = build_report(run_id, args.out)
    print("report:", out)
    from scripts.render_report import find_browser, render

    if find_browser():
        print("screenshot:", render(out, Path(args.png), height=3600))
    return 0


if __name__ == "__main__":
    sys.exit(main())
