"""One home per fact: a threshold lives in knowledge/*.yaml, not again as a literal in the advisor or the report.

The guard walks the AST of agent/ and tools/report.py for numbers where a rule would be applied: a comparison
(``n >= 1000``), a fallback (``x or 0.9``) and a ``.get(key, default)``. A number there that equals a threshold in
the YAML (a value under a key like ``min_*``, ``*_max``, ``default``, ``threshold``) fails, unless allow-listed
below with the reason it is not that rule.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
THRESHOLD_KEY = re.compile(r"(^|_)(min|max|threshold|bar|default|recommended|patience|target)(_|$)")
TRIVIAL = {0.0, 1.0}  # empty / one / a whole share: every comparison meets them

# (file, line text fragment, value): why this number is not the knowledge threshold it equals
ALLOWED: dict[tuple[str, str, float], str] = {
    ("agent/questions.py", "1 < value <= 100", 100.0): "a percentage typed as '85' is read as 0.85",
    ("tools/report.py", "len(pts) < 30", 30.0): "plot style: markers on short curves only",
}


def thresholds() -> dict[float, set[str]]:
    found: dict[float, set[str]] = {}

    def walk(x: Any, key: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, str(k))
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif isinstance(x, (int, float)) and not isinstance(x, bool) and THRESHOLD_KEY.search(key):
            found.setdefault(float(x), set()).add(key)

    for f in sorted((REPO / "knowledge").glob("*.yaml")):
        walk(yaml.safe_load(f.read_text(encoding="utf-8")), f.stem)
    return found


def rule_literals(source: str) -> list[tuple[int, float]]:
    """(line, value) of numbers in comparisons, ``or`` fallbacks and ``.get`` defaults; a pair's length
    (``len(x) == 2``) is structure, not a rule."""
    tree = ast.parse(source)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out: list[tuple[int, float]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or isinstance(node.value, bool) or \
                not isinstance(node.value, (int, float)):
            continue
        here: ast.AST = node
        value = float(node.value)
        if isinstance(parent.get(here), ast.UnaryOp):
            here, value = parent[here], -value
        p = parent.get(here)
        compared = isinstance(p, ast.Compare) and not any(
            isinstance(s, ast.Call) and getattr(s.func, "id", None) == "len" for s in [p.left, *p.comparators])
        fallback = isinstance(p, ast.BoolOp) and isinstance(p.op, ast.Or)
        default = isinstance(p, ast.Call) and getattr(p.func, "attr", None) == "get" and len(p.args) == 2 \
            and p.args[1] is here
        if compared or fallback or default:
            out.append((node.lineno, value))
    return out


def offending(files: list[Path]) -> list[str]:
    known = thresholds()
    bad = []
    for f in files:
        rel = f.relative_to(REPO).as_posix()
        lines = f.read_text(encoding="utf-8").splitlines()
        for lineno, value in rule_literals(f.read_text(encoding="utf-8")):
            if value in TRIVIAL or value not in known:
                continue
            text = lines[lineno - 1]
            if any(rel == a_file and frag in text and value == a_value for a_file, frag, a_value in ALLOWED):
                continue
            bad.append(f"{rel}:{lineno}: {value:g} equals knowledge {sorted(known[value])} -> {text.strip()}")
    return bad


def test_no_knowledge_threshold_is_written_again_in_the_advisor_or_the_report() -> None:
    files = sorted((REPO / "agent").rglob("*.py")) + [REPO / "tools" / "report.py"]
    bad = offending(files)
    assert not bad, "read these from knowledge (knowledge.lookup / knowledge.rule):\n" + "\n".join(bad)


def test_the_guard_catches_the_literals_it_is_for(tmp_path: Path) -> None:
    src = ("def f(n, epochs, lr, fg, state):\n"
           "    a = n >= 1000\n"
           "    b = 3 <= epochs <= 5\n"
           "    c = 1e-6 <= lr <= 1e-5\n"
           "    d = fg['x'] < 0.9\n"
           "    e = float(state.get('bar') or 0.9)\n"
           "    g = state.get('r', 8)\n"
           "    h = len(state) == 2\n")
    lits = {v for _, v in rule_literals(src)}
    assert {1000.0, 3.0, 5.0, 1e-6, 1e-5, 0.9, 8.0} <= lits and 2.0 not in lits
    known = thresholds()
    assert {1000.0, 3.0, 5.0, 1e-6, 1e-5, 0.9} <= set(known)


def test_every_allowance_still_matches_a_line() -> None:
    for (rel, frag, _), why in ALLOWED.items():
        assert frag in (REPO / rel).read_text(encoding="utf-8"), f"stale allowance ({why}): {rel} {frag!r}"
