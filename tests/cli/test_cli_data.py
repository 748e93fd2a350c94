"""``tunewise data ...``: one JSON document on stdout under --json, errors as messages, spot-check flow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli import app
from cli.common import run_guarded

REPO = Path(__file__).resolve().parents[2]


def _data(tmp_path: Path, n: int = 40) -> Path:
    labels = ["card_arrival", "refund", "pin_blocked"]
    rows = [{"messages": [{"role": "user", "content": f"Customer asks question {i} about account {i * 91}"},
                          {"role": "assistant", "content": labels[i % 3]}]} for i in range(n)]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def _run(capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None,
         monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if stdin is not None and monkeypatch is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = run_guarded(app, list(args))
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())  # rich wraps long lines


def test_inspect_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "data", "inspect", str(_data(tmp_path)), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["rows"] == 40 and doc["format"] == "openai"
    assert doc["output_kind"] == "label" and doc["labels"] == {"card_arrival": 14, "refund": 13, "pin_blocked": 13}


def test_inspect_reports_bad_lines_without_failing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _data(tmp_path)
    with p.open("a", encoding="utf-8") as f:
        f.write('{"messages": [{"role": "robot", "content": "x"}]}\n')
    code, out, _ = _run(capsys, "data", "inspect", str(p), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["invalid_rows"] == 1
    assert doc["problems"][0]["where"] == f"{p}:41:messages[0].role"


def test_clean_and_split_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _data(tmp_path)
    code, out, _ = _run(capsys, "data", "clean", str(src), "--out", str(tmp_path / "c.jsonl"),
                        "--report", str(tmp_path / "r.json"), "--no", "near_duplicates", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kept_rows"] == 40 and doc["removed"]["exact_duplicate"] == 0
    assert (tmp_path / "r.md").exists()
    code, out, _ = _run(capsys, "data", "split", str(tmp_path / "c.jsonl"), "--out-dir", str(tmp_path / "s"), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["train"] + doc["val"] + doc["test"] == 40 and doc["warnings"]
    assert Path(doc["files"]["test"]).exists()


def test_convert_sharegpt_to_openai_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"conversations": [{"from": "human", "value": "Hi"},
                                                 {"from": "gpt", "value": "Hello."}]}) + "\n", encoding="utf-8")
    code, out, _ = _run(capsys, "data", "convert", str(src), "--out", str(tmp_path / "o.jsonl"), "--json")
    assert code == 0 and json.loads(out)["format"] == "sharegpt"
    assert json.loads((tmp_path / "o.jsonl").read_text())["messages"][1] == {"role": "assistant", "content": "Hello."}
    code, out, _ = _run(capsys, "data", "convert", str(tmp_path / "o.jsonl"), "--out", str(tmp_path / "ds"), "--json")
    assert code == 0 and json.loads(out)["rows"] == 1 and (tmp_path / "ds").is_dir()


def test_errors_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"messages": []}\n{not json\n', encoding="utf-8")
    code, out, err = _run(capsys, "data", "clean", str(broken), "--out", str(tmp_path / "o.jsonl"), "--json")
    assert code == 2 and "Traceback" not in err
    assert json.loads(out)["error"]["where"].startswith(f"{broken}:1")
    code, _, err = _run(capsys, "data", "clean", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl"))
    assert code == 2 and "file not found" in err
    code, _, err = _run(capsys, "data", "clean", str(broken), "--out", str(tmp_path / "o.jsonl"), "--no", "typo")
    assert code == 2 and "unknown filter" in err


def test_spotcheck_flow_pause_resume_and_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    src = _data(tmp_path, 12)
    code, out, _ = _run(capsys, "data", "spotcheck", str(src), "--n", "4", "--json", stdin="",
                        monkeypatch=monkeypatch)  # end of input pauses, it is not a crash
    assert code == 0 and json.loads(out)["done"] == 0
    code, out, _ = _run(capsys, "data", "spotcheck", str(src), "--n", "4", "--json", stdin="g\nq\n",
                        monkeypatch=monkeypatch)
    assert code == 0 and json.loads(out)["done"] == 1
    code, out, err = _run(capsys, "data", "spotcheck", str(src), "--n", "4", "--json",
                          stdin="b\n'question 4'\ng\ns\ny\n", monkeypatch=monkeypatch)
    doc = json.loads(out)
    assert code == 0 and "resuming: 1 of 4" in err
    assert doc["done"] == 4 and doc["bad"] == 1 and doc["rule"]["kind"] == "keyword"


def test_help_is_fast_and_light() -> None:
    r = subprocess.run([sys.executable, "-c", "import sys, cli.data; print([m for m in ('numpy', 'torch', 'py3langid') "
                        "if m in sys.modules])"], cwd=REPO, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------- issue 13
INSPECT_KEYS = {"path", "sha256", "format", "rows", "valid_rows", "invalid_rows", "problems", "output_kind",
                "multi_turn_rows", "with_system_prompt", "chars", "labels", "label_count", "label_imbalance"}
CLEAN_KEYS = {"input", "out", "dataset_sha256", "format", "input_rows", "valid_rows", "kept_rows", "removed",
              "flagged", "rule_ids", "output_kind", "language", "label_count", "label_distribution",
              "near_duplicates", "problems", "examples", "histograms", "seconds", "rows_per_s"}


def test_inspect_and_clean_show_the_profile_and_keep_their_keys(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    src = _data(tmp_path)
    code, out, _ = _run(capsys, "data", "inspect", str(src), "--json")
    doc = json.loads(out)
    assert set(doc) >= INSPECT_KEYS and doc["profile"]["output_kind"] == "label" == doc["output_kind"]
    assert doc["profile"]["source"] == "detected" and len(doc["profile"]["labels"]) == 3
    code, out, _ = _run(capsys, "data", "inspect", str(src), "--task-kind", "short_answer", "--json")
    doc = json.loads(out)
    assert doc["output_kind"] == "short_answer" and doc["profile"]["source"] == "user"
    code, out, _ = _run(capsys, "data", "clean", str(src), "--out", str(tmp_path / "c.jsonl"), "--json")
    doc = json.loads(out)
    assert code == 0 and set(doc) >= CLEAN_KEYS and doc["profile"]["output_kind"] == "label"
    code, out, err = _run(capsys, "data", "inspect", str(src))
    assert code == 0 and "task: label" in out and "3 labels" in out
    code, _, err = _run(capsys, "data", "inspect", str(src), "--task-kind", "poetry")
    assert code == 2 and "unknown task kind" in err


def test_csv_columns_found_or_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    good = tmp_path / "intents.csv"
    with good.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "intent"])
        w.writerows([["stop", "cancel"], ["bye-bye", "goodbye"], ["call home", "make_call"]])
    code, out, _ = _run(capsys, "data", "inspect", str(good), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["valid_rows"] == 3 and doc["columns"]["input"] == "text"
    odd = tmp_path / "odd.csv"
    odd.write_text("alpha,beta,gamma\na,b,c\n", encoding="utf-8")
    code, _, err = _run(capsys, "data", "clean", str(odd), "--out", str(tmp_path / "o.jsonl"))
    assert code == 2 and "alpha, beta, gamma" in err and "--input-col" in err and "--output-col" in err


def test_augment_json_keeps_its_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     tiny_model_dir: Path) -> None:
    out = tmp_path / "aug.jsonl"
    code, stdout, _ = _run(capsys, "data", "augment", str(_data(tmp_path, n=6)), "--out", str(out), "--n", "2",
                           "--model", str(tiny_model_dir), "--json")
    doc = json.loads(stdout)
    assert code == 0 and list(doc) == ["out", "original", "synthetic", "method", "rule_ids"]
    assert doc["original"] == 6 and doc["method"] == "paraphrase" and doc["out"] == str(out)
    assert len(out.read_text().splitlines()) == 6 + doc["synthetic"]
