"""The prepared GPU check runs its whole code path (build, train, measure, estimate, write) on a tiny shape
on the CPU, so a session with a GPU can run it as is; without CUDA and --smoke it measures nothing."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_gpu_checks_smoke_writes_every_method(tmp_path: Path) -> None:
    import torch

    gpu_checks = _load("gpu_checks")
    out = tmp_path / "gpu.json"
    assert gpu_checks.main(["--smoke", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["method"] for r in doc["memory"]] == ["full", "lora", "qlora"]
    assert all(r["tokens_per_s"] > 0 and r["predicted_allocated_gb"] >= 0 for r in doc["memory"])
    lora = doc["memory"][1]
    assert 0 < lora["trainable_params"] < lora["params"]
    assert [t["method"] for t in doc["throughput"]] == ["full", "lora"] and doc["smoke"] is True
    if not torch.cuda.is_available():  # no GPU: nothing is measured, nothing is written
        assert gpu_checks.main(["--out", str(tmp_path / "none.json")]) == 2
        assert not (tmp_path / "none.json").exists()


def test_peer_benchmark_skips_without_a_server(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    peer = _load("peer")
    out = tmp_path / "peer.json"
    monkeypatch.setattr(sys, "argv", ["peer.py", "--out", str(out)])
    assert peer.main() == 0
    assert "skipped: no --base-url given" in capsys.readouterr().out and not out.exists()
