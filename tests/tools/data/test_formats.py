"""Every input format loads into the same canonical messages; bad rows are located; odd bytes read right."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.tools._data_fixtures import banking77_dir
from tools.data import load, write_examples, write_hf
from tools.data.formats import detect_format, load_examples
from tools.errors import InputError

PAIR = [{"role": "user", "content": "How do I reset my PIN?"},
        {"role": "assistant", "content": "Open the app and choose Reset PIN."}]


def _jsonl(path: Path, rows: list, *, newline: str = "\n", bom: bool = False) -> Path:
    text = newline.join(json.dumps(r, ensure_ascii=False) for r in rows) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _msgs(ex) -> list[dict]:
    return [m.to_dict() for m in ex.messages]


@pytest.mark.parametrize("fmt,record", [
    ("openai", {"messages": PAIR}),
    ("prompt_completion", {"prompt": PAIR[0]["content"], "completion": PAIR[1]["content"]}),
    ("input_output", {"input": PAIR[0]["content"], "output": PAIR[1]["content"]}),
    ("alpaca", {"instruction": PAIR[0]["content"], "input": "", "output": PAIR[1]["content"]}),
    ("sharegpt", {"conversations": [{"from": "human", "value": PAIR[0]["content"]},
                                    {"from": "gpt", "value": PAIR[1]["content"]}]}),
])
def test_jsonl_formats_give_the_same_messages(tmp_path: Path, fmt: str, record: dict) -> None:
    p = _jsonl(tmp_path / f"{fmt}.jsonl", [record, record])
    assert detect_format(p) == fmt
    res = load(p)
    assert res.format == fmt and res.rows == 2 and not res.problems
    assert _msgs(res.examples[0]) == PAIR
    assert res.examples[1].meta["line"] == 2
    assert _msgs(load(p, fmt).examples[0]) == PAIR  # named explicitly too


def test_alpaca_input_joins_the_instruction(tmp_path: Path) -> None:
    p = _jsonl(tmp_path / "a.jsonl", [{"instruction": "Classify the intent.", "input": "card lost", "output": "lost_card"}])
    ex = load(p).examples[0]
    assert ex.input_text == "Classify the intent.\n\ncard lost" and ex.output_text == "lost_card"


def test_json_array_file(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(json.dumps([{"messages": PAIR}] * 3), encoding="utf-8")
    res = load(p)
    assert res.rows == 3 and res.examples[2].meta["line"] == 3


def test_csv_with_named_and_guessed_columns(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "intent"])
        w.writerow(["1", "Where is my card?", "card_arrival"])
        w.writerow(["2", "Multi\nline question", "other"])
    guessed = load(p)  # found by name: question -> intent (the id column is bookkeeping)
    res = load(p, columns=("question", "intent"))
    assert [e.output_text for e in guessed.examples] == [e.output_text for e in res.examples]
    assert [e.output_text for e in res.examples] == ["card_arrival", "other"]
    assert res.examples[0].meta["label"] == "card_arrival"
    assert res.examples[1].input_text == "Multi\nline question"
    assert res.examples[1].meta["line"] == 3  # the line where the (two-line) row starts


def test_banking77_csv() -> None:
    banking77 = banking77_dir()
    res = load(banking77 / "test.csv")
    assert res.format == "csv" and len(res.examples) == res.rows > 3000
    assert res.examples[0].meta["label"] == res.examples[0].output_text


def test_parquet_and_hf_folder(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["hello there", "bye now"], "label": [1, 0]}), tmp_path / "d.parquet")
    res = load(tmp_path / "d.parquet")
    assert res.format == "parquet" and [e.output_text for e in res.examples] == ["1", "0"]
    pq.write_table(pa.table({"messages": [PAIR]}), tmp_path / "m.parquet")
    assert _msgs(load(tmp_path / "m.parquet").examples[0]) == PAIR

    folder = write_hf(load(tmp_path / "m.parquet").examples * 2, tmp_path / "ds")
    res = load(folder)
    assert res.format == "hf" and len(res.examples) == 2 and _msgs(res.examples[1]) == PAIR


def test_write_back_as_openai_jsonl_roundtrips(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "s.jsonl", [{"conversations": [{"from": "system", "value": "Be brief."},
                                                            {"from": "human", "value": "Hi"},
                                                            {"from": "gpt", "value": "Hello."}]}])
    out = tmp_path / "o.jsonl"
    write_examples(load_examples(src), out)
    rec = json.loads(out.read_text(encoding="utf-8"))
    assert rec == {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello."}]}


def test_bom_crlf_blank_lines_and_unicode(tmp_path: Path) -> None:
    weird = "Ünïcödé ✓ 日本語 \u2028 line-sep, emoji 🙂, RTL שלום"
    rows = [{"messages": [{"role": "user", "content": weird}, {"role": "assistant", "content": "Fine."}]}]
    p = tmp_path / "w.jsonl"
    body = ("\r\n\r\n" + json.dumps(rows[0], ensure_ascii=False) + "\r\n\r\n"
            + json.dumps(rows[0]) + "\r\n").encode("utf-8")
    p.write_bytes(b"\xef\xbb\xbf" + body)
    res = load(p)
    assert len(res.examples) == 2 and not res.problems
    assert res.examples[0].input_text == weird == res.examples[1].input_text
    assert res.examples[0].meta["line"] == 3 and res.examples[1].meta["line"] == 5
    c = tmp_path / "w.csv"
    c.write_bytes(b"\xef\xbb\xbftext,label\r\n" + "caf\u00e9 ok,x\r\n".encode())
    assert load(c).examples[0].input_text == "café ok"


@pytest.mark.parametrize("record,field,message", [
    ({"messages": [{"role": "user", "content": "hi"}]}, "messages", "no assistant turn"),
    ({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role", "unknown role 'bot'"),
    ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]},
     "messages[0].content", "empty content"),
    ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]},
     "messages[0].content", "must be a string"),
    ({"messages": [{"content": "hi"}]}, "messages[0].role", "missing key"),
    ({"msgs": []}, "messages", "missing key"),
    ({"prompt": "hi"}, "completion", "missing key"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "conversations[0].from", "unknown role"),
])
def test_bad_rows_are_located(tmp_path: Path, record: dict, field: str, message: str) -> None:
    good = {"messages": PAIR} if "conversations" not in record and "prompt" not in record else None
    rows = [good or record, record] if good else [record, record]
    p = _jsonl(tmp_path / "b.jsonl", rows)
    with pytest.raises(InputError) as err:
        load(p)
    assert err.value.where == f"{p}:2:{field}" if good else err.value.where.startswith(f"{p}:1:")
    assert message in str(err.value)
    assert "--skip-invalid" in (err.value.fix or "")


def test_broken_json_line_names_the_line_and_skip_invalid_goes_on(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    p.write_text(json.dumps({"messages": PAIR}) + "\n{\"messages\": [oops\n" + json.dumps({"messages": PAIR}) + "\n",
                 encoding="utf-8")
    with pytest.raises(InputError) as err:
        load(p)
    assert err.value.where == f"{p}:2" and "not valid JSON" in err.value.what
    res = load(p, skip_invalid=True)
    assert len(res.examples) == 2 and res.rows == 3
    assert res.problems[0].line == 2 and res.problems[0].to_dict()["where"] == f"{p}:2"


@pytest.mark.parametrize("make,match", [
    (lambda d: d / "missing.jsonl", "file not found"),
    (lambda d: (d / "bin.jsonl").write_bytes(b"\xff\xfe\x00garbage\x80") and d / "bin.jsonl", "not UTF-8"),
    (lambda d: (d / "x.parquet").write_bytes(b"not parquet") and d / "x.parquet", "Parquet"),
    (lambda d: (d / "e.jsonl").write_text("\n\n") and d / "e.jsonl", "no rows"),
])
def test_unreadable_files_are_clean_errors(tmp_path: Path, make, match: str) -> None:
    with pytest.raises(InputError, match=match):
        load(make(tmp_path))
