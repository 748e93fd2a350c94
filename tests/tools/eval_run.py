"""Build a finished "training run" by hand for evaluation tests, following the contract ``tools.models.resolve_run``
reads: a run row of kind ``train`` with ``artifacts.adapter`` pointing at ``run_dir(run_id)/adapter``."""

from __future__ import annotations

import json
from pathlib import Path

LABELS = ("card_arrival", "lost_or_stolen_card", "exchange_rate")


def make_run(model_dir: Path, *, perturb: bool = True, seed: int = 0, curves: bool = True) -> str:
    """A LoRA adapter on ``model_dir`` saved like training saves it; ``perturb=False`` leaves B = 0 (= base)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tools import paths
    from tools.runlog import RunLog

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  task_type="CAUSAL_LM"))
    if perturb:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    config = {"model": str(model_dir), "method": "lora", "learning_rate": 2e-4, "num_train_epochs": 3,
              "lora_r": 4}
    log = RunLog()
    run_id = log.start_run("train", config=config, method="lora", model=str(model_dir),
                           data_hashes={"train": "a" * 64, "val": "b" * 64, "test": "c" * 64})
    adapter = paths.run_dir(run_id) / "adapter"
    peft_model.save_pretrained(adapter)
    if curves:
        for step in range(1, 7):
            log.log_metrics(run_id, step, "train", {"loss": 3.0 / step})
            if step % 2 == 0:
                log.log_metrics(run_id, step, "val", {"loss": 3.2 / step + 0.1})
    log.update_run(run_id, status="completed", artifacts={"adapter": str(adapter)}, train_seconds=42.0, steps=6,
                   best_val_loss=0.63)
    return run_id


def write_test_file(path: Path, n: int = 12) -> Path:
    rows = []
    for i in range(n):
        label = LABELS[0] if i % 2 == 0 else LABELS[1] if i % 4 == 1 else LABELS[2]
        text = f"question number {i} about my card" + (" that is much longer than the others" * (i == 5))
        rows.append({"messages": [{"role": "system", "content": "Classify the banking request."},
                                  {"role": "user", "content": text}, {"role": "assistant", "content": label}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
