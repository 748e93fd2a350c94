"""knowledge/evaluation.yaml is validated by its model, and the advisor's wording for grades is filled from it."""

from __future__ import annotations

from importlib.resources import files

import pytest
import yaml
from pydantic import ValidationError

import knowledge
from knowledge.schema import EvaluationFile


def test_evaluation_yaml_validates() -> None:
    raw = yaml.safe_load((files("knowledge") / "evaluation.yaml").read_text(encoding="utf-8"))
    ev = EvaluationFile.model_validate(raw)
    assert ev.grades.id == "eval.grades" and ev.grades.sample_size == 30 and ev.grades.seconds_per_grade > 0
    bad = {**raw, "grades": {**raw["grades"], "sample_size": 0}}
    with pytest.raises(ValidationError):
        EvaluationFile.model_validate(bad)


@pytest.mark.parametrize("rule", ["eval.grades", "dt.bar.needs_share", "dt.bar.ungraded"])
def test_grade_rules_are_citable(rule: str) -> None:
    r = knowledge.rule(rule)
    assert r.text and r.source and r.file == "evaluation.yaml"
