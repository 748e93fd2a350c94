"""The learning curve: the power-law fit on synthetic points (every refusal path), and one tiny-model run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tools.evaluate.learning_curve import CurveConfig, fit_curve, learning_curve


def rows(quality: float, n: int = 400, seed: int = 0) -> list[float]:
    """``n`` per-row scores whose mean is ``quality`` (exactly, rounded to a row)."""
    k = round(quality * n)
    items = [1.0] * k + [0.0] * (n - k)
    random.Random(seed).shuffle(items)
    return items


def power_law_points(ns: list[int], a: float = 4.0, b: float = 0.35, rows_n: int = 400) -> list[tuple[int, list[float]]]:
    return [(n, rows(1 - a * n ** -b, rows_n, seed=i)) for i, n in enumerate(ns)]


def test_a_clean_power_law_is_recovered_and_extrapolated() -> None:
    pts = power_law_points([250, 500, 1000])
    fit = fit_curve(pts, bar=0.80)
    assert fit.can_extrapolate and fit.why_not is None
    assert fit.b == pytest.approx(0.35, abs=0.03)
    two = next(p for p in fit.predictions if p["factor"] == 2)
    assert two["n"] == 2000 and two["quality"] == pytest.approx(1 - 4 * 2000 ** -0.35, abs=0.01)
    assert two["band"][0] <= two["quality"] <= two["band"][1]
    # 1 - 4 n^-0.35 = 0.8  ->  n = 20^(1/0.35) ~ 5,169: inside 10x of 1,000
    assert fit.n_to_bar == pytest.approx(20 ** (1 / 0.35), rel=0.25)
    lo, hi = fit.n_to_bar_band
    assert lo is not None and lo <= fit.n_to_bar and (hi is None or hi >= fit.n_to_bar)


def test_a_bar_beyond_ten_times_the_data_is_not_a_number() -> None:
    fit = fit_curve(power_law_points([250, 500, 1000]), bar=0.97)
    assert fit.can_extrapolate and fit.n_to_bar is None  # needs ~ 10^6 examples: "not within 10x"
    assert max(p["factor"] for p in fit.predictions) == 10 and fit.predictions[-1]["quality"] < 0.97


def test_too_few_points() -> None:
    fit = fit_curve(power_law_points([500, 1000]), bar=0.8)
    assert not fit.can_extrapolate and fit.why_not == "too few points" and not fit.predictions


def test_too_flat() -> None:
    fit = fit_curve([(250, rows(0.60)), (500, rows(0.605, seed=1)), (1000, rows(0.61, seed=2))], bar=0.8)
    assert not fit.can_extrapolate and fit.why_not == "too flat"


def test_too_noisy_to_extrapolate() -> None:
    # 20 test rows and a bumpy curve: the bootstrap band at 2x the data is far wider than 30 points
    pts = [(100, rows(0.20, 20)), (200, rows(0.50, 20, seed=1)), (400, rows(0.35, 20, seed=2))]
    fit = fit_curve(pts, bar=0.9)
    assert not fit.can_extrapolate and fit.why_not == "too noisy"
    two = fit.predictions[0]
    assert two["band"][1] - two["band"][0] > 0.30


def _pairs(n: int, seed: int, shape: str = "label") -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randrange(10), rng.randrange(10)
        answer = ("even" if (a + b) % 2 == 0 else "odd") if shape == "label" else \
            f"Adding {a} and {b} gives {a + b}, which is {'an even' if (a + b) % 2 == 0 else 'an odd'} number."
        out.append({"messages": [{"role": "user", "content": f"{a} plus {b}?"},
                                 {"role": "assistant", "content": answer}]})
    return out


@pytest.mark.parametrize("shape,metric", [("label", "label_accuracy"), ("text", "chrf")])
def test_tiny_model_end_to_end(tiny_model_dir: Path, tmp_path: Path, shape: str, metric: str) -> None:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in _pairs(48, 0, shape)))
    test.write_text("".join(json.dumps(r) + "\n" for r in _pairs(16, 1, shape)))
    events = []
    res = learning_curve(CurveConfig(train=str(train), test=str(test), model=str(tiny_model_dir), bar=0.9,
                                     max_steps=4, per_device_batch_size=4, max_new_tokens=4),
                         on_progress=events.append)
    assert [p.n for p in res.points] == [12, 24, 48]  # nested 25/50/100% subsets
    assert [p.steps for p in res.points] == [1, 2, 4]  # the same passes over each subset
    assert all(len(p.per_item) == 16 for p in res.points) and res.test_rows == 16
    assert res.metric == metric and res.cost_seconds > 0
    doc = res.to_dict()
    json.dumps(doc)
    assert doc["can_extrapolate"] in (True, False) and "per_item" not in doc["points"][0]
    assert "examples" in doc["message"] and "min" in doc["message"]
    assert events[-1].step == 3 and events[-1].stage == "learning_curve"
