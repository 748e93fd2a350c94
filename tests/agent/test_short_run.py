"""routing.short_run: the pipeline's check run sized for this machine (knowledge/short_run.yaml)."""

from __future__ import annotations

import knowledge
from agent import routing

GPU_PLAN = {"per_device_batch_size": 2, "gradient_accumulation_steps": 16}


def test_cpu_and_small_model_gets_the_cpu_batch_and_an_evaluation_subset() -> None:
    run, reasons = routing.short_run(GPU_PLAN, device={"kind": "cpu"}, model_params_b=0.135, max_steps=None)
    cpu = knowledge.rule("hp.batch.cpu").raw
    assert run["per_device_batch_size"] == cpu["per_device_batch_size"] == 8
    assert run["gradient_accumulation_steps"] <= 2 and run["max_steps"] == cpu["max_steps"] == 20
    assert run["eval_steps"] * cpu["evaluations"] <= run["max_steps"]  # every planned evaluation happens
    assert run["val_rows"] == 40 and run["evaluation"] == {"test_rows": 40, "compare_rows": 10, "probes": 24}
    assert [r.rule for r in reasons] == ["hp.batch.cpu", "hp.lr.check_run", "eval.short_run.subset"]
    assert run["learning_rate"] == knowledge.rule("hp.lr.check_run").raw["learning_rate"] == 1e-3
    assert reasons[0].evidence["plan"] == GPU_PLAN and "2 x 16" in reasons[0].text


def test_the_user_step_count_wins() -> None:
    run, _ = routing.short_run(GPU_PLAN, device={"kind": "cpu"}, model_params_b=0.5, max_steps=30)
    assert run["max_steps"] == 30 and run["eval_steps"] == 10


def test_gpu_or_large_model_keeps_the_plan_and_scores_everything() -> None:
    for device, params in (({"kind": "cuda", "gpu_memory_gb": 24}, 0.135), ({"kind": "cpu"}, 7.0)):
        run, reasons = routing.short_run(GPU_PLAN, device=device, model_params_b=params, max_steps=20)
        assert (run["per_device_batch_size"], run["gradient_accumulation_steps"], run["max_steps"]) == (2, 16, 20)
        assert run["evaluation"] is None and run["val_rows"] is None and run["eval_steps"] is None
        assert reasons == []


def test_the_rules_live_in_short_run_yaml_and_are_not_seed_numbers() -> None:
    for rid in ("hp.batch.cpu", "eval.short_run.subset"):
        r = knowledge.rule(rid)
        assert r.file == "short_run.yaml" and (r.source or "").startswith("tunewise: ")
