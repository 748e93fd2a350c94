"""``split``: train/val/test by the knowledge rule for the data set's size, leak-free and stratified.

- ratios and minimums from ``knowledge.lookup.split_ratios`` (``data.split.*``);
- rows whose inputs are equal after normalisation, or near duplicates (MinHash, same threshold as cleaning),
  form one group, and a group goes to one split only, so no copy of a training row leaks into test;
- groups are assigned per label (stratified) when outputs are labels;
- synthetic rows (``meta.synthetic``) only ever go to train;
- seeded and reproducible; each split file's sha256 goes into the run log.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tools.data.formats import load, write_examples
from tools.data.reports import SplitReport
from tools.errors import InputError
from tools.fileio import sha256_file
from tools.types import Example, ProgressCallback, ProgressEvent, emit

SPLITS = ("train", "val", "test")


def example_labels(examples: list[Example]) -> list[str] | None:
    """The label of each example when the outputs are labels (``meta.label``, or the task profile says the
    outputs are labels)."""
    from tools.data.profile import detect_profile

    if examples and all("label" in e.meta for e in examples):
        return [str(e.meta["label"]) for e in examples]
    if examples and detect_profile(examples).output_kind == "label":
        return [e.output_text.strip() for e in examples]
    return None


def _groups(examples: list[Example], threshold: float) -> np.ndarray:
    """Group id per example: equal normalised inputs and near-duplicate rows share a group."""
    from tools.data.config import CleanConfig
    from tools.data.near_dups import MinHasher, Templates, find_near_duplicates, normalise

    cfg = CleanConfig()
    n = len(examples)
    inputs = [normalise(e.input_text) for e in examples]
    templates = Templates.learn(inputs, min_fraction=cfg.boilerplate_min_fraction, min_rows=cfg.boilerplate_min_rows)
    texts = [f"{templates.strip(i)} \n {normalise(e.output_text)}" for i, e in zip(inputs, examples, strict=True)]
    sigs = MinHasher(cfg.num_perm, cfg.shingle_size, cfg.near_dup_seed).signatures(texts)
    root = find_near_duplicates(sigs, threshold=threshold, max_cluster_size=n + 1).root.copy()
    # join rows with equal inputs too (same question, different answers must not straddle splits)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_by_input: dict[str, int] = {}
    for i, key in enumerate(inputs):
        union(i, int(root[i]))
        j = first_by_input.setdefault(key, i)
        if j != i:
            union(i, j)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def plan_counts(n: int) -> tuple[int, int, str, list[str], tuple[str, ...]]:
    """(n_val, n_test, rule id, warnings, rule ids) for ``n`` real rows."""
    from knowledge.lookup import split_ratios

    plan = split_ratios(n)
    rule_id = plan.rule_ids[0]
    warnings: list[str] = []
    n_val, n_test = plan.n_val, plan.n_test
    if not plan.feasible or n_val + n_test >= n:
        n_val, n_test = round(n * plan.val), round(n * plan.test)
        warnings.append(f"only {n} rows: validation ({n_val}) and test ({n_test}) are below the 100-row minimum "
                        "(data.split.min_val, data.split.min_test); their scores will be noisy — collect more data")
    elif any(r in plan.rule_ids for r in ("data.split.min_val", "data.split.min_test")):
        warnings.append(f"validation and test raised to the 100-row minimum ({n_val}/{n_test}), above the "
                        f"{plan.val:.0%}/{plan.test:.0%} of rule {rule_id}; training keeps {n - n_val - n_test} rows")
    return n_val, n_test, rule_id, warnings, plan.rule_ids


def assign(groups: np.ndarray, labels: list[str] | None, n_val: int, n_test: int, seed: int) -> np.ndarray:
    """Split index per row (0 train, 1 val, 2 test): whole groups, stratified by their first row's label."""
    n = len(groups)
    rng = np.random.default_rng(seed)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups.tolist()):
        members[g].append(i)
    strata: dict[str, list[int]] = defaultdict(list)
    for g in sorted(members):
        strata[labels[g] if labels else ""].append(g)
    out = np.zeros(n, dtype=np.int8)
    share_val, share_test = n_val / n, n_test / n
    # carry the rounding error across strata so the totals land on the plan
    want_val_total = want_test_total = 0.0
    got_val = got_test = 0
    for key in sorted(strata):
        gs = strata[key]
        order = rng.permutation(len(gs))
        size = sum(len(members[gs[k]]) for k in order)
        want_test_total += size * share_test
        want_val_total += size * share_val
        for k in order:
            rows = members[gs[k]]
            if got_test + len(rows) / 2 <= want_test_total:
                out[rows] = 2
                got_test += len(rows)
            elif got_val + len(rows) / 2 <= want_val_total:
                out[rows] = 1
                got_val += len(rows)
    return out


def split(path: str | Path, out_dir: str | Path, *, seed: int | None = None, fmt: str | None = None,
          skip_invalid: bool = False, columns: tuple[str, str] | None = None,
          on_progress: ProgressCallback | None = None) -> SplitReport:
    """Split a data set into ``train.jsonl``, ``val.jsonl`` and ``test.jsonl`` (OpenAI chat JSONL) in ``out_dir``.

    Returns a ``SplitReport`` (``to_dict()``: ``{"train": n, "val": n, "test": n, "files": {...},
    "sha256": {...}, "rule": id, "warnings": [...], ...}``). Rows that carry executable tests keep them in
    ``meta.tests`` (MBPP), so evaluation can run them on the test split.
    """
    from knowledge import loader
    from tools.data.config import CleanConfig

    k = loader.load().data
    seed = k.split_settings.seed if seed is None else seed
    res = load(path, fmt, skip_invalid=skip_invalid, columns=columns)
    examples = res.examples
    if not examples:
        raise InputError("no valid rows to split", where=str(path))
    emit(on_progress, ProgressEvent("split", 0, 3, message="grouping near duplicates"))
    synthetic = [bool(e.meta.get("synthetic")) for e in examples]
    real = [e for e, s in zip(examples, synthetic, strict=True) if not s]
    synth = [e for e, s in zip(examples, synthetic, strict=True) if s]
    early_warnings = []
    if len(real) < 3 and synth:
        # a wholly synthetic set still needs validation and test rows; say so rather than fail
        early_warnings.append(f"{len(synth)} of {len(examples)} rows are synthetic, too few real rows to hold "
                              "out: validation and test are drawn from synthetic rows, so their scores say little "
                              "about real inputs (data.augment.validate)")
        real, synth = examples, []
    if len(real) < 3:
        raise InputError(f"only {len(real)} real rows; a split needs at least 3", where=str(path),
                         fix="collect more examples")
    labels = example_labels(real)
    groups = _groups(real, CleanConfig().near_dup_threshold)
    emit(on_progress, ProgressEvent("split", 1, 3, message="assigning groups"))
    n_val, n_test, rule_id, warnings, rule_ids = plan_counts(len(real))
    warnings = early_warnings + warnings
    where_to = assign(groups, labels, n_val, n_test, seed)
    parts: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for e, s in zip(real, where_to.tolist(), strict=True):
        parts[SPLITS[s]].append(e)
    parts["train"].extend(synth)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, hashes = {}, {}
    for s in SPLITS:
        f = out_dir / f"{s}.jsonl"
        write_examples([_with_tests_only(e) for e in parts[s]], f, with_meta=True)
        files[s], hashes[s] = str(f), sha256_file(f)
    for s in ("val", "test"):
        if len(parts[s]) < 100 and not any("below the 100-row minimum" in w for w in warnings):
            warnings.append(f"{s} has {len(parts[s])} rows, below the 100-row minimum (data.split.min_{s})")
    emit(on_progress, ProgressEvent("split", 3, 3))
    n_groups = len(np.unique(groups))
    result = SplitReport(
        train=len(parts["train"]), val=len(parts["val"]), test=len(parts["test"]), synthetic_in_train=len(synth),
        files=files, sha256=hashes, rule=rule_id, rule_ids=list(rule_ids), seed=seed,
        stratified_by="label" if labels else None, groups=n_groups, grouped_rows=int(len(real) - n_groups),
        warnings=warnings, input_sha256=sha256_file(path) if Path(path).is_file() else None,
    )
    _log(path, result.to_dict(), res.format)
    return result


def _with_tests_only(e: Example) -> Example:
    """The example with only the meta that evaluation needs (executable tests); provenance stays out."""
    keep: dict[str, Any] = {k: e.meta[k] for k in ("tests", "test_setup") if k in e.meta}
    return Example(e.messages, keep)


def _log(path: str | Path, result: dict[str, Any], fmt: str) -> None:
    from tools.runlog import RunLog

    log = RunLog()
    for s in SPLITS:
        log.log_dataset(result["files"][s], sha256=result["sha256"][s], fmt="openai", rows=result[s],
                        kind=f"split:{s}", report={"source": str(path), "source_sha256": result["input_sha256"],
                                                   "rule": result["rule"], "seed": result["seed"]})
