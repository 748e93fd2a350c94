"""Prompt baseline (Step 1) and variant search (Step 2): prompts, shots, scoring, logging, best-variant choice."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tools.errors import InputError
from tools.generation import Generation
from tools.prompt import evaluation as pe
from tools.runlog import RunLog
from tools.types import Example


def _write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": i},
                                                     {"role": "assistant", "content": o}]}) + "\n"
                            for i, o in rows))
    return path


LABELLED = [("my card has not arrived", "card_arrival"), ("I want my money back", "refund"),
            ("where is the card I ordered", "card_arrival"), ("refund my purchase please", "refund"),
            ("how do I top up", "top_up"), ("add money to my account", "top_up")]
TRAIN = [("card still not here", "card_arrival"), ("give me a refund", "refund"), ("top up with a card", "top_up"),
         ("new card delivery time", "card_arrival"), ("return and refund", "refund"), ("topping up limits", "top_up"),
         ("did my card ship", "card_arrival"), ("refund status", "refund"), ("top up failed", "top_up"),
         ("card tracking", "card_arrival"), ("refund taking long", "refund"), ("top up by transfer", "top_up")]


class KeywordBackend:
    """A fake model: answers by keyword, better when the system message lists the labels, 'thinks' under CoT."""

    name = "keyword-fake"
    mode = "batched"

    def __init__(self) -> None:
        self.calls: list[list[list[dict[str, str]]]] = []

    def generate(self, prompts: Sequence[list[dict[str, str]]], *, max_new_tokens: int,
                 on_progress=None) -> list[Generation]:
        self.calls.append([list(p) for p in prompts])
        out = []
        for p in prompts:
            system = p[0]["content"] if p[0]["role"] == "system" else ""
            text = p[-1]["content"]
            guess = "refund" if "refund" in text or "money back" in text else \
                "top_up" if "top" in text or "add money" in text else "card_arrival"
            if "exactly one of these labels" not in system and "card" not in text:
                guess = "I think " + guess.replace("_", " ") + " maybe"  # unlabelled chatter misses
                guess = "no idea"
            if "step by step" in system:
                guess = f"The user talks about money.\nAnswer: {guess}"
            out.append(Generation(guess, 100 + 10 * sum(m["role"] == "assistant" for m in p), 3, 5.0))
        return out

    def count_tokens(self, messages: list[dict[str, str]]) -> int | None:
        return 20


def test_build_messages_and_shot_selection() -> None:
    shots = [Example.from_pair(i, o) for i, o in TRAIN]
    picked = pe.select_shots(shots, 3, labels=True, seed=0)
    assert sorted(e.output_text for e in picked) == ["card_arrival", "refund", "top_up"]  # one per label
    assert pe.select_shots(shots, 3, labels=True, seed=0) == picked  # seeded
    leak = pe.select_shots(shots, 12, labels=False, exclude={"card tracking"})
    assert "card tracking" not in [e.input_text for e in leak] and len(leak) == 11
    ex = Example.from_pair("hello", "x", system="ignored")
    msgs = pe.build_messages("SYS", picked[:1], ex)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0]["content"] == "SYS" and msgs[-1]["content"] == "hello"


def test_final_answer_and_format_spec() -> None:
    assert pe.final_answer("hmm\nthinking\nAnswer: refund") == "refund"
    assert pe.final_answer("answer: a\nmore\nANSWER:  b ") == "b"
    assert pe.final_answer("no marker\nlast line") == "last line"
    assert "a, b" in pe.format_spec(["a", "b"], None)
    assert '"type": "object"' in pe.format_spec(None, {"type": "object"})


def test_step1_with_fake_backend_logs_everything(tmp_path: Path) -> None:
    test = _write_jsonl(tmp_path / "test.jsonl", LABELLED)
    train = _write_jsonl(tmp_path / "train.jsonl", TRAIN)
    be = KeywordBackend()
    events = []
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots=3, shots_from=str(train), bar=0.9),
                             backend=be, on_progress=events.append).to_dict()
    assert res["metric"] == "label_accuracy" and res["n"] == 6
    # The baseline of a label task lists the labels (issue 22): every row is answered with a label -> 6/6
    assert res["quality"] == 1.0 and "card_arrival, refund, top_up" in res["variants"][0]["system"]
    assert res["ci95"][0] < res["quality"] == res["ci95"][1]
    # With the user's own system message the prompt is as given: refund/top_up rows answer "no idea" -> 2/6
    own = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots=3, shots_from=str(train), bar=0.9,
                                                 system="Classify the message."), backend=KeywordBackend()).to_dict()
    assert own["quality"] == pytest.approx(2 / 6, abs=1e-4) and own["variants"][0]["system"] == "Classify the message."
    assert set(res["latency_ms"]) >= {"p50", "p95"} and res["prompt_tokens"]["mean"] == 130
    assert res["savings"]["finetuned_prompt_tokens"] == 20 and res["savings"]["token_reduction"] > 0.8
    assert res["best"] == "baseline" and res["reaches_bar"] is True and len(res["variants"]) == 1
    assert own["reaches_bar"] is False
    # each look of a variant reports its score so far, for a live table: n, quality and its interval
    looks = [e for e in events if "n" in e.metrics]
    assert looks and looks[-1].message == f"baseline: {res['n']}/6 rows" and looks[-1].metrics["n"] == res["n"]
    assert looks[-1].metrics["quality"] == res["quality"] and looks[-1].metrics["ci_high"] == 1.0
    assert len(be.calls[0][0]) == 1 + 6 + 1  # system + 3 shot pairs + input
    log = RunLog()
    run = log.get_run(res["run_id"])
    assert run["status"] == "completed" and run["kind"] == "prompt_eval"
    assert run["config"]["shots"] == 3 and run["summary"]["quality"] == res["quality"]
    preds = log.query("SELECT * FROM predictions WHERE run_id = ? ORDER BY idx", [res["run_id"]])
    assert len(preds) == 6 and preds[0]["expected"] == "card_arrival" and preds[0]["correct"] is True
    assert events and events[-1].stage == "prompt_eval"


def test_variant_search_picks_the_best_and_checks_the_bar(tmp_path: Path) -> None:
    test = _write_jsonl(tmp_path / "test.jsonl", LABELLED)
    train = _write_jsonl(tmp_path / "train.jsonl", TRAIN)
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots_from=str(train), variants=True, bar=0.9,
                                                 system="Classify the message."), backend=KeywordBackend()).to_dict()
    names = [v["name"] for v in res["variants"]]
    assert names[:5] == ["baseline", "shots_5", "shots_10", "chain_of_thought", "format_spec"]
    assert "system_alt_1" in names and "system_alt_2" in names
    by = {v["name"]: v for v in res["variants"]}
    assert by["format_spec"]["quality"] == 1.0 and by["baseline"]["quality"] < 1.0
    assert by["shots_10"]["shots"] == 10 and by["shots_10"]["prompt_tokens"]["mean"] == 200
    # the format spec and the alt systems (which carry the spec) all reach 1.0; the fewest tokens wins
    assert res["best"] in {"format_spec", "system_alt_1", "system_alt_2"} and res["reaches_bar"] is True
    assert res["baseline_reaches_bar"] is False and res["rule"] == "dt.step2.quality_bar"
    evals = RunLog().query("SELECT details FROM evaluations WHERE run_id = ?", [res["run_id"]])
    assert len(evals) == len(names)


def test_errors_are_user_errors(tmp_path: Path) -> None:
    test = _write_jsonl(tmp_path / "test.jsonl", LABELLED)
    with pytest.raises(InputError, match="shots-from"):
        pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots=2), backend=KeywordBackend())
    with pytest.raises(InputError, match="not found"):
        pe.run_prompt_eval(pe.PromptEvalConfig(str(tmp_path / "nope.jsonl")), backend=KeywordBackend())
    with pytest.raises(InputError):
        pe.run_prompt_eval(pe.PromptEvalConfig(str(test), metric="nomodule_xyz:f"), backend=KeywordBackend())


def test_json_schema_metric_and_default_bar(tmp_path: Path) -> None:
    rows = [("name: Ann, age 3", '{"name": "Ann", "age": 3}'), ("name: Bo, age 5", '{"name": "Bo", "age": 5}')]
    test = _write_jsonl(tmp_path / "t.jsonl", rows)
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "required": ["name", "age"]}))

    class Echo(KeywordBackend):
        def generate(self, prompts, *, max_new_tokens, on_progress=None):
            return [Generation('{"name": "x", "age": 1}' if "Ann" in p[-1]["content"] else "oops", 10, 5, 1.0)
                    for p in prompts]

    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), schema=str(schema)), backend=Echo()).to_dict()
    assert res["metric"] == "json_schema" and res["quality"] == 0.5 and res["bar"] == pe.default_bar() == 0.9


def test_step1_and_variants_on_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The real local path end to end, on the 2-layer random model (quality is meaningless, plumbing is not)."""
    test = _write_jsonl(tmp_path / "test.jsonl", LABELLED[:4])
    train = _write_jsonl(tmp_path / "train.jsonl", TRAIN)
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots=1, shots_from=str(train), variants=True,
                                                 model=str(tiny_model_dir), max_new_tokens=4,
                                                 cot_max_new_tokens=6, batch_size=2)).to_dict()
    assert res["n"] == 4 and 0.0 <= res["quality"] <= 1.0 and res["model"] == tiny_model_dir.name
    assert res["latency_ms"]["mode"] == "batched" and res["prompt_tokens"]["mean"] > 20
    assert {v["name"] for v in res["variants"]} >= {"baseline", "shots_5", "shots_10", "chain_of_thought",
                                                   "format_spec"}
    assert isinstance(res["reaches_bar"], bool) and res["best"] in {v["name"] for v in res["variants"]}
    # Evaluation and A/B rebuild the best prompt from the run log: system message and the same demonstrations.
    from tools import evaluate

    var = evaluate.prompt_variant(f"prompt:{res['run_id']}")
    best = next(v for v in res["variants"] if v["name"] == res["best"])
    assert var.system == best["system"] and len(var.few_shot) == best["shots"]
    assert [s["input"] for s in best["few_shot"]] == [q for q, _ in var.few_shot]


@pytest.mark.real_model
def test_real_model_on_banking77_rows(banking77: Path, tmp_path: Path) -> None:
    """SmolLM2 on four banking77 rows, zero-shot with the label list: runs, scores labels, logs."""
    with (banking77 / "test.csv").open() as f:
        rows = list(csv.DictReader(f))[::700][:4]
    test = tmp_path / "test.csv"
    with test.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "category"])
        w.writeheader()
        w.writerows(rows)
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test), shots=2, shots_from=str(banking77 / "train.csv"),
                                                 max_new_tokens=12)).to_dict()
    assert res["metric"] == "label_accuracy" and res["n"] == 4 and res["labels"] == 77
    logged = RunLog().query("SELECT eval_id, idx FROM predictions WHERE run_id = ?", [res["run_id"]])
    # each 4-row scoring is logged under its own evaluation: generated answers, and for labels choice mode too
    by_eval: dict[str, list[int]] = {}
    for row in logged:
        by_eval.setdefault(row["eval_id"], []).append(row["idx"])
    assert res["prompt_tokens"]["mean"] > 50 and by_eval and all(sorted(v) == [0, 1, 2, 3] for v in by_eval.values())


@pytest.mark.real_model
def test_mbpp_slice_pass_at_1_on_the_embedded_model(tmp_path: Path) -> None:
    """Done-when (issue 14): on an MBPP slice the embedded model's prompt baseline reports pass@1 from executed
    tests with a CI. The 135M model rarely writes a passing program; the number is whatever it is."""
    src = Path(__file__).resolve().parents[4] / "shared" / "data" / "mbpp" / "mbpp.jsonl"
    rows = [json.loads(line) for line in src.read_text().splitlines()[10:13]]
    test = tmp_path / "mbpp_slice.jsonl"
    test.write_text("".join(json.dumps({
        "messages": [{"role": "system", "content": "You are an expert Python programmer. Reply with the "
                                                   "function in one ```python code block."},
                     {"role": "user", "content": f"{r['text']}\nYour code should pass this test:\n"
                                                 f"{r['test_list'][0]}"},
                     {"role": "assistant", "content": r["code"]}],
        "meta": {"tests": r["test_list"]}}) + "\n" for r in rows))
    res = pe.run_prompt_eval(pe.PromptEvalConfig(str(test)))
    assert res.metric == "pass_at_1" and res.share and res.n == 3
    assert res.ci95[0] <= res.quality <= res.ci95[1] and 0 < res.ci95[1] <= 1
    assert res.max_new_tokens > 32 and "python_syntax" in res.to_dict()
