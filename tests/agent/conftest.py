"""Fakes for the tool modules the advisor calls (built by other areas in parallel)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.train.config import TrainConfig
from tools.types import ProgressEvent, emit


@dataclass
class FakePromptEvalConfig:
    test: str
    model: str = "smollm2-135m-instruct"
    variants: bool = False
    bar: float | None = None
    alt_systems: list[str] | None = None
    task_kind: str | None = None


class Calls(list):  # type: ignore[type-arg]
    def names(self) -> list[str]:
        return [c[0] for c in self]


@pytest.fixture
def fake_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Install fake prompt_eval / data / train / evaluate / diagnose tools; returns their knobs and call log."""
    import tools
    import tools.data

    state: dict[str, Any] = {"calls": Calls(), "baseline": 0.70, "variants": [("more_shots", 0.78), ("chain_of_thought", 0.82)],
                             "test_quality": 0.95, "fail": None, "limits": {}}
    calls = state["calls"]

    def run_prompt_eval(config: FakePromptEvalConfig, *, on_progress: Any = None) -> dict[str, Any]:
        calls.append(("prompt_eval", config))
        if state["fail"] == "prompt_eval":
            from tools.errors import InputError

            raise InputError("the test set has no labels", where=f"{config.test}:1:output", fix="add an output column")
        if state["fail"] == "model" and config.model != "smollm2-135m-instruct":
            from tools.errors import ModelNotFoundError

            raise ModelNotFoundError(f"unknown model {config.model!r}", fix="use a local folder")
        for i in range(3):
            emit(on_progress, ProgressEvent("prompt_eval", i + 1, 3, {"quality": state["baseline"]}))
        variants = [{"name": n, "quality": q} for n, q in state["variants"]]
        best = max(variants, key=lambda v: v["quality"]) if variants else None
        share = {"share": state["share"]} if "share" in state else {}  # a free-text fake sets chrf + share False
        return {"quality": state["baseline"], "ci95": [0.6, 0.8], "metric": state.get("metric", "accuracy"), **share,
                "n": 40, "latency_ms": 12.0,
                "prompt_tokens": 300, "variants": variants, "run_id": "pe-1", "best": best and best["name"],
                "reaches_bar": False}

    def clean(path: str, out: Any, *, config: Any = None, report_path: Any = None, on_progress: Any = None) -> dict[str, Any]:
        calls.append(("clean", path))
        if state["fail"] == "clean":
            from tools.errors import InputError

            raise InputError("no usable rows", where=f"{path}:1", fix="check the format")
        Path(out).write_text('{"messages": []}\n')
        emit(on_progress, ProgressEvent("clean", 1, 1))
        return {"input_rows": 1200, "kept_rows": 1100, "removed": {"duplicate": 100}, "flagged": 0,
                "examples": [1, 2, 3], "histograms": {}, "dataset_sha256": "x", "out": str(out)}

    def split(path: str, out_dir: Any, *, seed: int = 0, on_progress: Any = None) -> dict[str, Any]:
        calls.append(("split", path, seed))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        files = {k: str(Path(out_dir) / f"{k}.jsonl") for k in ("train", "val", "test")}
        Path(files["val"]).write_text('{"messages": []}\n' * 165)  # the short run reads its first rows
        return {"train": 770, "val": 165, "test": 165, "files": files, "rule": "data.split.lt_5k", "warnings": []}

    def train(config: TrainConfig, *, on_progress: Any = None, should_stop: Any = None) -> dict[str, Any]:
        calls.append(("train", config))
        if state["fail"] == "train":
            from tools.errors import OutOfMemoryError

            raise OutOfMemoryError("CUDA out of memory", fix="use qlora")
        for i in range(5):
            emit(on_progress, ProgressEvent("train", i + 1, 5, {"loss": 2.0 - i * 0.3}))
        return {"run_id": "run-1", "status": "completed", "best_val_loss": 0.8, "steps": 5, "train_seconds": 1.0,
                "peak_memory_mb": 100, "artifacts": {"adapter": "/x/adapter"}}

    def evaluate_test(run_id: str, test: str, *, metric: Any = None, on_progress: Any = None,
                      limit: int | None = None) -> dict[str, Any]:
        calls.append(("evaluate_test", run_id, test))
        state["limits"]["evaluate_test"] = limit
        if state["fail"] == "evaluate":
            from tools.errors import ModelNotFoundError

            raise ModelNotFoundError("unknown model 'tiny'")
        return {"quality": state["test_quality"], "metric": "accuracy", "n": 165, "ci95": [0.9, 0.97]}

    def compare(run_id: str, test: str, *, n: int = 30, limit: int | None = None) -> dict[str, Any]:
        calls.append(("compare", run_id, n))
        state["limits"]["compare"] = limit
        return {"rows": [{"input": "a", "expected": "b", "base": "c", "tuned": "b"}] * 3}

    def forgetting(run_id: str, *, probes: Any = None, on_progress: Any = None, limit: int | None = None
                   ) -> dict[str, Any]:
        calls.append(("forgetting", run_id))
        state["limits"]["forgetting"] = limit
        if state["fail"] == "forgetting":
            raise AttributeError("module 'tools.scoring.metrics' has no attribute 'any_of'")
        return {"base_score": 1.0, "tuned_score": 1.0, "drop": 0.0, "verdict": "preserved", "degraded": False}

    def ab(a: str, b: str, test: str, *, bar: float = 0.10, limit: int | None = None) -> dict[str, Any]:
        calls.append(("ab", a, b))
        state["limits"]["ab"] = limit
        return {"metric": "label_accuracy", "diff": 0.25, "diff_ci95": [0.1, 0.4], "roi": {"verdict": "worth_it"}}

    def diagnose(run_id: str) -> dict[str, Any]:
        calls.append(("diagnose", run_id))
        return {"verdict": "overfitting", "issues": [{"id": "diag.overfitting"}], "next_config": {}}

    pe = types.ModuleType("tools.prompt.evaluation")
    pe.PromptEvalConfig = FakePromptEvalConfig  # type: ignore[attr-defined]
    pe.run_prompt_eval = run_prompt_eval  # type: ignore[attr-defined]
    tr = types.ModuleType("tools.train")
    tr.TrainConfig = TrainConfig  # type: ignore[attr-defined] - the real one: the plan maps onto it
    tr.train = train  # type: ignore[attr-defined]
    ev = types.ModuleType("tools.evaluate")
    for fn in (evaluate_test, compare, forgetting, ab):
        setattr(ev, fn.__name__, fn)
    dg = types.ModuleType("tools.train.diagnose")
    dg.diagnose = diagnose  # type: ignore[attr-defined]
    import tools.prompt

    for name, mod in (("prompt.evaluation", pe), ("train", tr), ("evaluate", ev), ("train.diagnose", dg)):
        monkeypatch.setitem(sys.modules, f"tools.{name}", mod)
    monkeypatch.setattr(tools.prompt, "evaluation", pe, raising=False)
    monkeypatch.setattr(tools, "train", tr, raising=False)
    monkeypatch.setattr(tools, "evaluate", ev, raising=False)
    from agent import pipeline

    monkeypatch.setattr(pipeline, "TRAIN_RUNNER", pipeline.train_in_process)  # the fake trainer is in this process
    monkeypatch.setattr(tools.data, "clean", clean, raising=False)
    monkeypatch.setattr(tools.data, "split", split, raising=False)
    test_file = tmp_path / "test.jsonl"
    test_file.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}\n')
    data_file = tmp_path / "data.jsonl"
    data_file.write_text(test_file.read_text() * 3)
    state["test_file"] = str(test_file)
    state["data_file"] = str(data_file)
    return state


@pytest.fixture
def memory_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory estimate from the seed's table instead of tools.estimate (exact numbers to assert)."""
    from agent import pipeline, routing

    monkeypatch.setattr(pipeline, "estimate_memory", lambda params_b, method, **kw: routing.memory_estimate(params_b, method))


@pytest.fixture(autouse=True)
def no_device_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never import torch to detect a GPU in advisor tests: report a CPU-only machine."""
    from agent import graph

    monkeypatch.setattr(graph, "detect_device", lambda: {"kind": "cpu", "gpus": 0, "gpu_memory_gb": None})
