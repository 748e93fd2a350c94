"""The removal decisions: one reason per row, in the order of REASONS, from the per-row columns and the data-set-level facts."""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.data.cleaning.rows import (
    B_CODE,
    B_EMPTY,
    B_ERROR,
    B_INCOMPLETE,
    B_INPUT_SHORT,
    B_JSON,
    B_LANG_IN,
    B_NO_ALNUM,
    B_OUTPUT_SHORT,
    B_QUALITY,
    B_SHORT_OUT,
    B_TOO_LONG,
    B_TOO_LONG_FORM,
    PII_KINDS,
    Pass1,
)
from tools.data.config import CleanConfig
from tools.data.near_dups import find_near_duplicates
from tools.data.profile import decide_profile

# Removal reasons, in the order they are decided; a row is counted under the first one that applies.
REASONS = ("empty", "error_marker", "length", "incomplete", "language", "quality", "pii",
           "exact_duplicate", "conflicting_label", "near_duplicate")


REASON_CODE = {r: i + 1 for i, r in enumerate(REASONS)}  # 0 = kept


# ---------------------------------------------------------------------------------------------- decisions
def decide(cols: dict[str, np.ndarray], sigs: np.ndarray | None, p1: Pass1, cfg: CleanConfig, n: int,
            ) -> tuple[np.ndarray, dict[int, str], dict[str, int], dict[str, Any]]:
    bits = cols["bits"]
    lang = cols["lang"]
    lang_in = (bits & B_LANG_IN) != 0
    # the task profile, decided once from the first pass (tools.data.profile), with the languages found
    counts = p1.counts
    for side, mask in (("input_languages", lang_in), ("output_languages", ~lang_in)):
        found = lang[mask & (lang >= 0)]
        if len(found):
            getattr(counts, side).update({p1.langs[i]: int(c) for i, c in enumerate(np.bincount(found)) if c})
    profile = decide_profile(counts, cfg, output_tokens=np.maximum(1, np.round(cols["out_len"] / 4)),
                             task_kind=cfg.task_kind)
    kind = profile.output_kind
    short = (bits & B_SHORT_OUT) != 0
    label_row = short & (kind == "label")
    structured = (bits & B_JSON) != 0
    code = (bits & B_CODE) != 0
    free = ~label_row & ~structured & ~code
    if profile.source == "user" and kind in ("label", "structured", "code"):
        free[:] = False  # the user says what the outputs are: no prose check applies
    reason = np.zeros(n, np.int8)
    detail: dict[int, str] = {}

    def mark(mask: np.ndarray, name: str) -> None:
        reason[(reason == 0) & mask] = REASON_CODE[name]

    if cfg.empty:
        mark((bits & B_EMPTY) != 0, "empty")
    if cfg.error_markers:
        mark((bits & B_ERROR) != 0, "error_marker")
    if cfg.length:
        # short outputs are fine for labels, JSON, code and short answers (data.clean.min_length correction,
        # data.clean.min_length.short_answers); short inputs that are whole utterances were never marked
        short_ok = kind in ("label", "structured", "code", "short_answer") or \
            profile.short_answer_share >= cfg.short_answer_min_share_in_text
        out_short = (bits & B_OUTPUT_SHORT) != 0
        too_short = (out_short & free & (not short_ok)) | (out_short & ((bits & B_NO_ALNUM) != 0) & ~structured)
        too_long = (bits & (B_TOO_LONG_FORM if kind in ("text", "code") else B_TOO_LONG)) != 0
        mark(((bits & B_INPUT_SHORT) != 0) | too_short | too_long, "length")
    # Worked solutions end in their marked answer ("ANSWER:D") and are mostly symbols: neither prose's
    # completeness nor its gibberish heuristics apply (data.clean.completeness, data.clean.quality_heuristics).
    prose = free & (kind != "reasoning")
    if cfg.completeness:
        mark(((bits & B_INCOMPLETE) != 0) & prose, "incomplete")
    majority = None
    # language ID on the text that carries the language (data.clean.language.carrier)
    carrier = lang_in if kind in ("label", "short_answer", "structured", "code") else (~lang_in & free)
    undetermined = int(((lang < 0) | ~carrier).sum()) if cfg.language else 0
    if cfg.language:
        determined = lang[(lang >= 0) & carrier]
        if cfg.expected_language:
            majority = cfg.expected_language
        elif len(determined):
            majority = p1.langs[int(np.bincount(determined).argmax())]
        if majority is not None:
            want = p1.langs.index(majority) if majority in p1.langs else -2
            mark((lang >= 0) & carrier & (lang != want), "language")
    flagged: dict[str, int] = {}
    if cfg.quality:
        q = ((bits & B_QUALITY) != 0) & prose
        if cfg.quality_action == "remove":
            mark(q, "quality")
        else:
            flagged["quality"] = int(q.sum())
        for i, why in p1.quality_why.items():
            detail[i] = why
    pii = cols["pii"]
    if cfg.pii:
        has = pii != 0
        if cfg.pii_action == "remove":
            mark(has, "pii")
        flagged["pii"] = int(has.sum())
        for k, pii_kind in enumerate(PII_KINDS):
            c = int(((pii & (1 << k)) != 0).sum())
            if c:
                flagged[f"pii_{pii_kind}"] = c
    if cfg.language:
        flagged["language_undetermined"] = undetermined
    # exact duplicates among rows still alive: keep the first occurrence
    alive = reason == 0
    key = cols["key"]
    if cfg.exact_duplicates:
        idx = np.flatnonzero(alive)
        _, first, inverse = np.unique(key[idx], return_index=True, return_inverse=True)
        dup = np.ones(len(idx), bool)
        dup[first] = False
        reason[idx[dup]] = REASON_CODE["exact_duplicate"]
        original = idx[first[inverse]]
        for i, o in zip(idx[dup][: cfg.examples_per_reason].tolist(),
                        original[dup][: cfg.examples_per_reason].tolist(), strict=True):
            detail[i] = f"copy of line {int(cols['lines'][o])}"
    # conflicting labels: one input, several label/JSON outputs
    conflicts = 0
    if cfg.conflicting_labels:
        applies = label_row | structured
        idx = np.flatnonzero((reason == 0) & applies)
        if len(idx):
            ik, ok = cols["in_key"][idx], cols["out_key"][idx]
            order = np.lexsort((ok, ik))
            ik_s, ok_s = ik[order], ok[order]
            uniq_in, inv = np.unique(ik_s, return_inverse=True)
            change = np.concatenate(([True], (ik_s[1:] != ik_s[:-1]) | (ok_s[1:] != ok_s[:-1])))
            distinct_out = np.bincount(inv, weights=change.astype(np.int64), minlength=len(uniq_in))
            bad = distinct_out[inv] > 1
            reason[idx[order[bad]]] = REASON_CODE["conflicting_label"]
            conflicts = int(bad.sum())
    # near duplicates among rows still alive: keep the cluster's first row
    near: dict[str, Any] = {}
    info_roots: dict[int, int] = {}
    if cfg.near_duplicates and sigs is not None:
        alive = reason == 0
        res = find_near_duplicates(sigs, threshold=cfg.near_dup_threshold, active=alive,
                                   max_cluster_size=cfg.max_cluster_size, max_bucket=cfg.max_bucket)
        root = res.root
        in_cluster = alive & (root != np.arange(n))
        oversize = np.isin(root, np.fromiter(res.oversize_roots, np.int64)) if res.oversize_roots else \
            np.zeros(n, bool)
        remove = in_cluster & ~oversize
        reason[remove] = REASON_CODE["near_duplicate"]
        for i in np.flatnonzero(remove).tolist():
            detail[i] = f"near-duplicate of line {int(cols['lines'][root[i]])}"
        info_roots = {int(i): int(root[i]) for i in np.flatnonzero(remove).tolist()}
        flagged["template_cluster"] = int((oversize & alive).sum())
        near = {"templates_stripped": p1.templates, "candidates": res.candidates, "verified_pairs": res.pairs,
                "clusters": int(len(np.unique(root[remove]))), "oversize_clusters": len(res.oversize_roots)}
    labels = kind == "label"
    info = {"output_kind": kind, "profile": profile,
            "language": majority, "near_duplicates": near, "conflicting_rows": conflicts,
            "label_count": len(counts.short_outputs) if labels else None,
            "label_distribution": dict(counts.short_outputs.most_common(20)) if labels else None,
            "near_roots": info_roots, "templates": p1.template_obj}
    return reason, detail, flagged, info
