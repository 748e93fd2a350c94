"""The data-size criterion reads a measured learning curve: its reason changes with the curve."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest

from agent import routing
from agent.advisor import Advisor
from tests.agent.test_advisor_session import SCRIPT, drive
from tools.learning_curve import fit_curve


def curve(points: list[tuple[int, float]], *, bar: float, rows: int = 400) -> dict[str, Any]:
    """A curve document as tools.learning_curve writes it, from (n, quality) points on ``rows`` test rows."""
    items = [(n, [1.0] * round(q * rows) + [0.0] * (rows - round(q * rows))) for n, q in points]
    fit = fit_curve(items, bar=bar)
    return {"points": [{"n": n, "quality": q, "ci95": [max(0, q - 0.05), min(1, q + 0.05)]} for n, q in points],
            "can_extrapolate": fit.can_extrapolate, "why_not": fit.why_not, "predictions": fit.predictions,
            "n_to_bar": fit.n_to_bar, "n_to_bar_band": fit.n_to_bar_band, "bar": bar, "cost_seconds": 300.0}


RISING = [(750, 1 - 4 * 750 ** -0.35), (1500, 1 - 4 * 1500 ** -0.35), (3000, 1 - 4 * 3000 ** -0.35)]


def test_the_size_reason_changes_with_the_curve() -> None:
    _, plain = routing.dataset_size(3000)
    assert [r.rule for r in plain] == ["size.band.1k_10k", "ftw.min_examples"]

    decision, reasons = routing.dataset_size(3000, curve=curve(RISING, bar=0.85), bar=0.85)
    lc = reasons[1]
    assert decision == "continue" and lc.rule == "lc.reaches_bar"
    assert lc.text.startswith("At 3,000 examples the model reaches 76% [71%–81%]")
    assert "reaches your 85% bar at about" in lc.text and lc.evidence["n_to_bar"] > 3000

    _, reasons = routing.dataset_size(3000, curve=curve(RISING, bar=0.99), bar=0.99)
    assert reasons[1].rule == "lc.below_bar" and "will not reach your 99% bar" in reasons[1].text
    assert "larger base model" in reasons[1].text

    flat = curve([(750, 0.60), (1500, 0.605), (3000, 0.61)], bar=0.9)
    _, reasons = routing.dataset_size(3000, curve=flat, bar=0.9)
    assert reasons[1].rule == "lc.cannot_extrapolate" and "too flat to extrapolate" in reasons[1].text


def test_too_noisy_curve_leaves_the_band_alone() -> None:
    noisy = curve([(100, 0.20), (200, 0.50), (400, 0.35)], bar=0.9, rows=20)
    assert noisy["why_not"] == "too noisy"
    decision, reasons = routing.dataset_size(400, curve=noisy, bar=0.9)
    assert decision == "collect_more_data"  # the seed's band stands on its own
    assert [r.rule for r in reasons] == ["size.band.100_1k", "lc.cannot_extrapolate"]
    assert "too noisy to extrapolate" in reasons[1].text


def test_a_curve_already_at_the_bar_outranks_the_band() -> None:
    at_bar = curve([(200, 0.80), (400, 0.88), (800, 0.93)], bar=0.9)
    decision, reasons = routing.dataset_size(800, curve=at_bar, bar=0.9)
    assert decision == "continue" and reasons[1].rule == "lc.reaches_bar" and "already at your 90% bar" in reasons[1].text
    assert routing.decide({"bar": 0.9, "prompt_quality": 0.6, "optimized_quality": 0.7, "goals": ["quality"],
                           "n_examples": 800, "gpu_memory_gb": 24, "gpus": 1}, at_bar)["path"] == "fine_tune"


@dataclass
class FakeCurveConfig:
    train: str
    test: str
    model: str = ""
    bar: float | None = None
    max_steps: int | None = None
    per_device_batch_size: int = 8
    test_rows: int | None = None
    method: str = "lora"
    learning_rate: float | None = None


@pytest.mark.parametrize("points,rule", [(RISING, "lc.below_bar"),  # the 90% bar needs ~37,000: beyond 10x
                                         ([(750, 0.60), (1500, 0.605), (3000, 0.61)], "lc.cannot_extrapolate")])
def test_the_pipeline_step_feeds_the_size_criterion(fake_tools: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                    points: list[tuple[int, float]], rule: str) -> None:
    seen: list[Any] = []

    class Result:
        def to_dict(self) -> dict[str, Any]:
            return curve(points, bar=0.9)

    def learning_curve(config: FakeCurveConfig, *, on_progress: Any = None) -> Result:
        seen.append(config)
        return Result()

    mod = types.ModuleType("tools.learning_curve")
    mod.CurveConfig = FakeCurveConfig  # type: ignore[attr-defined]
    mod.learning_curve = learning_curve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tools.learning_curve", mod)
    answers = {**SCRIPT, "test_set": fake_tools["test_file"], "model": "smollm2-135m-instruct", "go_on": "yes",
               "data": fake_tools["data_file"], "max_steps": "20", "learning_curve": "yes"}
    adv = Advisor()
    step = drive(adv, adv.start(), answers)
    assert step.kind == "done"
    assert seen and seen[0].train.endswith("train.jsonl") and seen[0].bar == 0.9 and seen[0].test_rows == 40
    rec = step.recommendation
    assert not rec["pipeline"].get("errors"), rec["pipeline"].get("errors")
    assert rec["learning_curve"]["points"][-1]["n"] == 3000
    cited = [r["rule"] for r in rec["reasons"]]
    assert rule in cited and cited.count("size.band.1k_10k") == 1  # beside the band, each rule once
    assert "learning_curve" in rec["pipeline"]["timings"]
