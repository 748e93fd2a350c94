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


def canned_predict(truth: dict[str, str], rates: dict[str, float]):  # type: ignore[no-untyped-def]
    """A stand-in for ``tools.evaluate.predict``: each variant kind answers right at its rate, deterministically
    (item i is right when (37 i mod 100)/100 < rate), so evaluation and the report run without generation."""
    from tools.evaluate import Predictions

    def predict(variant, prompts, **_kw):  # type: ignore[no-untyped-def]
        rate = rates.get(variant.kind, 0.0)
        texts = []
        for i, msgs in enumerate(prompts):
            q = msgs[-1]["content"]
            right = (37 * i % 100) / 100 < rate
            ans = truth.get(q, "")
            texts.append(str(ans[0] if isinstance(ans, list) else ans) if right else "I do not know")
        n = len(prompts)
        return Predictions(variant.label, texts, [20.0 + 5 * (variant.kind == "prompt")] * n, [30] * n, [4] * n)

    return predict


def fill_runlog(run_id: str, test_file: Path, monkeypatch, *, probes: Path | None = None,  # type: ignore[no-untyped-def]
                rates: dict[str, float] | None = None) -> None:
    """Test evaluation, side by side, forgetting and A/B logged for ``run_id`` with canned answers."""
    from tools import evaluate as E
    from tools.scoring import rows as R

    exs = R.load_test(test_file)
    truth = {e.input_text: e.output_text for e in exs}
    truth.update({p["question"]: p["answer"] for p in E.load_probes(probes)})
    monkeypatch.setattr(E.predictions, "predict", canned_predict(truth, rates or {"tuned": 0.85, "base": 0.3, "prompt": 0.55}))
    E.evaluate_test(run_id, test_file)
    E.compare(run_id, test_file, n=8)
    E.forgetting(run_id, probes=probes)
    E.ab("base", f"run:{run_id}", test_file)
