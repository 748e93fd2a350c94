"""Fuzzing the data loaders: no input may reach an internal error, and no input is ever changed.

    python benchmarks/fuzz_loaders.py --inputs 10000 --seed 0

Every input is a file written by one of two generators, over every format the loaders read (OpenAI chat,
prompt/completion, input/output, Alpaca, ShareGPT JSONL; JSON arrays; flat JSON records; CSV; TSV; Parquet):

- *generation*: records built from a grammar of valid and hostile values (huge integers, deep nesting, roles
  that are lists or dicts, lone surrogates, empty and whitespace content, wrong types, NUL bytes, several BOMs,
  CRLF, blank lines, truncated lines);
- *mutation*: a valid file of the same format with random byte edits (flips, inserts, deletes, repeats, cuts),
  which for Parquet means corrupt pages and footers.

Each file goes through ``detect_format``, ``inspect``, ``load(skip_invalid=True)`` and, for every
``--clean-every``-th file, ``clean(skip_invalid=True)``. A ``TunewiseError`` is the expected answer to a bad
file; any other exception is an internal error. The file's sha256 is compared before and after.

Writes benchmarks/results/fuzz_loaders.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "fuzz_loaders.json"

LAYOUTS = ("openai", "prompt_completion", "input_output", "alpaca", "alpaca_seed", "sharegpt", "columns")
CONTAINERS = ("jsonl", "json_array", "csv", "tsv", "parquet")

_WORDS = ["card", "refund", "Where is my money?", "def f(x):\n    return x", "Error: file not found", "ok", "25",
          "Traceback (most recent call last):\n  File \"x.py\", line 1", "Wie spät ist es?", "日本語のテキスト",
          "", " ", "\t\n", "a" * 300, "SELECT * FROM t;", "```python\nprint(1)\n```", "null", "{\"a\": 1}"]


_HUGE = "__HUGE_INT__"


def _hostile(rng: random.Random, depth: int = 0) -> Any:
    """A value that a field might hold in a broken file."""
    r = rng.random()
    if r < 0.45:
        return rng.choice(_WORDS)
    if r < 0.5:
        return "\ud800 lone" if rng.random() < 0.5 else "pair \U0001f600"
    if r < 0.55:
        return rng.choice([99999, _HUGE])  # written as a 4,301-digit integer
    if r < 0.6:
        return rng.choice([None, True, False, 0, -1, 3.5, float("1e308")])
    if r < 0.66:
        return [] if rng.random() < 0.5 else {}
    if r < 0.72 and depth < 3:
        return [_hostile(rng, depth + 1) for _ in range(rng.randint(1, 3))]
    if r < 0.78 and depth < 3:
        return {rng.choice(["role", "content", "from", "value", "x"]): _hostile(rng, depth + 1)}
    if r < 0.82:
        return "x\x00y"
    return rng.choice(_WORDS) + rng.choice(["", "\r\n", "\u2028", "\ufeff"])


def _deep(n: int) -> Any:
    v: Any = "x"
    for _ in range(n):
        v = [v]
    return v


def _role(rng: random.Random, good: str) -> Any:
    return good if rng.random() < 0.8 else rng.choice([["user"], {"r": 1}, 5, None, "bot", "USER", ""])


def _text(rng: random.Random, good: str) -> Any:
    return good if rng.random() < 0.75 else _hostile(rng)


def record(rng: random.Random, layout: str) -> Any:
    """One record of a layout, valid about half of the time."""
    q = rng.choice(["How do I reset my PIN?", "Write a function to add two numbers.", "no way", "stop"])
    a = rng.choice(["Open the app and choose Reset PIN.", "def add(a, b):\n    return a + b", "cancel", "25"])
    if rng.random() < 0.03:
        return _deep(rng.choice([200, 1000, 5000]))
    if layout == "openai":
        msgs = [{"role": _role(rng, "user"), "content": _text(rng, q)},
                {"role": _role(rng, "assistant"), "content": _text(rng, a)}]
        if rng.random() < 0.1:
            msgs.insert(0, {"role": "system", "content": _text(rng, "Be brief.")})
        if rng.random() < 0.05:
            msgs = rng.choice([[], "messages", [1, 2], msgs[:1]])
        rec: Any = {"messages": msgs}
        if rng.random() < 0.1:
            rec["meta"] = {"label": _hostile(rng), "deep": _deep(rng.choice([10, 990]))}
        return rec
    if layout == "prompt_completion":
        return {"prompt": _text(rng, q), "completion": _text(rng, a)}
    if layout == "input_output":
        return {"input": _text(rng, q), "output": _text(rng, a)}
    if layout == "alpaca":
        return {"instruction": _text(rng, q), "input": _text(rng, ""), "output": _text(rng, a)}
    if layout == "alpaca_seed":
        return {"instruction": _text(rng, q), "instances": rng.choice([[{"input": "", "output": _text(rng, a)}],
                                                                       [], "x", [5]])}
    if layout == "sharegpt":
        return {"conversations": [{"from": _role(rng, "human"), "value": _text(rng, q)},
                                  {"from": _role(rng, "gpt"), "value": _text(rng, a)}]}
    return {rng.choice(["text", "question", "utterance", "a"]): _text(rng, q),
            rng.choice(["intent", "answer", "label", "b"]): _text(rng, a),
            **({"test_list": _hostile(rng)} if rng.random() < 0.2 else {})}


def _table_value(v: Any) -> str:
    if isinstance(v, str):
        return "9" * 4301 if v == _HUGE else v
    try:
        return json.dumps(v)
    except (ValueError, RecursionError):
        return "[" * 50 + "]" * 50


def render(rng: random.Random, container: str, rows: list[Any]) -> bytes:
    """A file's bytes: rows written in a container, with some hostile framing."""
    bom = b"\xef\xbb\xbf" * rng.choice([0, 0, 0, 1, 2])
    if container in ("jsonl", "json_array"):
        def dump(r: Any) -> str:
            try:
                text = json.dumps(r, ensure_ascii=rng.random() < 0.5)
            except (ValueError, RecursionError):
                return "[" * 1200 + "]" * 1200
            return text.replace(f'"{_HUGE}"', "9" * 4301)

        if container == "json_array":
            body = "[" + ",\n".join(dump(r) for r in rows) + "]"
        else:
            sep = rng.choice(["\n", "\r\n", "\n\n"])
            body = sep.join(dump(r) for r in rows) + rng.choice(["", "\n"])
        return bom + body.encode("utf-8", "surrogatepass")
    flat = [r if isinstance(r, dict) else {"text": r} for r in rows]
    cols = sorted({k for r in flat for k in r}) or ["text"]
    if container in ("csv", "tsv"):
        import csv

        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t" if container == "tsv" else ",")
        w.writerow(cols)
        for r in flat:
            w.writerow([_table_value(r.get(c, "")) for c in cols])
        return bom + buf.getvalue().encode("utf-8", "surrogatepass")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: [_table_value(r.get(c, "")).encode("utf-8", "replace").decode("utf-8")
                          for r in flat] for c in cols})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Random byte edits of a file."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not b:
            break
        op = rng.random()
        i = rng.randrange(len(b))
        if op < 0.3:
            b[i] = rng.randrange(256)
        elif op < 0.5:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op < 0.65:
            del b[i:i + rng.randint(1, 16)]
        elif op < 0.8:
            j = rng.randrange(len(b))
            b[i:i] = b[min(i, j):max(i, j)][:64]
        elif op < 0.9:
            del b[i:]
        else:
            b[i:i] = rng.choice([b"\xef\xbb\xbf", b"\x00", b"\xff\xfe", b"\\ud800", b"\r", b"\"", b"["])
    return bytes(b)


def make_input(rng: random.Random, folder: Path, k: int) -> Path:
    """The k-th fuzz input: a generated or mutated file of a random layout and container."""
    container = rng.choice(CONTAINERS)
    layout = rng.choice(LAYOUTS if container in ("jsonl", "json_array") else ("columns", "prompt_completion",
                                                                              "input_output", "alpaca"))
    rows = [record(rng, layout) for _ in range(rng.randint(0, 12))]
    data = render(rng, container, rows)
    if rng.random() < 0.5:
        data = mutate(rng, data)
    suffix = {"jsonl": ".jsonl", "json_array": ".json", "csv": ".csv", "tsv": ".tsv", "parquet": ".parquet"}[container]
    path = folder / f"in{k}{suffix}"
    path.write_bytes(data)
    return path


def check(path: Path, out_dir: Path, *, do_clean: bool) -> list[str]:
    """Run every loader path on one file; return the internal errors (empty when all is well)."""
    from tools.data import clean, inspect, load
    from tools.data.config import CleanConfig
    from tools.data.formats import detect_format
    from tools.errors import TunewiseError

    before = hashlib.sha256(path.read_bytes()).hexdigest()
    errors: list[str] = []
    steps: list[tuple[str, Any]] = [
        ("detect_format", lambda: detect_format(path)),
        ("inspect", lambda: json.dumps(inspect(path).to_dict(), ensure_ascii=False).encode("utf-8")),
        ("load", lambda: load(path, skip_invalid=True)),
    ]
    if do_clean:
        steps.append(("clean", lambda: json.dumps(
            clean(path, out_dir / "out.jsonl", config=CleanConfig(skip_invalid=True, workers=1)).to_dict(),
            ensure_ascii=False, default=str).encode("utf-8")))
    for name, fn in steps:
        try:
            fn()
        except TunewiseError:
            pass
        except Exception as e:  # noqa: BLE001 - exactly what the harness looks for
            tb = traceback.extract_tb(e.__traceback__)[-1]
            errors.append(f"{name}: {type(e).__name__}: {str(e)[:120]} at {Path(tb.filename).name}:{tb.lineno}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != before:
        errors.append("changed input")
    return errors


def run(inputs: int, seed: int, *, clean_every: int = 1, keep_failures: Path | None = None) -> dict[str, Any]:
    """Fuzz ``inputs`` files; return the counts (the benchmark's result)."""
    rng = random.Random(seed)
    internal: Counter[str] = Counter()
    changed = 0
    failed_inputs = 0
    cleaned = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        os.environ.setdefault("TUNEWISE_HOME", str(folder / "home"))
        for k in range(inputs):
            path = make_input(rng, folder, k)
            do_clean = k % clean_every == 0
            cleaned += do_clean
            errs = check(path, folder, do_clean=do_clean)
            if any(e != "changed input" for e in errs):
                failed_inputs += 1
            if errs:
                for e in errs:
                    if e == "changed input":
                        changed += 1
                    else:
                        internal[e] += 1
                if keep_failures is not None:
                    keep_failures.mkdir(parents=True, exist_ok=True)
                    (keep_failures / path.name).write_bytes(path.read_bytes())
            path.unlink()
    return {"inputs": inputs, "cleaned_inputs": cleaned, "seed": seed, "internal_errors": sum(internal.values()),
            "inputs_with_internal_errors": failed_inputs,
            "changed_inputs": changed, "errors": dict(internal.most_common(20)),
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean-every", type=int, default=1, help="run clean on every N-th input (1 = all)")
    ap.add_argument("--keep-failures", type=Path, default=None)
    args = ap.parse_args()
    res = run(args.inputs, args.seed, clean_every=args.clean_every, keep_failures=args.keep_failures)
    res["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    res["command"] = " ".join(["python", "benchmarks/fuzz_loaders.py", *sys.argv[1:]])
    res["targets"] = {"internal_errors": 0, "changed_inputs": 0, "min_inputs": 10_000}
    from eval_metrics_speed import save_result  # the one result writer (benchmarks/ is sys.path[0])
    save_result(res, RESULTS)


if __name__ == "__main__":
    main()
