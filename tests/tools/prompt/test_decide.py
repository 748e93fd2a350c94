"""Deciding in minutes (issue 25): the sequential stopping rule and the race of Step 2 variants, on fake backends."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from knowledge.loader import load
from knowledge.schema import DecideFile
from tools.generation import Generation
from tools.prompt import decide
from tools.prompt import evaluation as pe
from tools.prompt.variants import Variant

LABELS = ("card_arrival", "refund", "top_up")
TRAIN = [(f"train question {i}", LABELS[i % 3]) for i in range(15)]


def _rows(n: int) -> list[tuple[str, str]]:
    return [(f"row {i}: customer message", LABELS[i % 3]) for i in range(n)]


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in rows))
    return path


def _difficulty(row: int) -> float:
    return random.Random(row).random()


class AccuracyBackend:
    """A fake model that is right on a row when the row's fixed difficulty is below the prompt's accuracy, so a
    better prompt is right wherever a worse one is (the ranking holds on every subset of rows)."""

    name = "accuracy-fake"
    mode = "batched"

    def __init__(self, accuracy: dict[str, float] | float) -> None:
        self.accuracy = accuracy
        self.rows_answered = 0

    def variant_of(self, prompt: Sequence[dict[str, str]]) -> str:
        system = prompt[0]["content"] if prompt[0]["role"] == "system" else ""
        shots = sum(m["role"] == "assistant" for m in prompt)
        if "meticulous" in system:
            return "system_alt_1"
        if "precise assistant" in system:
            return "system_alt_2"
        if "step by step" in system:
            return "chain_of_thought"
        if "exactly one of these labels" in system:
            return "format_spec"
        return {5: "shots_5", 10: "shots_10"}.get(shots, "baseline")

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, max_new_tokens: int,
                 on_progress: object = None) -> list[Generation]:
        out = []
        for p in prompts:
            row = int(p[-1]["content"].split(":")[0].split()[1])
            acc = self.accuracy if isinstance(self.accuracy, float) else self.accuracy[self.variant_of(p)]
            right = LABELS[row % 3]
            text = right if _difficulty(row) < acc else LABELS[(row + 1) % 3]
            out.append(Generation(text, 50 + len(p), 2, 1.0))
        self.rows_answered += len(prompts)
        return out

    def count_tokens(self, messages: object) -> int:
        return 10


def _eval(tmp_path: Path, backend: AccuracyBackend, n: int = 300, **kw: object) -> dict:
    test = _write(tmp_path / "test.jsonl", _rows(n))
    train = _write(tmp_path / "train.jsonl", TRAIN)
    cfg = pe.PromptEvalConfig(str(test), shots_from=str(train), bar=0.9, **kw)  # type: ignore[arg-type]
    return pe.run_prompt_eval(cfg, backend=backend).to_dict()


# ---------------------------------------------------------------------------------------------- the rule

def test_rule_comes_from_knowledge_and_plans_its_looks() -> None:
    raw = {name: load().rule(rid).raw for name, rid in (("sequential_stop", "eval.sequential.stop"),
                                                        ("race", "eval.race.halving"))}
    DecideFile.model_validate({"version": 1, **raw})
    rule = decide.stop_rule()
    assert rule.rule_id == "eval.sequential.stop" and rule.race_rule_id == "eval.race.halving"
    assert rule.looks(300) == [20, 40, 80, 160, 300]
    assert rule.looks(300, full=True) == [300] and rule.looks(15) == [15]
    assert rule.alpha_per_look(5, 7) == pytest.approx(rule.alpha / 35)
    assert decide.row_order(50, 0) == decide.row_order(50, 0) != list(range(50))
    assert sorted(decide.row_order(50, 1)) == list(range(50))


# ---------------------------------------------------------------------------------------------- Step 1

def test_clearly_bad_prompt_stops_at_the_first_look(tmp_path: Path) -> None:
    be = AccuracyBackend(0.1)
    res = _eval(tmp_path, be)
    seq = res["sequential"]
    assert seq["stopped_early"] is True and seq["verdict"] == "below" and res["n"] == 20 == seq["n"]
    assert seq["message"] == "stopped early: decisive at n=20 of 300" and res["decision"] == seq["message"]
    assert seq["decision_ci"][1] < 0.9 and seq["rule"] == "eval.sequential.stop"
    assert be.rows_answered == 20 and res["reaches_bar"] is False and res["baseline_reaches_bar"] is False
    assert res["n_total"] == 300 and res["full"] is False


def test_clearly_good_prompt_stops_once_the_lower_bound_clears_the_bar(tmp_path: Path) -> None:
    res = _eval(tmp_path, AccuracyBackend(1.0))
    seq = res["sequential"]
    # 20/20 and 40/40 right leave the lower bound (at alpha/5) under 0.9; 80/80 clears it
    assert seq["verdict"] == "above" and res["n"] == 80 and seq["stopped_early"] is True
    assert seq["decision_ci"][0] >= 0.9 and res["baseline_reaches_bar"] is True and res["reaches_bar"] is True


def test_borderline_prompt_is_scored_on_every_row(tmp_path: Path) -> None:
    # right on 90% of rows against a 0.9 bar: no number of rows decides it
    res = _eval(tmp_path, AccuracyBackend(0.9))
    seq = res["sequential"]
    assert res["n"] == 300 and seq["stopped_early"] is False and seq["verdict"] == "undecided"
    assert seq["message"].startswith("scored every row (n=300)")
    assert res["reaches_bar"] is (res["quality"] >= 0.9)


def test_full_scores_every_row(tmp_path: Path) -> None:
    be = AccuracyBackend(0.1)
    res = _eval(tmp_path, be, full=True)
    assert res["n"] == 300 and be.rows_answered == 300 and res["full"] is True
    assert res["sequential"]["looks"] == [300] and res["sequential"]["stopped_early"] is False


def test_a_similarity_is_never_stopped_against_the_bar() -> None:
    rule = decide.stop_rule()
    arm = decide.Arm(Variant("baseline", "prompt", None, None, []))

    def scorer(v: Variant, rows: list[int]) -> tuple[list[Generation], list[str], list[str], list[float]]:
        return [Generation("x", 1, 1, 1.0)] * len(rows), ["x"] * len(rows), ["x"] * len(rows), [0.01] * len(rows)

    out = decide.measure_sequentially(arm, decide.row_order(100, 0), rule.looks(100), None, rule, scorer)
    assert out.n == 100 and out.verdict == "not_a_share" and not out.stopped_early


# ---------------------------------------------------------------------------------------------- Step 2: the race

ACCURACY = {"baseline": 0.3, "shots_5": 0.4, "shots_10": 0.5, "chain_of_thought": 0.2, "format_spec": 0.85,
            "system_alt_1": 0.6, "system_alt_2": 0.7}


def test_race_drops_the_worse_half_and_finds_the_full_sweeps_winner(tmp_path: Path) -> None:
    full_be, race_be = AccuracyBackend(ACCURACY), AccuracyBackend(ACCURACY)
    full = _eval(tmp_path, full_be, n=160, variants=True, system="Classify the message.", full=True)
    raced = _eval(tmp_path, race_be, n=160, variants=True, system="Classify the message.")
    assert full["best"] == "format_spec" == raced["best"] == raced["race"]["winner"]
    assert full["reaches_bar"] is raced["reaches_bar"] is False
    race = raced["race"]
    first = race["dropped"][:3]
    # 7 variants on the first 20 rows: the 3 worst go, each compared on those rows with the leader
    assert {d["name"] for d in first} == {"baseline", "chain_of_thought", "shots_5"}
    assert all(d["at_n"] == 20 and d["vs"] == "format_spec" and d["diff"] < 0 for d in first)
    by = {v["name"]: v for v in raced["variants"]}
    assert by["chain_of_thought"]["dropped_at"] == 20 and by["chain_of_thought"]["n"] == 20
    assert "dropped_at" not in by["format_spec"]
    assert race_be.rows_answered < full_be.rows_answered == 7 * 160
    assert race["generations"] < race["generations_full"] == 7 * 160
    assert "dropped" in race["message"] and raced["rule"] == "dt.step2.quality_bar"


def test_race_stops_when_every_survivor_is_clearly_below_the_bar(tmp_path: Path) -> None:
    be = AccuracyBackend({k: 0.1 for k in ACCURACY})
    res = _eval(tmp_path, be, n=300, variants=True, system="Classify the message.")
    assert res["race"]["decision"]["verdict"] == "below" and res["race"]["decision"]["stopped_early"] is True
    assert be.rows_answered == 7 * 20 and res["reaches_bar"] is False


def test_race_with_one_look_drops_nothing() -> None:
    rule = decide.stop_rule()
    arms = [decide.Arm(Variant(name, "prompt", None, None, [])) for name in ("a", "b", "c")]
    acc = {"a": 0.2, "b": 0.6, "c": 0.4}

    def scorer(v: Variant, rows: list[int]) -> tuple[list[Generation], list[str], list[str], list[float]]:
        items = [float(_difficulty(r) < acc[v.name]) for r in rows]
        return [Generation("x", 1, 1, 1.0)] * len(rows), ["x"] * len(rows), ["x"] * len(rows), items

    order = decide.row_order(60, 0)
    out = decide.race(arms, order, [60], 0.99, rule, scorer)
    assert out.winner == "b" and out.dropped == [] and all(a.n == 60 for a in arms)
