"""What a finished run leaves behind: the adapter (or the full model) in the run folder, and on request the
adapter folded into its base as a plain Hugging Face model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.fileio import atomic_dir
from tools.train.config import TrainConfig


def save_outputs(model: Any, tok: Any, config: TrainConfig, rdir: Path, spec: Any, base: Path) -> dict[str, str]:
    """The adapter (safetensors + config) in run_dir/adapter, or the full model in run_dir/model."""
    out: dict[str, str] = {}
    if config.method in ("lora", "qlora"):
        # Name the base by its spec so the adapter resolves on any machine that has the same model.
        base_name = spec.name if spec.kind == "embedded" else str(base)
        for c in model.peft_config.values():
            c.base_model_name_or_path = base_name
        with atomic_dir(rdir / "adapter") as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
        out["adapter"] = str(rdir / "adapter")
        if config.save_merged:
            out["merged"] = str(export_merged(config.run_id or rdir.name, rdir / "merged"))
    else:
        with atomic_dir(rdir / "model") as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        out["model"] = str(rdir / "model")
    return out


def export_merged(run_id: str, out_dir: str | Path) -> Path:
    """Fold a run's adapter into its (unquantised) base and save the result as a plain HF model folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tools import models

    spec = models.resolve(f"run:{run_id}")
    out_dir = Path(out_dir)
    base = models.base_path(spec)
    tok = models.load_tokenizer(spec)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, use_safetensors=True)
    if spec.adapter is not None:
        model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return out_dir
