"""CLI help quotes no default that lives in knowledge/: it names the rule instead (as TrainConfig's fields do),
so the YAML stays the one home of the number and the help cannot drift from it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main
import yaml

REPO = Path(__file__).resolve().parents[2]

# help text that states a number beside "default" on purpose, with why it is not a knowledge value
ALLOWED = {
    ("learning-curve", "val"): "10% is the trainer's hold-out share in code (tools/train/loading.py), not a rule",
    ("train", "lora_alpha"): "the factor of a formula, and the help cites its rule (hp.lora.alpha)",
    ("train", "eval_steps"): "about ten evaluations per run is a choice in code (tools/train/arguments.py)",
}


def _numbers(node: Any) -> Iterator[float]:
    if isinstance(node, dict):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, list):
        for v in node:
            yield from _numbers(v)
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield float(node)


def knowledge_numbers() -> set[float]:
    return {n for p in (REPO / "knowledge").glob("*.yaml") for n in _numbers(yaml.safe_load(p.read_text()))}


def options() -> Iterator[tuple[str, str, str]]:
    """(command path, option name, help) for every option of every command."""
    from cli import app

    def walk(cmd: Any, path: str) -> Iterator[tuple[str, str, str]]:  # typer vendors its own click classes
        for p in cmd.params:
            if getattr(p, "help", None):
                yield path, p.name or "", p.help
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            yield from walk(sub, f"{path} {name}".strip())

    yield from walk(typer.main.get_command(app), "")


def quoted_defaults(help_text: str) -> list[float]:
    """Numbers a help text gives as a default: "(default 0.8)", "default: 42", "default 0.90, rule ..."."""
    number = r"(?<![\w.-])(\d+(?:\.\d+)?%?)(?!\w|\.\d)"  # not a part of "AVX512-BF16" or "hp.lr.v2"
    return [float(m.rstrip("%")) for m in re.findall(r"\bdefault\b[^;)]*?" + number, help_text)]


def test_the_check_finds_a_quoted_default() -> None:
    assert quoted_defaults("Jaccard threshold (default 0.8).") == [0.8]
    assert quoted_defaults("Jaccard threshold; default 0.8.") == [0.8]
    assert quoted_defaults("Random seed (default from knowledge: 42).") == [42.0]
    assert quoted_defaults("Quality bar (default: rule dt.quality_bar).") == []
    assert quoted_defaults("bf16 compute; default on where the hardware has it (AVX512-BF16).") == []
    assert 0.8 in knowledge_numbers() and 42.0 in knowledge_numbers()


def test_no_cli_help_repeats_a_knowledge_default() -> None:
    known = knowledge_numbers()
    seen = list(options())
    assert len(seen) > 50  # the walk reaches every command's options
    offending = [(cmd, opt, text) for cmd, opt, text in seen
                 if (cmd, opt) not in ALLOWED and any(n in known for n in quoted_defaults(text))]
    assert offending == [], "help text repeats a knowledge value; cite the rule id instead"


def test_every_rule_the_cli_help_cites_exists() -> None:
    import knowledge

    cited = {m for _, _, text in options() for m in re.findall(r"\brule ([a-z0-9_]+(?:\.[a-z0-9_<>]+)+)", text)}
    assert {"data.clean.near_duplicates", "data.split.settings", "roi.worth_it", "dt.quality_bar"} <= cited
    for rule_id in cited:
        knowledge.rule(rule_id)  # KeyError names an unknown id
