"""Issue 18: no input reaches an internal error (the six triggers, a seeded fuzz subset), and a killed
``clean`` leaves nothing behind (stale temp files removed on the next run, the pass-1 worker dies with it)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.data import clean, inspect, load
from tools.data.config import CleanConfig
from tools.errors import InputError

REPO = Path(__file__).resolve().parents[3]
GOOD = {"messages": [{"role": "user", "content": "How do I reset my PIN?"},
                     {"role": "assistant", "content": "Open the app and choose Reset PIN."}]}


def _lines(path: Path, raw_lines: list[str], prefix: bytes = b"") -> Path:
    path.write_bytes(prefix + ("\n".join(raw_lines) + "\n").encode("utf-8", "surrogatepass"))
    return path


def _every_path(path: Path, tmp_path: Path) -> None:
    """inspect, load --skip-invalid and clean --skip-invalid all end in a result or an InputError."""
    for fn in (lambda: inspect(path).to_dict(), lambda: load(path, skip_invalid=True),
               lambda: clean(path, tmp_path / "o.jsonl", config=CleanConfig(skip_invalid=True, workers=1))):
        with contextlib.suppress(InputError):
            fn()


def test_huge_integer_is_a_bad_line_and_skip_invalid_skips_it(tmp_path: Path) -> None:
    p = _lines(tmp_path / "a.jsonl", [json.dumps(GOOD), '{"messages": ' + "9" * 4301 + "}", json.dumps(GOOD)])
    with pytest.raises(InputError, match=r"a\.jsonl:2"):
        load(p)
    res = load(p, skip_invalid=True)
    assert len(res.examples) == 2 and res.problems[0].line == 2 and "4300" in res.problems[0].message
    r = clean(p, tmp_path / "o.jsonl", config=CleanConfig(skip_invalid=True, workers=1))
    assert r.valid_rows == 2 and r.removed["invalid"] == 1


@pytest.mark.parametrize("container", ["jsonl", "json_array"])
def test_thousand_level_nesting(tmp_path: Path, container: str) -> None:
    deep = "[" * 1000 + "]" * 1000
    if container == "jsonl":
        p = _lines(tmp_path / "d.jsonl", [json.dumps(GOOD), '{"messages": ' + deep + "}"])
        res = load(p, skip_invalid=True)
        assert len(res.examples) == 1 and res.problems[0].line == 2
    else:
        p = tmp_path / "d.json"
        p.write_text("[" + json.dumps(GOOD) + ", " + deep + "]", encoding="utf-8")
        try:
            res = load(p, skip_invalid=True)
            assert len(res.examples) == 1 and res.problems[0].line == 2
        except InputError as e:
            assert "d.json" in str(e)
    _every_path(p, tmp_path)


@pytest.mark.parametrize("role", [["user"], {"r": "user"}])
def test_role_that_is_a_list_or_dict(tmp_path: Path, role: object) -> None:
    bad = {"messages": [{"role": role, "content": "hi there"}, {"role": "assistant", "content": "Hello."}]}
    p = _lines(tmp_path / "r.jsonl", [json.dumps(GOOD), json.dumps(bad)])
    res = load(p, skip_invalid=True)
    assert len(res.examples) == 1
    assert res.problems[0].where.endswith("r.jsonl:2:messages[0].role")
    _every_path(p, tmp_path)
    sg = {"conversations": [{"from": role, "value": "hi"}, {"from": "gpt", "value": "Hello."}]}
    p2 = _lines(tmp_path / "s.jsonl", [json.dumps(sg)])
    with pytest.raises(InputError, match="conversations"):
        load(p2)


def test_parquet_with_a_corrupt_page(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "c.parquet"
    n = 5000
    pq.write_table(pa.table({"text": [f"question number {i} about my card" for i in range(n)],
                             "label": [f"label_{i % 7}" for i in range(n)]}), p, compression="NONE",
                   data_page_size=4096)
    data = bytearray(p.read_bytes())
    meta_len = int.from_bytes(data[-8:-4], "little")
    start = 4 + (len(data) - 8 - meta_len - 4) // 3  # inside the data pages, well before the footer
    data[start:start + 64] = b"\xff" * 64
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"c\.parquet"):
        load(p, skip_invalid=True)
    _every_path(p, tmp_path)


def test_lone_surrogate_is_a_row_problem_and_json_output_stays_utf8(tmp_path: Path) -> None:
    bad = '{"messages": [{"role": "user", "content": "hi \\ud800 there"}, {"role": "assistant", "content": "Hello."}]}'
    meta_bad = json.dumps({**GOOD, "meta": {"note": "x"}}).replace('"x"', '"\\udfff"')
    p = _lines(tmp_path / "u.jsonl", [json.dumps(GOOD), bad, meta_bad])
    res = load(p, skip_invalid=True)
    assert len(res.examples) == 1 and [q.line for q in res.problems] == [2, 3]
    assert "surrogate" in res.problems[0].message
    r = clean(p, tmp_path / "o.jsonl", config=CleanConfig(skip_invalid=True, workers=1))
    json.dumps(r.to_dict(), ensure_ascii=False, default=str).encode("utf-8")  # --json prints this
    json.dumps(inspect(p).to_dict(), ensure_ascii=False).encode("utf-8")


def test_cli_json_with_a_surrogate_file_prints_one_json_document(tmp_path: Path) -> None:
    bad = '{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "Hello."}]}'
    p = _lines(tmp_path / "u.jsonl", [json.dumps(GOOD), bad])
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNEWISE_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "cli", "data", "inspect", str(p), "--json"], capture_output=True,
                          env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["invalid_rows"] == 1 and doc["valid_rows"] == 1


def test_two_byte_order_marks_read_the_same_in_inspect_and_clean(tmp_path: Path) -> None:
    p = _lines(tmp_path / "b.jsonl", [json.dumps(GOOD)] * 3, prefix=b"\xef\xbb\xbf\xef\xbb\xbf")
    assert inspect(p).valid_rows == 3
    r = clean(p, tmp_path / "o.jsonl", config=CleanConfig(workers=1))
    assert r.valid_rows == 3 and r.kept_rows == 1  # two exact copies removed; nothing crashed in pass 2
    big = _lines(tmp_path / "big.jsonl", [json.dumps({"messages": [
        {"role": "user", "content": f"Question {i}: how do I move money number {i * 7919}?"},
        {"role": "assistant", "content": f"Answer {i}: open Payments and follow step {i}."}]}) for i in range(400)],
        prefix=b"\xef\xbb\xbf\xef\xbb\xbf")
    serial = clean(big, tmp_path / "s.jsonl", config=CleanConfig(workers=1))
    parallel = clean(big, tmp_path / "p.jsonl", config=CleanConfig(workers=2, parallel_min_bytes=1))
    assert serial.valid_rows == parallel.valid_rows == 400


def test_seeded_fuzz_subset_has_no_internal_error() -> None:
    sys.path.insert(0, str(REPO))
    from benchmarks.fuzz_loaders import run

    res = run(60, seed=7, clean_every=3)
    assert res["internal_errors"] == 0, res["errors"]
    assert res["changed_inputs"] == 0


# ---------------------------------------------------------------------------------------------- kill -9
def _big_jsonl(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({"messages": [
                {"role": "user", "content": f"How do I move {i} pounds to account {i * 7919 % 100003} today?"},
                {"role": "assistant", "content": f"Open Payments, choose transfer {i}, and confirm it."}]}) + "\n")
    return path


def _start_clean(src: Path, out: Path, home: Path, **cfg: object) -> subprocess.Popen[bytes]:
    code = ("import sys; from tools.data import clean; from tools.data.config import CleanConfig; "
            f"clean({str(src)!r}, {str(out)!r}, config=CleanConfig(**{cfg!r}))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNEWISE_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        f = task / "children"
        if f.exists():
            out += [int(x) for x in f.read_text().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_killed_clean_leaves_temp_files_that_the_next_run_removes(tmp_path: Path) -> None:
    src = _big_jsonl(tmp_path / "in.jsonl", 60_000)
    out = tmp_path / "out.jsonl"
    proc = _start_clean(src, out, tmp_path / "home", workers=1)
    deadline = time.time() + 240
    while time.time() < deadline and not list(tmp_path.glob(".out.jsonl.*.tmp")) and proc.poll() is None:
        time.sleep(0.05)
    temps = list(tmp_path.glob(".out.jsonl.*.tmp"))
    if not temps:
        proc.kill()
        pytest.skip("the run finished before its temp file could be seen")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".out.jsonl.*.tmp"))  # the killed run's leftover
    r = clean(src, out, config=CleanConfig(workers=1))
    assert r.stale_temp_files_removed >= 1
    assert not list(tmp_path.glob(".out.jsonl.*.tmp")) and out.exists()


def test_a_live_writers_temp_file_is_left_alone(tmp_path: Path) -> None:
    import fcntl

    from tools.data.cleaning import remove_stale_temp_files

    out = tmp_path / "out.jsonl"
    live = tmp_path / ".out.jsonl.abc.tmp"
    dead = tmp_path / ".out.jsonl.def.tmp"
    live.write_text("x")
    dead.write_text("y")
    with live.open("rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        assert remove_stale_temp_files(out) == 1
    assert live.exists() and not dead.exists()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_pass1_worker_dies_with_its_parent(tmp_path: Path) -> None:
    src = _big_jsonl(tmp_path / "in.jsonl", 150_000)
    proc = _start_clean(src, tmp_path / "out.jsonl", tmp_path / "home", workers=2, parallel_min_bytes=1)
    deadline = time.time() + 240
    kids: list[int] = []
    while time.time() < deadline and proc.poll() is None and not kids:
        kids = _children(proc.pid)
        time.sleep(0.05)
    if not kids:
        pytest.skip("the run finished before its worker could be seen")
    time.sleep(0.3)  # let the worker reach its initializer
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone_by = time.time() + 3
    while time.time() < gone_by and any(_alive(k) for k in kids):
        time.sleep(0.05)
    assert not any(_alive(k) for k in kids), "the forked worker outlived its parent"


def test_lone_surrogate_in_a_key_is_printable(tmp_path: Path) -> None:
    """Found by the fuzz benchmark: a key such as "c\\ud800ompletion" reached the report as a field name."""
    p = _lines(tmp_path / "k.jsonl", ['{"prompt": "How do I pay?", "c\\ud800ompletion": "Use the app."}'] * 2)
    try:
        d = inspect(p).to_dict()
    except InputError as e:
        str(e).encode("utf-8")
        return
    json.dumps(d, ensure_ascii=False).encode("utf-8")
