"""Issue 13: one task profile, a measured code detector, kind-aware cleaning, columns found by name, proof on
MBPP, banking77 and the Alpaca seed tasks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.tools._code_samples import CODE, PROSE
from tests.tools._data_fixtures import banking77_dir
from tools.data import clean, inspect, load
from tools.data.code_detect import detect_code
from tools.data.config import CleanConfig
from tools.data.formats import AmbiguousColumnsError
from tools.data.profile import detect_profile
from tools.types import Example

SHARED = banking77_dir().parent
MBPP = SHARED / "mbpp" / "mbpp.jsonl"
ALPACA = SHARED / "alpaca_seed" / "seed_tasks.jsonl"
BANKING = banking77_dir() / "train.csv"


# ---------------------------------------------------------------------------------------------- code detector
def test_code_detector_precision_and_recall_on_labelled_data() -> None:
    mbpp = [json.loads(line) for line in MBPP.read_text(encoding="utf-8").splitlines()]
    with BANKING.open(encoding="utf-8") as f:
        utterances = [r["text"] for r in csv.DictReader(f)][:3000]
    positives = [(r["code"], "python") for r in mbpp] + CODE
    negatives = [r["text"] for r in mbpp] + utterances + PROSE
    found = [detect_code(t) for t, _ in positives]
    recall = sum(f is not None for f in found) / len(found)
    lang_ok = sum(f == lang for f, (_, lang) in zip(found, positives, strict=True)) / len(found)
    false_pos = sum(detect_code(t) is not None for t in negatives)
    precision = len(positives) * recall / (len(positives) * recall + false_pos)
    assert recall >= 0.99 and lang_ok >= 0.97 and precision >= 0.99, (recall, lang_ok, precision)
    for lang in ("python", "javascript", "typescript", "java", "c", "cpp", "csharp", "go", "rust", "shell", "sql",
                 "html", "css", "php", "ruby"):
        assert any(detect_code(t) == lang for t, want in CODE if want == lang), lang


# ---------------------------------------------------------------------------------------------- profile
def test_profiles_of_the_three_real_sets() -> None:
    mbpp = detect_profile(load(MBPP).examples)
    assert mbpp.output_kind == "code" and mbpp.code_languages[0] == "python" and mbpp.has_tests
    assert mbpp.input_language == "en"
    bank = detect_profile(load(BANKING).examples)
    assert bank.output_kind == "label" and len(bank.labels) == 77 and bank.input_language == "en"
    alpaca = detect_profile(load(ALPACA).examples)
    assert alpaca.output_kind == "text" and alpaca.output_language == "en" and "python" in alpaca.code_languages


def test_short_answers_and_user_override() -> None:
    rows = [Example.from_pair(f"What does line {i} of the program print?", str(i * 37 % 1000)) for i in range(200)]
    p = detect_profile(rows)
    assert p.output_kind == "short_answer" and p.source == "detected"
    q = detect_profile(rows, task_kind="text")
    assert q.output_kind == "text" and q.source == "user"


def test_inspect_shows_the_profile_and_mbpp_tests_are_kept(tmp_path: Path) -> None:
    r = inspect(MBPP)
    assert r.output_kind == "code" and r.to_dict()["profile"]["code_languages"] == ["python"]
    assert r.columns == {"input": "text", "output": "code", "context": None, "tests": "test_list"}
    ex = load(MBPP).examples[0]
    assert ex.input_text.startswith("Write a function") and "def min_cost" in ex.output_text
    assert ex.meta["tests"][0].startswith("assert min_cost(")
    assert inspect(MBPP, task_kind="text").to_dict()["profile"]["source"] == "user"


# ---------------------------------------------------------------------------------------------- columns
def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.parametrize("header", [["text", "intent"], ["question", "answer"], ["utterance", "sentiment"],
                                    ["source", "target"], ["prompt", "completion"], ["foo", "bar"]])
def test_columns_are_found_without_flags(tmp_path: Path, header: list[str]) -> None:
    p = _csv(tmp_path / "d.csv", header, [["Where is my card?", "card_arrival"], ["stop", "cancel"]])
    ex = load(p).examples
    assert [e.input_text for e in ex] == ["Where is my card?", "stop"]
    assert [e.output_text for e in ex] == ["card_arrival", "cancel"]


def test_ambiguous_columns_list_what_was_found(tmp_path: Path) -> None:
    p = _csv(tmp_path / "d.csv", ["alpha", "beta", "gamma"], [["a", "b", "c"]])
    with pytest.raises(AmbiguousColumnsError) as e:
        load(p)
    assert e.value.columns == ["alpha", "beta", "gamma"]
    assert "--input-col" in str(e.value) and "alpha, beta, gamma" in str(e.value)
    assert load(p, columns=("alpha", "gamma")).examples[0].output_text == "c"


def test_context_goes_before_the_question(tmp_path: Path) -> None:
    p = _csv(tmp_path / "qa.csv", ["context", "question", "answer"],
             [["The bank opens at nine.", "When does the bank open?", "At nine."]])
    assert load(p).examples[0].input_text == "The bank opens at nine.\n\nWhen does the bank open?"


# ---------------------------------------------------------------------------------------------- cleaning
def _jsonl(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                     {"role": "assistant", "content": a}]}) + "\n"
                            for q, a in pairs), encoding="utf-8")
    return path


def _non_dup_removed(r) -> int:  # noqa: ANN001
    return sum(v for k, v in r.removed.items() if k not in ("exact_duplicate", "near_duplicate"))


@pytest.mark.parametrize("path", [MBPP, BANKING, ALPACA], ids=["mbpp", "banking77", "alpaca_seed"])
def test_real_sets_lose_at_most_one_percent_to_filters(tmp_path: Path, path: Path) -> None:
    r = clean(path, tmp_path / "o.jsonl")
    assert _non_dup_removed(r) <= 0.01 * r.valid_rows, r.removed


def test_code_instruction_set_is_cleaned_as_code(tmp_path: Path) -> None:
    programs = [
        ("Write a Node server that answers ok.", "const app = express();\napp.get('/', (req, res) => res.send('ok'));"),
        ("Return an empty int array in Java.", "public int[] empty() {\n    return new int[0];\n}"),
        ("Count the lines of every text file.", "#!/bin/bash\nfor f in *.txt; do\n  wc -l \"$f\"\ndone"),
        ("My script logs this line:\nError: file not found\nHow do I check that the file exists first?",
         "if [ -f \"$1\" ]; then\n  cat \"$1\"\nfi"),
        ("What does print(5 * 5) print?", "25"),
        ("Is 3 > 4 in Python?", "False"),
        ("Which option is a list: A) 1 B) 'a' C) [1]?", "C"),
    ] + [(f"Write a Python function number {i} that adds {i}.", f"def add_{i}(x):\n    return x + {i}")
         for i in range(30)]
    r = clean(_jsonl(tmp_path / "c.jsonl", programs), tmp_path / "o.jsonl")
    assert r.output_kind == "code" and "python" in r.profile.code_languages
    assert r.kept_rows == len(programs), r.removed


def test_injected_defects_are_still_caught(tmp_path: Path) -> None:
    with BANKING.open(encoding="utf-8") as f:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(f)][:600]
    foreign = [("Wo ist meine Karte geblieben, ich warte schon seit zwei Wochen darauf?", "card_arrival"),
               ("Pourquoi mon virement n'est-il pas encore arrivé sur mon compte bancaire ?", "pending_transfer"),
               ("¿Por qué me cobraron dos veces la misma compra con mi tarjeta?", "transaction_charged_twice")]
    conflict = [("Is my card blocked for good now?", "card_not_working"),
                ("Is my card blocked for good now?", "pin_blocked")]
    defects = rows + foreign + conflict + [
        ("What is my balance?", "   "),                                        # empty answer
        ("Why was my card declined?", "Traceback (most recent call last):\n  File \"app.py\", line 3\nKeyError: 'x'"),
        (rows[0][0], rows[0][1]),                                              # exact duplicate
        (rows[1][0] + "!", rows[1][1]),                                        # near duplicate
        ("stop", "cancel_transfer"), ("no way", "cancel_transfer"),            # short utterances: kept
    ]
    r = clean(_jsonl(tmp_path / "b.jsonl", defects), tmp_path / "o.jsonl",
              config=CleanConfig(examples_per_reason=10))
    assert r.output_kind == "label"
    assert r.removed["empty"] == 1 and r.removed["error_marker"] == 1
    assert r.removed["exact_duplicate"] >= 1 and r.removed["near_duplicate"] >= 1
    assert r.removed["conflicting_label"] == 2
    assert r.removed["language"] >= 3
    lang_lines = {e["line"] for e in r.examples["language"]}
    assert {601, 602, 603} <= lang_lines
    kept = [json.loads(x)["messages"][0]["content"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert "stop" in kept and "no way" in kept
    assert r.removed["length"] == 0


def test_split_keeps_mbpp_tests_for_evaluation(tmp_path: Path) -> None:
    from tools.data import split

    r = split(MBPP, tmp_path / "s")
    assert r.test > 100 and r.to_dict()["test"] == r.test
    rows = [json.loads(x) for x in Path(r.files["test"]).read_text(encoding="utf-8").splitlines()]
    assert all(row["meta"]["tests"] and row["meta"]["tests"][0].startswith("assert ") for row in rows)
    assert all(set(row["meta"]) <= {"tests", "test_setup"} for row in rows)


def test_foreign_inputs_are_caught_after_the_language_vocabulary_is_learned(tmp_path: Path) -> None:
    """data.clean.language.vocabulary: after 2,000 texts, known-word rows skip language ID; foreign rows do not."""
    with BANKING.open(encoding="utf-8") as f:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(f)][:2600]
    foreign = [("Wo ist meine Karte geblieben, ich warte schon seit zwei Wochen darauf?", "card_arrival"),
               ("Pourquoi mon virement n'est-il pas encore arrivé sur mon compte bancaire ?", "pending_transfer"),
               ("¿Por qué me cobraron dos veces la misma compra con mi tarjeta?", "transaction_charged_twice")]
    r = clean(_jsonl(tmp_path / "b.jsonl", rows + foreign), tmp_path / "o.jsonl",
              config=CleanConfig(examples_per_reason=20, workers=1))
    lines = {e["line"] for e in r.examples.get("language", [])}
    assert {2601, 2602, 2603} <= lines
    assert r.removed["language"] <= 3 + 0.01 * len(rows), r.examples["language"]
