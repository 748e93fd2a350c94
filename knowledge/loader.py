"""Load, validate and index the knowledge files.

``load()`` reads the five YAML files shipped in the package (or from ``path=``), validates each against
its pydantic model, indexes every row that has an ``id`` and a ``text`` as a citable ``Rule``, and checks
that ids are unique across files and that every cross-reference (``see``, ``issue``, ``rule``) resolves.
Any problem raises ``KnowledgeError`` naming the file and the key path.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from knowledge.schema import ChecklistFile, DataFile, DiagnosisFile, HyperparametersFile, RulesFile

FILES: dict[str, type[BaseModel]] = {
    "rules.yaml": RulesFile,
    "hyperparameters.yaml": HyperparametersFile,
    "data.yaml": DataFile,
    "diagnosis.yaml": DiagnosisFile,
    "checklist.yaml": ChecklistFile,
}
EXPLANATION_TOPICS = (
    "decision-tree",
    "when-to-fine-tune",
    "methods",
    "hyperparameters",
    "data-cleaning",
    "evaluation",
    "common-issues",
    "corrections",
    "forgetting",
    "sequential-decision",
)
# Keys whose values name other rules; they must resolve, or the advisor would cite a dead id.
_REFERENCE_KEYS = ("see", "issue", "rule")


class KnowledgeError(ValueError):
    """A knowledge file is missing or invalid; the message names the file and the key path."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        super().__init__(f"{file}: {path}: {problem}" if path else f"{file}: {problem}")


@dataclass(frozen=True)
class Rule:
    """A citable knowledge row: its id, sentence, origin, and the raw YAML mapping it came from."""

    id: str
    text: str
    source: str | None
    file: str
    path: str
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def is_correction(self) -> bool:
        """True where tunewise departs from the seed (the row records seed, choice and why)."""
        return "correction" in self.raw or {"seed", "choice", "why"} <= self.raw.keys()


@dataclass(frozen=True)
class Knowledge:
    """All validated knowledge: one typed model per file plus an index of citable rules."""

    rules: RulesFile
    hyperparameters: HyperparametersFile
    data: DataFile
    diagnosis: DiagnosisFile
    checklist: ChecklistFile
    index: dict[str, Rule] = field(repr=False)

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; ``KeyError`` names the id if there is none."""
        try:
            return self.index[rule_id]
        except KeyError:
            raise KeyError(f"unknown knowledge rule id '{rule_id}'") from None

    def all_rule_ids(self) -> list[str]:
        """Every citable id, sorted."""
        return sorted(self.index)

    def corrections(self) -> list[Rule]:
        """The rules where tunewise departs from the seed."""
        return [r for r in self.index.values() if r.is_correction]


def _key_path(loc: tuple[int | str, ...]) -> str:
    """('a', 2, 'b') -> 'a[2].b' (pydantic's loc tuples, written the way a reader finds them in YAML)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read(root: Traversable | Path, name: str) -> dict[str, Any]:
    try:
        text = (root / name).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise KnowledgeError(name, "", f"file not found in {root}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise KnowledgeError(name, where, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(raw, dict):
        raise KnowledgeError(name, "", "the top level must be a mapping")
    return raw


def _validate(name: str, raw: dict[str, Any]) -> BaseModel:
    try:
        return FILES[name].model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        problem = first["msg"].removeprefix("Value error, ")  # our validators' own words read better bare
        problem = problem[:1].lower() + problem[1:]  # "Field required" -> "field required"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise KnowledgeError(name, _key_path(tuple(first["loc"])) or "(top level)", problem + more) from None


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (key path, node) for every mapping and list item in a YAML tree."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _index(raws: dict[str, dict[str, Any]]) -> dict[str, Rule]:
    index: dict[str, Rule] = {}
    for name, raw in raws.items():
        for path, node in _walk(raw, ""):
            if not (isinstance(node, dict) and "id" in node and "text" in node):
                continue
            rid = node["id"]
            if rid in index:
                first = index[rid]
                raise KnowledgeError(
                    name,
                    f"{path}.id",
                    f"duplicate rule id '{rid}' (first defined in {first.file}: {first.path})",
                )
            index[rid] = Rule(rid, node["text"], node.get("source"), name, path, node)
    return index


def _check_references(raws: dict[str, dict[str, Any]], index: dict[str, Rule]) -> None:
    for name, raw in raws.items():
        for path, node in _walk(raw, ""):
            if not isinstance(node, dict):
                continue
            for key in _REFERENCE_KEYS:
                refs = node.get(key)
                for ref in refs if isinstance(refs, list) else [refs] if isinstance(refs, str) else []:
                    if ref not in index:
                        where = f"{path}.{key}" if path else key
                        raise KnowledgeError(name, where, f"refers to unknown rule id '{ref}'")


def load(path: str | Path | None = None) -> Knowledge:
    """Load and validate the knowledge files from the package, or from the folder ``path`` (cached per folder)."""
    return _load(None if path is None else str(Path(path).resolve()))


@functools.lru_cache(maxsize=8)
def _load(folder: str | None) -> Knowledge:
    root: Traversable | Path = files("knowledge") if folder is None else Path(folder)
    raws = {name: _read(root, name) for name in FILES}
    models = {name: _validate(name, raw) for name, raw in raws.items()}
    # Other YAML files at the top level (e.g. cleaning.yaml, owned by the tool that reads them) have no typed
    # model here, but their rows are citable too: index them with the same id/text rule and uniqueness check.
    for extra in sorted(p.name for p in root.iterdir() if p.name.endswith(".yaml") and p.name not in FILES):
        raws[extra] = _read(root, extra)
    index = _index(raws)
    _check_references(raws, index)
    return Knowledge(
        rules=_model(models, "rules.yaml", RulesFile),
        hyperparameters=_model(models, "hyperparameters.yaml", HyperparametersFile),
        data=_model(models, "data.yaml", DataFile),
        diagnosis=_model(models, "diagnosis.yaml", DiagnosisFile),
        checklist=_model(models, "checklist.yaml", ChecklistFile),
        index=index,
    )


M = TypeVar("M", bound=BaseModel)


def _model(models: dict[str, BaseModel], name: str, kind: type[M]) -> M:
    """The validated model of ``name``, as the type ``FILES`` validated it with."""
    model = models[name]
    if not isinstance(model, kind):  # FILES maps each name to its model class: a bug here, not bad input
        raise TypeError(f"{name} validated as {type(model).__name__}, not {kind.__name__}")
    return model


def rule(rule_id: str) -> Rule:
    """The packaged rule with this id."""
    return load().rule(rule_id)


def all_rule_ids() -> list[str]:
    """Every citable id in the packaged knowledge, sorted."""
    return load().all_rule_ids()


def explanation(topic: str) -> str:
    """The Markdown explanation for a topic (one of ``EXPLANATION_TOPICS``)."""
    if topic not in EXPLANATION_TOPICS:
        raise KeyError(f"unknown explanation topic '{topic}'; known: {', '.join(EXPLANATION_TOPICS)}")
    return (files("knowledge") / "explanations" / f"{topic}.md").read_text(encoding="utf-8")
