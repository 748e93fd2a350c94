"""The loader: rule index, ids, and errors that name the file and the key path on broken copies."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

from knowledge import EXPLANATION_TOPICS, KnowledgeError, all_rule_ids, explanation, load, rule
from knowledge.loader import _load

ID_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


def _copy(tmp_path: Path) -> Path:
    for entry in files("knowledge").iterdir():
        if entry.name.endswith(".yaml"):
            shutil.copyfile(str(entry), tmp_path / entry.name)
    return tmp_path


def _edit(folder: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / name
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")


def test_packaged_knowledge_loads_and_is_cached() -> None:
    assert load() is load()
    assert len(all_rule_ids()) > 200
    assert all_rule_ids() == sorted(all_rule_ids())


def test_a_clean_copy_loads_from_a_folder(tmp_path: Path) -> None:
    k = load(path=_copy(tmp_path))
    assert k.all_rule_ids() == all_rule_ids()


def test_rule_lookup_returns_id_text_source_and_raw() -> None:
    r = rule("dt.step1.quality_bar")
    assert r.id == "dt.step1.quality_bar" and r.file == "rules.yaml"
    assert r.text and r.raw["outcome"] == "use_prompts"
    lr = rule("hp.lr.7b")
    assert lr.source == "seed: Learning Rate" and lr.raw["pretrain_lr"] == 3e-4
    with pytest.raises(KeyError, match="no.such"):
        rule("no.such")


def test_every_rule_has_a_well_formed_id_and_one_sentence() -> None:
    k = load()
    for rid in k.all_rule_ids():
        r = k.rule(rid)
        assert r.id == rid
        assert re.match(ID_PATTERN, rid), rid
        assert r.text.strip() and "\n" not in r.text.strip(), rid


def test_seed_sourced_rules_name_a_seed_section() -> None:
    sources = {r.source for r in map(rule, all_rule_ids()) if r.source is not None}
    assert sources and all(s.startswith(("seed: ", "tunewise: ")) for s in sources), sources


def test_corrections_are_listed_with_seed_choice_and_why() -> None:
    ids = {r.id for r in load().corrections()}
    expected = {
        "hp.lr.correction.lora", "hp.lora.alpha", "hp.lora.target_modules", "data.clean.completeness",
        "data.clean.error_markers", "data.clean.language", "data.clean.min_length", "data.split.5k_10k",
    }  # fmt: skip
    assert expected <= ids
    for rid in ids:
        raw = rule(rid).raw
        c = raw.get("correction", raw)
        assert {"seed", "choice", "why"} <= c.keys(), rid


def test_explanations_exist_and_are_short() -> None:
    for topic in EXPLANATION_TOPICS:
        lines = explanation(topic).strip().splitlines()
        assert 10 <= len(lines) <= 30, (topic, len(lines))
    assert "label" in explanation("data-cleaning") and "JSON" in explanation("data-cleaning")
    with pytest.raises(KeyError):
        explanation("nope")


def test_package_validates_at_import() -> None:
    # knowledge/__init__ calls load(), so the cache is already warm once the package is imported.
    assert _load.cache_info().currsize >= 1
    assert load() is load(path=None)


# ---------------------------------------------------------------- broken copies


def test_missing_key_names_file_and_path(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "hyperparameters.yaml", lambda raw: raw["epochs_by_dataset_size"][2].pop("max"))
    with pytest.raises(KnowledgeError) as err:
        load(path=folder)
    assert str(err.value).startswith("hyperparameters.yaml: epochs_by_dataset_size[2].max: field required")
    assert err.value.file == "hyperparameters.yaml"
    assert err.value.path == "epochs_by_dataset_size[2].max"


def test_wrong_type_names_file_and_path(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "rules.yaml", lambda raw: raw["quality_bar"].__setitem__("default", "ninety"))
    with pytest.raises(
        KnowledgeError, match=r"^rules\.yaml: quality_bar\.default: input should be a valid number"
    ):
        load(path=folder)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "data.yaml", lambda raw: raw["filters"]["near_duplicates"].__setitem__("treshold", 0.9))
    with pytest.raises(
        KnowledgeError, match=r"^data\.yaml: filters\.near_duplicates\.treshold: extra inputs"
    ):
        load(path=folder)


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "checklist.yaml", lambda raw: raw["checklist"]["after"][0].__setitem__("id", "hp.lr.7b"))
    with pytest.raises(KnowledgeError) as err:
        load(path=folder)
    msg = str(err.value)
    assert msg.startswith("checklist.yaml: checklist.after[0].id: duplicate rule id 'hp.lr.7b'")
    assert "hyperparameters.yaml" in msg


def test_dangling_reference(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "diagnosis.yaml", lambda raw: raw["warning_signs"][1].__setitem__("issue", "hp.lr.gone"))
    with pytest.raises(
        KnowledgeError, match=r"^diagnosis\.yaml: warning_signs\[1\]\.issue: refers to unknown rule id"
    ):
        load(path=folder)


def test_bands_with_a_gap_are_rejected(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "rules.yaml", lambda raw: raw["dataset_size_bands"][1].__setitem__("min", 150))
    with pytest.raises(
        KnowledgeError,
        match=r"^rules\.yaml: dataset_size_bands: 'size.band.lt_100' ends at 100 but 'size.band.100_1k' starts at 150",
    ):
        load(path=folder)


def test_arithmetic_checks_catch_a_wrong_total(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "hyperparameters.yaml", lambda raw: raw["full_ft_memory_7b"].__setitem__("total_gb", 112))
    with pytest.raises(
        KnowledgeError, match=r"^hyperparameters\.yaml: full_ft_memory_7b: the parts add up to 120"
    ):
        load(path=folder)


def test_bad_id_format_and_bad_regex(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _edit(folder, "rules.yaml", lambda raw: raw["goals"][0].__setitem__("id", "Goal Quality"))
    with pytest.raises(KnowledgeError, match=r"^rules\.yaml: goals\[0\]\.id: string should match pattern"):
        load(path=folder)
    folder2 = tmp_path / "second"
    folder2.mkdir()
    _copy(folder2)
    _edit(folder2, "data.yaml", lambda raw: raw["filters"]["error_markers"]["patterns"].append("(unclosed"))
    with pytest.raises(
        KnowledgeError,
        match=r"^data\.yaml: filters\.error_markers\.patterns: pattern '\(unclosed' does not compile",
    ):
        load(path=folder2)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "checklist.yaml").write_text("checklist: [unclosed\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"^checklist\.yaml: line \d+: invalid YAML"):
        load(path=folder)
    (folder / "checklist.yaml").unlink()
    with pytest.raises(KnowledgeError, match=r"^checklist\.yaml: file not found"):
        load(path=folder / ".")


def test_knowledge_error_is_a_value_error() -> None:
    assert issubclass(KnowledgeError, ValueError)


def test_rules_in_extra_yaml_files_are_citable() -> None:
    """cleaning.yaml is not one of the five typed files, yet the advisor and the data tools cite its ids."""
    from knowledge import loader

    extra = sorted(p.name for p in loader.files("knowledge").iterdir()
                   if p.name.endswith(".yaml") and p.name not in loader.FILES)
    assert "cleaning.yaml" in extra
    assert loader.rule("data.clean.empty").file == "cleaning.yaml"
