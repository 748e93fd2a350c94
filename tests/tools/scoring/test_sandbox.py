"""Executed tests in the sandbox: good and bad solutions by hand, and rows that crash, hang or fork."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools.errors import InputError
from tools.scoring import metrics as M
from tools.scoring import sandbox as S

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]


def test_good_and_bad_solutions() -> None:
    assert S.run_tests("def add(a, b):\n    return a + b\n", ADD_TESTS).status == "passed"
    wrong = S.run_tests("def add(a, b):\n    return a - b\n", ADD_TESTS)
    assert not wrong.passed and wrong.status == "failed" and "test 1" in wrong.detail
    assert S.run_tests("def add(a, b) return a", ADD_TESTS).status == "syntax_error"
    assert S.run_tests("raise ValueError('boom')", ADD_TESTS).status == "error"
    assert S.run_tests("def add(a, b): return a + b", []).status == "no_tests"


def test_early_exit_does_not_pass() -> None:
    # A program that ends the process with status 0 before the tests run never wrote the verdict nonce.
    assert not S.run_tests("import os\nos._exit(0)", ["assert False"]).passed
    assert not S.run_tests("import sys\nsys.exit(0)", ["assert False"]).passed


def test_crash_hang_memory_and_fork_cost_one_row_each() -> None:
    codes = ["def add(a, b): return a + b",
             "while True:\n    pass",                                   # hang: killed at the wall-clock limit
             "x = bytearray(8 * 1024 ** 3)",                            # 8 GB: over the memory limit
             "import os\nwhile True:\n    os.fork()",                   # fork bomb: fork is removed
             "import ctypes\nctypes.string_at(0)",                      # segfault
             "def add(a, b): return a + b"]
    outs = S.run_tests_many(codes, [ADD_TESTS] * len(codes), limits=S.SandboxLimits(timeout_s=3, memory_mb=512))
    assert [o.passed for o in outs] == [True, False, False, False, False, True]
    assert outs[1].status == "timeout" and outs[4].status == "crashed"
    assert outs[2].status == "error" and "MemoryError" in outs[2].detail


def test_child_sees_a_clean_environment_and_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    code = "import os, sys\nENV = dict(os.environ)\nCWD = os.getcwd()\nFLAGS = sys.flags.isolated\n"
    tests = ["assert 'SECRET_TOKEN' not in ENV", f"assert CWD != {str(Path.cwd())!r}", "assert FLAGS == 1",
             "assert 'tunewise-sandbox-' in CWD"]
    assert S.run_tests(code, tests).passed


def test_pass_at_1_through_score_with_ci() -> None:
    preds = ["```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return a * b",
             "Sure! ```python\ndef add(a,b): return b + a\n```", "not code at all"]
    r = M.score(preds, ["ref"] * 4, "pass_at_1", tests=[ADD_TESTS] * 4)
    assert r.per_item == [1.0, 0.0, 1.0, 0.0] and r.quality == 0.5 and r.share
    assert r.ci95 == pytest.approx(M.wilson_ci(2, 4))
    assert r.extra["python_syntax"] == 0.75  # "not code at all" does not parse
    with pytest.raises(InputError, match="tests"):
        M.score(preds, ["ref"] * 4, "pass_at_1")


def test_test_file_with_tests_column(tmp_path: Path) -> None:
    from tools.scoring.rows import decide_scoring, load_test, score_texts

    rows = [{"messages": [{"role": "user", "content": "Write add(a, b)."},
                          {"role": "assistant", "content": "def add(a, b):\n    return a + b"}],
             "tests": ADD_TESTS},
            {"messages": [{"role": "user", "content": "Write neg(x)."},
                          {"role": "assistant", "content": "def neg(x):\n    return -x"}],
             "meta": {"tests": ["assert neg(2) == -2"]}}]
    p = tmp_path / "code.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    exs = load_test(p)
    assert exs[0].meta["tests"] == ADD_TESTS and exs[1].meta["tests"] == ["assert neg(2) == -2"]
    scoring = decide_scoring(exs)
    assert scoring.metric == "pass_at_1" and scoring.share
    res = score_texts([e.output_text for e in exs], exs, scoring)  # the references pass their own tests
    assert res.quality == 1.0
    rows[1]["meta"] = {"tests": ["assert neg(2) == = -2"]}
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"code.jsonl:2:tests.*does not parse"):
        load_test(p)


def test_user_metric_import_print_keeps_json_stdout_clean(tmp_path: Path) -> None:
    """A metric module's import-time print must not reach stdout: --json prints exactly one document."""
    import subprocess
    import sys

    (tmp_path / "noisy_metric.py").write_text("print('HELLO FROM IMPORT')\n"
                                               "def score(p, r):\n    print('HELLO FROM CALL')\n    return 1.0\n")
    code = ("import json, sys\nfrom tools.scoring import metrics as M\n"
            "r = M.score(['a', 'b'], ['a', 'c'], 'noisy_metric:score')\n"
            "sys.stdout.write(json.dumps(r.to_dict()))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    doc = json.loads(out.stdout)  # one JSON document, nothing else
    assert doc["quality"] == 1.0 and "HELLO" not in out.stdout
