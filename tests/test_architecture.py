"""The dependency direction is tui -> agent -> tools -> knowledge, and tools never import langgraph/textual."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    # PYTHONPATH makes grimp analyse this checkout, not whichever one the venv was installed from.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                       cwd=REPO, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", r.stdout)
    assert kept and int(kept.group(1)) >= 6, r.stdout  # layers, no tools->UI, three forbidden, acyclic


def test_cli_start_does_not_import_torch() -> None:
    code = ("import sys, cli; "
            "heavy = [m for m in ('torch', 'transformers', 'langgraph', 'textual', 'peft') if m in sys.modules]; "
            "print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout


# A cycle between modules hides behind imports inside functions: Python never complains, but the two modules
# can no longer be read, tested or changed apart. grimp (import-linter's graph) sees every import statement,
# top-level or not.
KNOWN_CYCLES: list[set[str]] = []


def import_cycles(packages: tuple[str, ...] = ("cli", "tui", "agent", "tools", "knowledge")) -> list[set[str]]:
    """The strongly connected components (more than one module) of the tree's import graph (Tarjan)."""
    import grimp

    sys.path.insert(0, str(REPO))
    try:
        graph = grimp.build_graph(*packages, cache_dir=None)
    finally:
        sys.path.remove(str(REPO))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(start: str) -> None:
        # iterative Tarjan: (module, iterator over what it imports)
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.add(m)
                    if m == v:
                        break
                if len(comp) > 1:
                    found.append(comp)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_in_the_tree() -> None:
    cycles = import_cycles()
    unexpected = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not unexpected, f"import cycles (counting imports inside functions): {unexpected}"


def test_the_cycle_check_finds_a_cycle_inside_functions(tmp_path: Path) -> None:
    """The check itself can fail: two modules importing each other only inside functions form a cycle."""
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyclepkg import b\n    return b\n")
    (pkg / "b.py").write_text("def g():\n    import cyclepkg.a\n    return cyclepkg.a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert import_cycles(("cyclepkg",)) == [{"cyclepkg.a", "cyclepkg.b"}]
    finally:
        sys.path.remove(str(tmp_path))


def _ci(tmp_path: Path, test_rc: int, lint_rc: int) -> tuple[int, list[str]]:
    """Run .ci/run with a stand-in `make` that records its targets and exits with the given codes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls.txt"
    fake = bin_dir / "make"
    fake.write_text(f'#!/usr/bin/env bash\necho "$1" >> {calls}\n'
                    f'[ "$1" = test ] && exit {test_rc}\n[ "$1" = lint ] && exit {lint_rc}\nexit 0\n')
    fake.chmod(0o755)
    if calls.exists():
        calls.unlink()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(REPO / ".ci" / "run")], capture_output=True, text=True, env=env)
    return r.returncode, calls.read_text().split()


def test_ci_runs_the_tests_then_lint_and_fails_if_either_fails(tmp_path: Path) -> None:
    assert _ci(tmp_path, 0, 0) == (0, ["test", "lint"])
    assert _ci(tmp_path, 0, 2) == (2, ["test", "lint"])
    assert _ci(tmp_path, 1, 0) == (1, ["test", "lint"])
    assert _ci(tmp_path, 5, 0) == (1, ["test", "lint"])  # no tests collected is a failure


def test_make_lint_runs_ruff_import_linter_and_mypy_over_tui_too() -> None:
    import tomllib

    r = subprocess.run(["make", "-n", "lint"], cwd=REPO, capture_output=True, text=True)
    lint = [line for line in r.stdout.splitlines() if "ruff" in line or "lint-imports" in line or "mypy" in line]
    assert [next(t for t in ("ruff", "lint-imports", "mypy") if t in line) for line in lint] == [
        "ruff", "lint-imports", "mypy"]
    mypy = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert {"cli", "tui", "agent", "tools", "knowledge"} <= set(mypy["packages"])
    assert not mypy.get("ignore_errors")


def test_only_the_run_log_writes_sql() -> None:
    """RunLog owns every write: SQL that changes data or schema appears in tools/runlog.py and nowhere else."""
    writes = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|ALTER\s+TABLE|CREATE\s+TABLE)\b")
    offenders = [str(p.relative_to(REPO)) for pkg in ("cli", "tui", "agent", "tools", "knowledge")
                 for p in sorted((REPO / pkg).rglob("*.py"))
                 if p != REPO / "tools" / "runlog.py" and writes.search(p.read_text(encoding="utf-8"))]
    assert offenders == [], f"SQL writes outside tools/runlog.py (add a RunLog method instead): {offenders}"
