"""Interactive sessions: interrupt/resume by id across Advisor instances, re-asking, back, the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.advisor import Advisor
from agent.api import Step
from tools.types import ProgressEvent

SCRIPT = {"task": "classification", "goals": "quality, consistency", "quality_target": "90%", "data": "", "test_set": "",
          "prompt_quality": "0.6", "optimized_prompt_quality": "72%", "n_examples": "2k", "latency_budget_ms": "",
          "consistency": "high", "prompt_dev_hours": "", "gpu_memory_gb": "24", "gpus": "1", "model_params_b": "7",
          "go_on": "no", "learning_curve": "no", "use": ""}


def drive(adv: Advisor, step: Step, answers: dict[str, Any], *, stop_at: str | None = None) -> Step:
    while step.kind == "question" and step.question is not None:
        qid = step.question.id
        if qid == stop_at:
            return step
        assert step.question.error is None, (qid, step.question.error)
        step = adv.answer(answers[qid])
    return step


def test_interrupt_resume_by_id_across_instances() -> None:
    first = Advisor()
    step = first.start()
    assert step.kind == "question" and step.question.id == "data"  # the user's files first
    step = drive(first, step, SCRIPT, stop_at="n_examples")
    sid = first.session_id
    del first

    second = Advisor(sid)  # a new instance, as after a restart
    assert second.exists()
    step = second.start()  # start on an existing session resumes it
    assert step.question.id == "n_examples"
    assert second.current().question.id == "n_examples"
    assert step.answers["optimized_prompt_quality"] == 0.72
    step = drive(second, step, SCRIPT, stop_at="go_on")
    assert step.recommendation.path == "fine_tune"  # shown before asking whether to act on it
    done = drive(second, step, SCRIPT)
    assert done.kind == "done"
    rec = done.recommendation
    assert rec.path == "fine_tune" and rec.method == "lora"
    assert done.answers["n_examples"] == 2000
    assert [r.rule for r in done.path][:2] == ["dt.quality_bar", "dt.step1"]
    # the checklist is ticked from evidence
    assert done.checklist["chk.before.enough_examples"]["done"] is True
    assert done.checklist["chk.before.prompts_first"]["done"] is False  # reported, not measured
    assert done.checklist["chk.during.lora"]["done"] is True
    assert done.checklist["chk.after.test_set"]["done"] is False
    # and a third instance sees the finished session; a Step is plain JSON for any front end
    assert Advisor(sid).current().recommendation == rec
    import json

    assert json.loads(json.dumps(done.to_dict()))["recommendation"]["path"] == "fine_tune"


def test_bad_answers_are_reasked_with_the_reason() -> None:
    adv = Advisor()
    step = adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "", "test_set": ""})
    assert step.question.id == "prompt_quality"
    for bad, words in (("lots", "not a number"), ("150%", "at most 1"), ("", "required"), ("-0.1", "at least 0")):
        step = adv.answer(bad)
        assert step.kind == "question" and step.question.id == "prompt_quality"
        assert step.question.error and words in step.question.error, (bad, step.question.error)
    step = adv.answer("0.95")
    assert step.kind == "done" and step.recommendation.path == "prompts"


def test_choice_and_path_answers_are_validated(tmp_path: Any) -> None:
    adv = Advisor()
    step = adv.start()
    assert step.question.id == "data"
    step = adv.answer("")  # no data file yet
    step = adv.answer(str(tmp_path / "missing.jsonl"))
    assert step.question.id == "test_set" and "does not exist" in step.question.error
    step = adv.answer("")
    step = adv.answer("sorting")
    assert step.question.id == "task" and "classification" in step.question.error
    step = adv.answer("2")  # the number shown next to a choice
    assert step.answers["task"] == "extraction"
    step = adv.answer("quality, telepathy")
    assert step.question.id == "goals" and "telepathy" in step.question.error
    step = adv.answer("quality")
    step = adv.answer("")  # quality_target: the default bar
    assert step.answers["quality_target"] == 0.9


def test_back_revises_the_previous_answer() -> None:
    adv = Advisor()
    step = adv.start({"data": "", "test_set": ""})
    step = adv.answer("classification")
    step = adv.answer("quality")
    assert step.question.id == "quality_target"
    step = adv.back()
    assert step.question.id == "goals" and "goals" not in step.answers
    step = adv.answer("latency")
    assert step.answers["goals"] == ["latency"]
    step = adv.back()
    step = adv.back()
    assert step.question.id == "task"
    step = adv.back()  # nothing earlier: the same question, with a note
    assert step.question.id == "task" and step.question.error


def test_back_from_the_final_recommendation() -> None:
    adv = Advisor()
    step = adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "", "test_set": ""})
    step = adv.answer("0.95")
    assert step.kind == "done" and step.recommendation.path == "prompts"
    step = adv.back()
    assert step.kind == "question" and step.question.id == "prompt_quality"
    step = adv.answer("0.5")
    assert step.question.id == "optimized_prompt_quality"
    assert step.recommendation is None


def test_pipeline_runs_the_tools_streams_progress_and_ticks_the_checklist(fake_tools: dict[str, Any]) -> None:
    events: list[ProgressEvent] = []
    adv = Advisor(on_progress=events.append)
    answers = {**SCRIPT, "test_set": fake_tools["test_file"], "model": "smollm2-135m-instruct", "go_on": "yes",
               "data": fake_tools["data_file"], "max_steps": "20"}
    step = drive(adv, adv.start(), answers)
    assert step.kind == "done"
    names = fake_tools["calls"].names()
    # the data file is read (cleaned, split) before the prompt baseline; the pipeline reuses that work
    assert names == ["clean", "split", "prompt_eval", "train", "evaluate_test", "compare", "ab", "forgetting", "diagnose"]
    config = fake_tools["calls"][3][1]
    # the CPU check run trains at hp.lr.check_run's 1e-3; the recommended plan keeps the GPU run's 2e-4
    assert config.method == "lora" and config.learning_rate == 1e-3 and config.max_steps == 20
    plan = adv._graph.get_state(adv._config).values["plan"]
    assert plan["hyperparameters"]["learning_rate"] == 2e-4 and plan["short_run"]["learning_rate"] == 1e-3
    # the embedded model's size is read, not asked (0.135B), so this CPU's check run is CPU-sized
    assert step.derived["model_params_b"]["value"] == 0.135 and "model_params_b" not in adv._graph.get_state(
        adv._config).values.get("asked", [])
    assert config.per_device_train_batch_size == 8 and config.gradient_accumulation_steps == 1 and config.lora_r == 8
    assert {e.stage for e in events} >= {"prompt_eval", "clean", "train"}
    assert [e.metrics["loss"] for e in events if e.stage == "train"][0] == 2.0
    rec = step.recommendation
    assert rec.pipeline["train"]["run_id"] == "run-1"
    assert "examples" not in rec.pipeline["clean"]
    cited = [r["rule"] for r in rec.reasons]
    assert {"eval.test_once", "roi.worth_it", "eval.forgetting_check", "diag.overfitting"} <= set(cited)
    worth = next(r for r in rec.reasons if r["rule"] == "roi.worth_it")
    assert worth["evidence"]["gain"] == 0.13  # 0.95 tested vs 0.82 best measured prompt
    done = {k for k, v in step.checklist.items() if v["done"]}
    assert {"chk.before.prompts_first", "chk.before.clean_data", "chk.before.split", "chk.after.test_set",
            "chk.after.forgetting", "chk.after.ab_test", "chk.during.val_loss", "chk.after.document"} <= done
    # answers, decisions and tool calls are in the run log
    from tools.runlog import RunLog

    log = RunLog()
    sid = adv.session_id
    calls = log.query("SELECT name, status FROM tool_calls WHERE session_id = ? ORDER BY started_at", [sid])
    assert [c["name"] for c in calls] == names and {c["status"] for c in calls} == {"ok"}
    assert log.query("SELECT count(*) AS n FROM answers WHERE session_id = ?", [sid])[0]["n"] == len(step.answers)
    # the log keeps every application per node; the recommendation cites each rule once
    assert log.query("SELECT count(DISTINCT rule_id) AS n FROM decisions WHERE session_id = ?", [sid])[0]["n"] \
        == len(rec.reasons) == len({r["rule"] for r in rec.reasons})
    nodes = {r["node"] for r in log.query("SELECT DISTINCT node FROM decisions WHERE session_id = ?", [sid])}
    assert {"intake", "prompt_baseline", "consider_fine_tuning", "plan_training", "diagnose_run"} <= nodes
    assert log.query("SELECT status FROM sessions WHERE session_id = ?", [sid])[0]["status"] == "done"


def test_unusable_test_set_is_reasked_with_the_tool_error(fake_tools: dict[str, Any]) -> None:
    fake_tools["fail"] = "prompt_eval"
    adv = Advisor()
    step = adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "",
                      "test_set": fake_tools["test_file"], "model": "smollm2-135m-instruct"})
    assert step.question.id == "test_set" and "no labels" in step.question.error
    step = adv.answer("")
    assert step.question.id == "prompt_quality"


def test_a_failing_training_run_stops_the_pipeline_cleanly(fake_tools: dict[str, Any]) -> None:
    fake_tools["fail"] = "train"
    adv = Advisor()
    answers = {**SCRIPT, "go_on": "yes", "data": fake_tools["data_file"], "model": "", "max_steps": ""}
    step = drive(adv, adv.start(), answers)
    assert step.kind == "done"
    pipe = step.recommendation.pipeline
    assert pipe["error"]["step"] == "train_model" and "out of memory" in pipe["error"]["message"]
    assert "evaluate" not in pipe
    assert step.recommendation.reasons[-1]["rule"] == "principle.validation"


def test_bad_data_file_is_reasked(fake_tools: dict[str, Any]) -> None:
    fake_tools["fail"] = "clean"
    adv = Advisor()
    answers = {**SCRIPT, "go_on": "yes", "data": fake_tools["data_file"], "model": "", "max_steps": ""}
    step = adv.start()
    while step.kind == "question" and not (step.question.id == "data" and step.question.error):
        step = adv.answer(answers[step.question.id])
    assert step.question.id == "data" and "no usable rows" in step.question.error


def test_unknown_model_is_reasked(fake_tools: dict[str, Any]) -> None:
    fake_tools["fail"] = "model"
    fake_tools["baseline"] = 0.95
    adv = Advisor()
    step = adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "",
                      "test_set": fake_tools["test_file"], "model": "gpt-17"})
    assert step.question.id == "model" and "gpt-17" in step.question.error
    step = adv.answer("")  # the embedded model
    assert step.kind == "done" and step.recommendation.prompt_quality["measured"] is True


def test_advisor_can_be_driven_from_worker_threads() -> None:
    """The TUI answers from a worker thread; the session store must accept that."""
    from concurrent.futures import ThreadPoolExecutor

    adv = Advisor()
    with ThreadPoolExecutor(max_workers=1) as pool:
        step = pool.submit(adv.start, {"task": "tone", "goals": ["tone_style"], "data": "", "test_set": ""}).result()
        assert step.question.id == "quality_target"
        step = pool.submit(adv.answer, "0.9").result()
    step = adv.answer("0.95")
    assert step.kind == "done" and step.recommendation.path == "prompts"
    adv.close()


def test_a_failing_evaluation_is_noted_and_the_run_still_diagnosed(fake_tools: dict[str, Any]) -> None:
    fake_tools["fail"] = "evaluate"
    adv = Advisor()
    answers = {**SCRIPT, "go_on": "yes", "data": fake_tools["data_file"], "model": "", "max_steps": ""}
    step = drive(adv, adv.start(), answers)
    pipe = step.recommendation.pipeline
    assert "unknown model" in pipe["errors"]["evaluate_model"] and "error" not in pipe
    assert fake_tools["calls"].names()[-2:] == ["forgetting", "diagnose"]
    assert not step.checklist["chk.after.test_set"]["done"] and step.checklist["chk.after.forgetting"]["done"]
    assert "principle.validation" in [r["rule"] for r in step.recommendation.reasons]


def test_a_bug_in_a_tool_ends_the_step_not_the_session(fake_tools: dict[str, Any]) -> None:
    fake_tools["fail"] = "forgetting"
    adv = Advisor()
    answers = {**SCRIPT, "go_on": "yes", "data": fake_tools["data_file"], "model": "", "max_steps": ""}
    step = drive(adv, adv.start(), answers)
    assert step.kind == "done"
    assert "internal error in forgetting" in step.recommendation.pipeline["errors"]["check_forgetting"]
    from tools.runlog import RunLog

    row = RunLog().query("SELECT status, error FROM tool_calls WHERE name = 'forgetting'")[0]
    assert row["status"] == "crashed" and "Traceback" in row["error"]


# ------------------------------------------------------------------ the short run is sized for this machine

def _run_pipeline(fake_tools: dict[str, Any], **changes: Any) -> Step:
    answers = {**SCRIPT, "test_set": fake_tools["test_file"], "model": "smollm2-135m-instruct", "go_on": "yes",
               "data": fake_tools["data_file"], "max_steps": "20", **changes}
    adv = Advisor()
    return drive(adv, adv.start(), answers)


def test_cpu_short_run_of_a_small_model_is_cpu_sized_and_checked_on_a_subset(fake_tools: dict[str, Any]) -> None:
    step = _run_pipeline(fake_tools, model_params_b="0.135")  # the autouse fixture reports a CPU-only machine
    assert step.kind == "done"
    config = next(c[1] for c in fake_tools["calls"] if c[0] == "train")
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (8, 1)
    assert config.max_steps == 20 and config.eval_steps == 6  # 3 evaluations
    assert config.val.endswith("val_first_40.jsonl") and len(Path(config.val).read_text().splitlines()) == 40
    assert fake_tools["limits"] == {"evaluate_test": 40, "compare": 40, "ab": 40, "forgetting": 24}
    assert ("compare", "run-1", 10) in fake_tools["calls"]
    rec = step.recommendation
    # the recommendation's plan is still the table's, for the 24 GB GPU the user described
    assert (rec.hyperparameters["per_device_batch_size"], rec.hyperparameters["gradient_accumulation_steps"]) \
        == (2, 16)
    assert rec.short_run["device"] == "cpu" and rec.short_run["evaluation"]["probes"] == 24
    cpu = next(r for r in rec.reasons if r["rule"] == "hp.batch.cpu")
    assert cpu["evidence"]["short_run"] == {"per_device_batch_size": 8, "gradient_accumulation_steps": 1,
                                            "max_steps": 20}
    assert "no GPU" in cpu["text"] and "2 x 16" in cpu["text"]
    assert "eval.short_run.subset" in [r["rule"] for r in rec.reasons]


def test_gpu_short_run_keeps_the_plan_and_scores_everything(fake_tools: dict[str, Any],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from agent import graph

    monkeypatch.setattr(graph, "detect_device", lambda: {"kind": "cuda", "gpus": 1, "gpu_memory_gb": 24.0})
    step = _run_pipeline(fake_tools, model_params_b="0.135")
    config = next(c[1] for c in fake_tools["calls"] if c[0] == "train")
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps, config.max_steps) == (2, 16, 20)
    assert config.eval_steps is None and config.val.endswith("split/val.jsonl")
    assert fake_tools["limits"] == {"evaluate_test": None, "compare": None, "ab": None, "forgetting": None}
    assert ("compare", "run-1", 30) in fake_tools["calls"]
    assert "hp.batch.cpu" not in [r["rule"] for r in step.recommendation.reasons]


def test_demo_answers_give_a_cpu_sized_short_run(fake_tools: dict[str, Any]) -> None:
    from tui import services

    answers = {**services.demo_answers(), "test_set": fake_tools["test_file"], "data": fake_tools["data_file"],
               "go_on": True}
    adv = Advisor()
    step = adv.start(answers)
    while step.kind == "question":
        step = adv.answer(step.question.default)
    config = next(c[1] for c in fake_tools["calls"] if c[0] == "train")
    assert config.per_device_train_batch_size == 8 and config.gradient_accumulation_steps <= 2
    assert config.max_steps == services.demo_answers()["max_steps"] and config.eval_steps
    assert fake_tools["limits"]["evaluate_test"] == 40 and fake_tools["limits"]["forgetting"] == 24


def test_a_qlora_target_gets_a_lora_check_run_on_this_cpu(fake_tools: dict[str, Any]) -> None:
    """The recommendation is for the 16 GB GPU (QLoRA); the check run here, on a CPU, trains LoRA."""
    step = _run_pipeline(fake_tools, gpu_memory_gb="16", model_params_b="0.135")
    rec = step.recommendation
    assert rec.method == "qlora"
    config = next(c[1] for c in fake_tools["calls"] if c[0] == "train")
    assert config.method == "lora" and rec.short_run["method"] == "lora"
    ev = next(r["evidence"] for r in rec.reasons if r["rule"] == "method.check_run.cpu")
    assert ev == {"target_method": "qlora", "check_run_method": "lora"}
