"""Docs that stay true: every path docs/architecture.md names exists, every benchmark result file records when,
at which commit, by which command, on which CPU flags and under which load it was measured, every result file
README.md and docs/*.md name exists, and the figures they quote agree with their files."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- result files

def missing_provenance(doc: dict[str, Any]) -> list[str]:
    """What a result file lacks of date, commit, command, recorder, CPU flags and load (null needs a note)."""
    missing = [k for k in ("measured_at", "git_commit", "command") if not isinstance(doc.get(k), str) or not doc[k]]
    if doc.get("recorded_by") not in ("save_result", "git history"):
        missing.append("recorded_by")
    elif doc["recorded_by"] == "git history" and not (doc.get("recovered_from_git") or {}).get("note"):
        missing.append("recovered_from_git.note")
    if isinstance(doc.get("measured_at"), str) and not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d", doc["measured_at"]):
        missing.append("measured_at (ISO date)")
    if isinstance(doc.get("git_commit"), str) and not re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", doc["git_commit"]):
        missing.append("git_commit (40 hex digits)")
    machine = doc.get("machine")
    if not isinstance(machine, dict):
        return [*missing, "machine"]
    for key, ok in (("cpu_flags", lambda v: isinstance(v, list) and all(isinstance(f, str) for f in v)),
                    ("load_average_1_5_15", lambda v: isinstance(v, list) and len(v) == 3)):
        if key not in machine:
            missing.append(f"machine.{key}")
        elif machine[key] is None:
            if not machine.get(f"{key}_note"):
                missing.append(f"machine.{key}_note (why it is null)")
        elif not ok(machine[key]):
            missing.append(f"machine.{key} (malformed)")
    return missing


def test_the_provenance_check_names_what_a_result_lacks() -> None:
    assert set(missing_provenance({"command": "x"})) == {"measured_at", "git_commit", "recorded_by", "machine"}
    assert missing_provenance({"measured_at": "2026-12-03T13:00:00+00:00", "git_commit": "a" * 40, "command": "c",
                               "recorded_by": "git history", "recovered_from_git": {"note": "n"},
                               "machine": {"cpu_flags": None, "load_average_1_5_15": None,
                                           "load_average_1_5_15_note": "not recorded"}}) == [
        "machine.cpu_flags_note (why it is null)"]


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_every_result_file_records_date_commit_command_cpu_flags_and_load(path: Path) -> None:
    assert missing_provenance(json.loads(_text(path))) == [], path.name


def _load_benchmark(name: str) -> Any:
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_save_result_records_the_commit_cpu_flags_and_load(tmp_path: Path) -> None:
    bench = _load_benchmark("eval_metrics_speed")
    out = bench.save_result({"speedup": 2.0, "machine": "a shared 2-core VM"}, tmp_path / "r.json", echo=False)
    doc = json.loads(out.read_text())
    assert missing_provenance(doc) == [] and doc["recorded_by"] == "save_result"
    assert doc["machine"]["description"] == "a shared 2-core VM" and doc["speedup"] == 2.0
    kept = bench.save_result({"machine": {"cpu_flags": ["avx2"]}, "command": "python x.py --rows 5"},
                             tmp_path / "k.json", echo=False)
    doc = json.loads(kept.read_text())
    assert doc["machine"]["cpu_flags"] == ["avx2"] and doc["command"] == "python x.py --rows 5"
    assert len(doc["machine"]["load_average_1_5_15"]) == 3


def _named_result_files() -> list[tuple[str, str]]:
    return sorted({(doc.name, m) for doc in DOCS for m in re.findall(r"benchmarks/results/(\w+\.json)", _text(doc))})


@pytest.mark.parametrize(("doc", "name"), _named_result_files())
def test_each_result_file_the_docs_name_exists_with_its_provenance(doc: str, name: str) -> None:
    path = RESULTS / name
    assert path.is_file(), f"{doc} names benchmarks/results/{name}, which does not exist"
    assert missing_provenance(json.loads(_text(path))) == []


# ------------------------------------------------------------------------------------------- architecture.md

ARCHITECTURE = REPO / "docs" / "architecture.md"
PACKAGES = ("tools", "agent", "cli", "tui", "knowledge", "tests", "benchmarks", "scripts")


def _backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def named_paths(text: str) -> list[str]:
    """Repository paths a doc names in backticks (placeholders and user paths left out)."""
    out = []
    for tok in _backticked(text):
        tok = tok.strip()
        if " " in tok or any(c in tok for c in "<>$=(){}") or not tok.startswith(
                tuple(f"{p}/" for p in PACKAGES) + (".ci/", "pyproject.toml", "Makefile")):
            continue
        out.append(tok)
    return out


def named_modules(text: str) -> list[str]:
    """Dotted names a doc gives in backticks that start with a package: ``tools.errors.log_bug``."""
    return [tok for tok in _backticked(text) if re.fullmatch(r"(tools|agent|cli|tui|knowledge)(\.\w+)+", tok)]


def resolves(dotted: str) -> bool:
    """A module file, or a module file that defines the last name (a function, class or constant)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        for mod in (base.with_suffix(".py"), base / "__init__.py"):
            if mod.is_file():
                rest = parts[cut:]
                if not rest:
                    return True
                name = rest[0]
                return len(rest) <= 2 and bool(re.search(
                    rf"^\s*(def|class)\s+{name}\b|^\s*{name}\s*[:=]|import .*\b{name}\b", _text(mod), re.M))
    return False


def test_the_path_check_catches_a_moved_module() -> None:
    assert named_paths("`tools/evaluate.py` and `tools/data/cleaning/` and `cli/<area>.py`") == [
        "tools/evaluate.py", "tools/data/cleaning/"]
    assert not (REPO / "tools/evaluate.py").exists()
    assert resolves("tools.errors.log_bug") and resolves("tools.evaluate")
    assert not resolves("tools.errors.no_such_function") and not resolves("tools.ab")


def test_every_path_and_module_architecture_md_names_exists() -> None:
    text = _text(ARCHITECTURE)
    paths = named_paths(text)
    assert len(paths) > 40  # the page is a map: it names the tree
    missing = [p for p in paths if not (list(REPO.glob(p)) if "*" in p else (REPO / p).exists())]
    assert missing == [], f"docs/architecture.md names paths that do not exist: {missing}"
    unresolved = [m for m in named_modules(text) if not resolves(m)]
    assert unresolved == [], f"docs/architecture.md names modules or functions that do not exist: {unresolved}"


def test_architecture_md_names_every_tools_module() -> None:
    text = _text(ARCHITECTURE)
    unnamed = [p.relative_to(REPO / "tools").as_posix() for p in sorted((REPO / "tools").rglob("*.py"))
               if p.name != "__init__.py" and p.name not in text]
    assert unnamed == [], f"tools modules docs/architecture.md does not place in the tree: {unnamed}"


def test_the_tui_imports_only_what_architecture_md_says_it_imports_directly() -> None:
    """The work goes through tui/services.py; the page lists the few direct imports, and this keeps it true."""
    import ast

    text = _text(ARCHITECTURE)
    section = text[text.index("### The TUI and `tui/services.py`"):text.index("## tools/, filed by question")]
    direct = set()
    for path in (REPO / "tui").rglob("*.py"):
        if path.name == "services.py":
            continue
        for node in ast.walk(ast.parse(_text(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                    "tools", "agent", "knowledge"):
                direct |= {(path.relative_to(REPO).as_posix(), node.module, a.name) for a in node.names}
    assert direct, "the check found no direct import at all: it reads the wrong tree"
    for file, module, name in sorted(direct):
        row = next((line for line in section.splitlines() if f"`{file}`" in line), "")
        assert f"`{module}.{name}`" in row or (f"`{module}`" in row and f"`{name}`" in row), (
            f"{file} imports {name} from {module} directly; route it through tui/services.py or list it in "
            f"docs/architecture.md")


# ------------------------------------------------------------------------------------------- quoted figures

def _get(doc: Any, path: str) -> Any:
    for key in path.split("."):
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


# (doc, result file, field, how the doc writes it): each figure must appear in the doc as its file says it
FIGURES = [
    ("README.md", "clean_scale", "rows_per_s", lambda v: f"**{v:,.0f} rows/s**"),
    ("docs/data.md", "clean_scale", "rows_per_s", lambda v: f"{v:,.0f} rows/s"),
    ("README.md", "clean_scale", "near_dup_recall", lambda v: f"recall {v:.3f}"),
    ("README.md", "prompt_eval", "speedup", lambda v: f"**{v:.1f}x** wall"),
    ("README.md", "train_throughput", "speedup", lambda v: f"**{v:.2f}x** tokens per CPU-second"),
    ("docs/train.md", "train_throughput", "speedup", lambda v: f"**{v:.2f}x** speed-up"),
    ("README.md", "tui_demo", "total_seconds", lambda v: f"**{v:.0f} s**"),
    ("README.md", "tui_demo", "total_seconds", lambda v: f"the whole\ndemo takes {v:.0f} s"),
    ("docs/tui.md", "tui_demo", "total_seconds", lambda v: f"| whole demo | {v:.0f} s |"),
    ("README.md", "tui_demo", "earlier.0.without_bf16.total_seconds", lambda v: f"{v:.0f} s with fp32 training"),
    ("README.md", "tui_demo", "earlier.0.total_seconds", lambda v: f"rule ({v:.0f} s;"),
    ("README.md", "decide_speed", "sets.banking77.decided_early.seconds", lambda v: f"**{v:.1f} s**"),
    ("README.md", "estimate_error", "shapes.0.error_own_shape", lambda v: f"labels **{v:+.1%}**"),
    ("docs/tui.md", "estimate_error", "shapes.2.error_own_shape", lambda v: f"| {v:+.1%} |"),
    ("README.md", "fault_injection", "totals.kills", lambda v: f"**{v} kills**"),
    ("README.md", "peer_banking77", "tunewise_s", lambda v: f"tunewise **{v:.1f} s**"),
    ("README.md", "tui_demo", "gain_over_best_prompt.tuned", lambda v: f"scores {v:.1%} label accuracy"),
    ("README.md", "tui_cold_start", "median.tui_first_question_s", lambda v: f"{v:.2f} s (3.1x"),
    ("docs/tui.md", "tui_cold_start", "median.tui_first_question_s", lambda v: f"**{v:.2f} s**"),
    ("README.md", "tui_quit_check", "runs.0.seconds_to_shell", lambda v: f"{v:.2f} s measured"),
    ("docs/tui.md", "tui_quit_check", "runs.0.seconds_to_shell", lambda v: f"**{v:.2f} s**"),
    ("README.md", "forgetting_real", "result.base_score", lambda v: f"{v:.1%} both sides"),
    ("docs/advisor.md", "learning_curve", "measured_full_quality", lambda v: f"measured {v:.1%}"),
]


@pytest.mark.parametrize(("doc", "result", "field", "written"), FIGURES,
                         ids=[f"{d}:{r}.{f}" for d, r, f, _ in FIGURES])
def test_a_quoted_figure_agrees_with_its_result_file_and_names_it(doc: str, result: str, field: str,
                                                                   written: Any) -> None:
    text = _text(REPO / doc)
    assert f"benchmarks/results/{result}.json" in text, f"{doc} quotes {result} without naming its file"
    figure = written(_get(json.loads(_text(RESULTS / f"{result}.json")), field))
    assert figure in text, f"{doc} should say {figure!r} ({result}.json {field})"


def test_the_stale_figures_are_gone() -> None:
    """Figures no result file holds (issue 24): an older cleaning rate, a demo timing with no file behind it."""
    for doc in DOCS:
        for stale in ("28,939", "374 s", "6,622 rows/s", "13,200 rows"):
            assert stale not in _text(doc), f"{doc.name} still quotes {stale}"
