"""``tunewise advise``: scripted JSON, errors naming the missing answer, the diagram, interactive + resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

REPO = Path(__file__).resolve().parents[2]
ANSWERS = {"task": "domain_language", "goals": ["quality", "latency"], "quality_target": 0.9, "test_set": "",
           "prompt_quality": 0.6, "optimized_prompt_quality": 0.7, "n_examples": 3000, "gpu_memory_gb": 16,
           "gpus": 1, "model_params_b": 7, "prompt_dev_hours": 4, "hourly_rate": 100, "data_prep_hours": 40,
           "training_cost": 500}


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import graph, pipeline, routing

    # the seed's memory table: exact numbers
    monkeypatch.setattr(pipeline, "estimate_memory", lambda params_b, method, **kw: routing.memory_estimate(params_b, method))
    monkeypatch.setattr(graph, "detect_device", lambda: {"kind": "cpu", "gpus": 0, "gpu_memory_gb": None})


def test_scripted_json_document(tmp_path: Path) -> None:
    f = tmp_path / "answers.json"
    f.write_text(json.dumps(ANSWERS))
    r = CliRunner().invoke(app, ["advise", "--answers", str(f), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"session_id", "recommendation"}
    rec = doc["recommendation"]
    assert rec["path"] == "fine_tune" and rec["method"] == "qlora"
    assert set(rec["hyperparameters"]) >= {"learning_rate", "epochs", "per_device_batch_size",
                                          "gradient_accumulation_steps", "weight_decay", "warmup_ratio", "lora"}
    assert rec["memory_estimate_gb"] == 12 and rec["roi"]["ratio"] == 11.25
    assert all({"rule", "text", "evidence"} <= set(r) for r in rec["reasons"])


def test_scripted_yaml_and_human_output(tmp_path: Path) -> None:
    import yaml

    f = tmp_path / "answers.yaml"
    f.write_text(yaml.safe_dump({"answers": {**ANSWERS, "goals": ["recent_information"]}}))
    r = CliRunner().invoke(app, ["advise", "--answers", str(f)])
    assert r.exit_code == 0, r.output
    assert "retrieval" in r.stdout and "dft.recent_information" in r.stdout


def test_missing_required_answer_is_an_error_naming_it(tmp_path: Path) -> None:
    f = tmp_path / "answers.json"
    f.write_text(json.dumps({k: v for k, v in ANSWERS.items() if k != "n_examples"}))
    r = subprocess.run([sys.executable, "-m", "cli", "advise", "--answers", str(f), "--json"], cwd=REPO,
                       capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                          "CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 2
    doc = json.loads(r.stdout)  # still exactly one JSON document on stdout
    assert "n_examples" in doc["error"]["what"] and doc["error"]["error"] == "InputError"
    assert "Traceback" not in r.stderr


def test_the_target_machine_defaults_to_this_one(tmp_path: Path) -> None:
    """No GPU answer: the machine is a fact (this CPU, no GPU), and no GPU means LoRA, not QLoRA."""
    f = tmp_path / "answers.json"
    f.write_text(json.dumps({k: v for k, v in ANSWERS.items() if k not in ("gpu_memory_gb", "gpus")}))
    r = CliRunner().invoke(app, ["advise", "--answers", str(f), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)["recommendation"]
    assert rec["method"] == "lora" and rec["device"]["kind"] == "cpu"
    assert "method.select.no_gpu" in [x["rule"] for x in rec["reasons"]]
    assert any(c["condition"] == "with a 16 GB GPU" and c["method"] == "qlora" for c in rec["what_would_change"])


def test_graph_prints_mermaid() -> None:
    r = CliRunner().invoke(app, ["advise", "--graph"])
    assert r.exit_code == 0
    assert r.stdout.lstrip().startswith("---") and "graph TD;" in r.stdout and "prompt_baseline" in r.stdout


def test_readme_diagram_is_current() -> None:
    from agent.graph import mermaid

    for name in ("README.md", "docs/advisor.md"):
        doc = (REPO / name).read_text()
        assert mermaid().strip() in doc, f"regenerate with `tunewise advise --graph` and paste into {name}"


def test_interactive_reask_back_quit_then_resume() -> None:
    runner = CliRunner()
    # no data file, no test set (the files first), task, goals, bar (default), a bad score (re-asked), back to
    # the bar, quit
    first = runner.invoke(app, ["advise"], input="\n\n1\nquality\n\nlots\nback\n\nquit\n")
    assert first.exit_code == 0, first.output
    assert "not a number" in first.output
    sid = first.output.split("--resume ")[-1].split("`")[0].strip()
    assert sid.startswith("adv-")
    # resume: the pending question is prompt_quality again; answer through to a prompts recommendation
    second = runner.invoke(app, ["advise", "--resume", sid], input="0.95\n")
    assert second.exit_code == 0, second.output
    assert "Use prompts" in second.output and "dt.step1.quality_bar" in second.output


def test_resume_unknown_session_is_an_error() -> None:
    from tools.errors import InputError

    r = CliRunner().invoke(app, ["advise", "--resume", "adv-nope"])
    assert isinstance(r.exception, InputError) and "adv-nope" in str(r.exception)
