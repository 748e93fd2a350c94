"""Pass 2: read the input again and write the kept rows atomically, with a few examples per removal reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tools.data.cleaning.decisions import REASON_CODE, REASONS
from tools.data.cleaning.rows import Msgs, prompt_text
from tools.data.cleaning.temp_files import lock_temp
from tools.data.config import CleanConfig
from tools.data.filters import RowChecks
from tools.data.formats import detect_format, read_rows
from tools.data.near_dups import Templates, normalise
from tools.fileio import atomic_open
from tools.types import ProgressCallback, ProgressEvent, emit


# ---------------------------------------------------------------------------------------------- pass 2
def _short(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def pass2(path: Path, out: Path, cfg: CleanConfig, checks: RowChecks, reason: np.ndarray,
           detail: dict[int, str], lines: np.ndarray, on_progress: ProgressCallback | None,
           near_roots: dict[int, int], templates: Templates | None,
           ) -> tuple[dict[str, list[dict[str, Any]]], int, int]:
    """Write the kept rows. Near duplicates are confirmed here on exact shingle sets: each removed row is
    compared with its cluster's first row (read earlier in the same pass), and kept if the true Jaccard
    similarity is below the threshold, so signature noise never costs a row."""
    import json

    roots_needed = set(near_roots.values())
    # the root's comparison text (not its shingle set: a few hundred bytes instead of kilobytes per root),
    # dropped once its last member has been checked
    root_text: dict[int, bytes] = {}
    members_left = Counter(near_roots.values())
    k = cfg.shingle_size
    rejected = 0

    def dedup_text(ex: Msgs) -> bytes:
        i_text = normalise(prompt_text(ex))
        if templates:
            i_text = templates.strip(i_text)
        return f"{i_text} \n {normalise(ex[-1]['content'])}".encode()

    def shingle_set(b: bytes) -> set[bytes]:
        return {b[j:j + k] for j in range(max(1, len(b) - k + 1))}

    examples: dict[str, list[dict[str, Any]]] = {r: [] for r in REASONS}
    want = cfg.examples_per_reason
    reasons = reason.tolist()
    n = len(reasons)
    mask = cfg.pii and cfg.pii_action == "mask"
    as_hf = out.suffix == ""
    hf_rows: list[dict[str, Any]] = []
    kept = 0
    near = REASON_CODE["near_duplicate"]

    fmt = cfg.fmt or detect_format(path)
    fast = fmt == "openai" and not mask and not as_hf and is_jsonl(path)

    def rows() -> Iterator[tuple[Msgs, str | None, dict[str, Any] | None]]:
        """(messages, the line as written when it is already canonical OpenAI JSONL else None, meta)."""
        if fast:
            yield from _raw_rows(path, lines)
            return
        for _, ex, meta, _ in read_rows(path, cfg.fmt, columns=cfg.columns, allow_empty=True):
            if ex is not None:
                yield ex, None, meta

    def write(f: Any) -> int:
        nonlocal kept, rejected
        for i, (ex, raw, meta) in enumerate(rows()):
            if i >= n:
                break
            r = reasons[i]
            if i in roots_needed:
                root_text[i] = dedup_text(ex)
            if r == near and i in near_roots:
                root = near_roots[i]
                a, b = shingle_set(dedup_text(ex)), shingle_set(root_text.get(root, b""))
                members_left[root] -= 1
                if not members_left[root]:
                    root_text.pop(root, None)
                if len(a & b) < cfg.near_dup_threshold * len(a | b):
                    r = reasons[i] = reason[i] = 0
                    rejected += 1
            if r == 0:
                if raw is not None:  # already canonical: copy the line, no re-encoding
                    f.write(raw)
                else:
                    msgs = [{"role": m["role"], "content": checks.mask_pii(m["content"])} for m in ex] if mask \
                        else ex
                    # tunewise's own ``meta`` (label, synthetic, flags) travels with the row
                    rec = {"messages": msgs, "meta": meta} if meta and not as_hf else {"messages": msgs}
                    if as_hf:
                        hf_rows.append(rec)
                    else:
                        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                kept += 1
            else:
                name = REASONS[r - 1]
                if len(examples[name]) < want:
                    examples[name].append({"line": int(lines[i]), "input": _short(prompt_text(ex)),
                                           "output": _short(ex[-1]["content"]), "why": detail.get(i, name)})
            if i % 50_000 == 0:
                emit(on_progress, ProgressEvent("write", i, n))
        emit(on_progress, ProgressEvent("write", n, n))
        return kept

    if as_hf:
        write(None)
        import datasets
        from datasets import Dataset

        from tools.fileio import atomic_dir

        datasets.disable_progress_bars()
        with atomic_dir(out) as tmp:
            Dataset.from_list(hf_rows).save_to_disk(str(tmp))
    else:
        with atomic_open(out) as f:
            lock_temp(f)
            write(f)
    return {k: v for k, v in examples.items() if v}, kept, rejected


def is_jsonl(path: Path) -> bool:
    """True for a JSON-lines file (not one JSON array)."""
    from tools.data.formats import strip_boms

    with path.open("rb") as f:
        return not strip_boms(f.read(4096)).lstrip().startswith(b"[")


def _raw_rows(path: Path, lines: np.ndarray) -> Iterator[tuple[Msgs, str | None, dict[str, Any] | None]]:
    """The valid rows of an OpenAI JSONL file (their line numbers from pass 1), each with its line when the
    record is exactly ``{"messages": [{"role", "content"}, ...]}`` (so it can be copied unchanged). Lines are
    split exactly as pass 1 split them (bytes, on newlines), so the numbers agree."""
    import json

    from tools.data.formats import strip_boms

    want = lines.tolist()
    k = 0
    with path.open("rb") as f:
        for lineno, raw_b in enumerate(f, 1):
            if k >= len(want):
                break
            if lineno != want[k]:
                continue  # blank or invalid (reported in pass 1)
            k += 1
            if lineno == 1:
                raw_b = strip_boms(raw_b)
            raw = raw_b.decode("utf-8")
            rec = json.loads(raw)
            msgs = rec["messages"]
            canonical = len(rec) == 1 and all(len(m) == 2 for m in msgs)
            meta = rec.get("meta")
            yield msgs, (raw if raw.endswith("\n") else raw + "\n") if canonical else None, \
                meta if isinstance(meta, dict) else None
