"""Scripted sessions reproduce the seed's decision tree: every branch, every hyperparameter-table row.

Expected numbers are written out from the seed (and tunewise's documented corrections), not read back
from knowledge/, so a wrong table row or a wrong lookup fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent import routing
from agent.advisor import run_scripted
from tools.errors import InputError

FINE_TUNE = dict(task="domain_language", goals=["quality"], quality_target=0.9, test_set="", prompt_quality=0.6,
                 optimized_prompt_quality=0.7, n_examples=5000, consistency="variable", gpu_memory_gb=24, gpus=1,
                 model_params_b=7)


def advise(**changes: Any) -> dict[str, Any]:
    answers = {**FINE_TUNE, **changes}
    answers = {k: v for k, v in answers.items() if v is not None}
    return run_scripted(answers)["recommendation"]


def rules(rec: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in rec["reasons"]]


# ------------------------------------------------------------------ branches of the tree

BRANCHES = [
    # id, answer changes, expected path, rule ids that must be cited
    ("step1_prompts_reach_bar", dict(prompt_quality=0.92), "prompts", ["dt.quality_bar", "dt.step1.quality_bar"]),
    ("step1_exactly_at_bar", dict(prompt_quality="90%"), "prompts", ["dt.step1.quality_bar"]),
    ("step1_user_bar", dict(quality_target=0.8, prompt_quality=0.85), "prompts", ["dt.step1.quality_bar"]),
    ("step2_optimized_reach_bar", dict(optimized_prompt_quality=0.91), "optimized_prompts",
     ["dt.step1", "dt.step2.quality_bar", "dt.step2.more_shots", "dt.step2.temperature_zero"]),
    ("step2_user_bar_missed", dict(quality_target=0.97, prompt_quality=0.93, optimized_prompt_quality=0.95), "fine_tune",
     ["ftw.prompts_fail", "dt.step3", "perf.quality.95_98"]),
    ("goal_recent_information", dict(goals=["recent_information"]), "rag", ["dft.recent_information"]),
    ("goal_tone_and_format", dict(goals=["tone_style", "output_format"]), "optimized_prompts",
     ["dft.tone_style", "dft.output_format"]),
    ("goal_quick_experiment", dict(goals=["quick_experiment"]), "optimized_prompts", ["dft.quick_experiment"]),
    ("goal_mixed_goes_on", dict(goals=["recent_information", "latency"]), "fine_tune",
     ["dft.recent_information", "ftw.latency"]),
    ("goal_consistency", dict(goals=["consistency"]), "fine_tune", ["ftw.consistency"]),
    ("goal_new_capability", dict(goals=["new_capability"]), "fine_tune", ["ftw.new_capability"]),
    ("size_under_100", dict(n_examples=99), "prompts", ["size.band.lt_100", "dft.few_examples"]),
    ("size_0", dict(n_examples=0), "prompts", ["size.band.lt_100"]),
    ("size_100", dict(n_examples=100), "collect_more_data", ["size.band.100_1k"]),
    ("size_999", dict(n_examples=999), "collect_more_data", ["size.band.100_1k"]),
    ("size_1000", dict(n_examples=1000), "fine_tune", ["size.band.1k_10k", "ftw.min_examples"]),
    ("size_10000", dict(n_examples=10000), "fine_tune", ["size.band.1k_10k"]),
    ("size_10001", dict(n_examples=10001), "fine_tune", ["size.band.gt_10k"]),
    ("perf_strict", dict(quality_target=0.99, prompt_quality=0.9, optimized_prompt_quality=0.95, latency_budget_ms=150,
                         consistency="perfect"), "fine_tune",
     ["perf.quality.98_plus", "perf.latency.lt_200", "perf.consistency.perfect"]),
    ("perf_mid", dict(latency_budget_ms=1000, consistency="high"), "fine_tune",
     ["perf.quality.90_95", "perf.latency.200_1000", "perf.consistency.high"]),
    ("perf_relaxed", dict(quality_target=0.85, prompt_quality=0.5, optimized_prompt_quality=0.6, latency_budget_ms=1001),
     "fine_tune", ["perf.quality.below_90", "perf.latency.gt_1000", "perf.consistency.variable"]),
]


@pytest.mark.parametrize("changes,path,cited", [b[1:] for b in BRANCHES], ids=[b[0] for b in BRANCHES])
def test_branch(changes: dict[str, Any], path: str, cited: list[str]) -> None:
    rec = advise(**changes)
    assert rec["path"] == path
    for rid in cited:
        assert rid in rules(rec), (rid, rules(rec))
    for r in rec["reasons"]:
        assert r["rule"] and r["text"]
    if path == "fine_tune":
        assert rec["method"] in ("lora", "qlora", "full") and rec["hyperparameters"]
    else:
        assert rec["method"] is None and rec["hyperparameters"] is None


@pytest.mark.parametrize("task,complexity,rank", [
    ("classification", "simple", 8), ("extraction", "simple", 8), ("formatting", "simple", 8), ("tone", "simple", 8),
    ("multi_step_reasoning", "complex", 16), ("domain_language", "complex", 16), ("complex_behavior", "complex", 16),
    ("new_capability", "complex", 16), ("other", "unknown", 8),
])
def test_task_complexity_is_cited_and_sets_rank(task: str, complexity: str, rank: int) -> None:
    rec = advise(task=task)
    assert f"task.{task}" in rules(rec)
    ev = next(r["evidence"] for r in rec["reasons"] if r["rule"] == f"task.{task}")
    assert ev["complexity"] == complexity
    assert rec["hyperparameters"]["lora"]["r"] == rank
    assert rec["hyperparameters"]["lora"]["lora_alpha"] == 2 * rank
    assert f"hp.lora.rank.{rank}" in rules(rec)


def test_measured_evidence_is_carried(fake_tools: dict[str, Any]) -> None:
    fake_tools["baseline"] = 0.93
    rec = advise(test_set=fake_tools["test_file"], prompt_quality=None, optimized_prompt_quality=None)
    assert rec["path"] == "prompts"
    ev = next(r["evidence"] for r in rec["reasons"] if r["rule"] == "dt.step1.quality_bar")
    assert ev["measured"] is True and ev["quality"] == 0.93 and ev["metric"] == "accuracy" and ev["n"] == 40
    assert rec["prompt_quality"]["measured"] is True


def test_measured_variants_decide_step2(fake_tools: dict[str, Any]) -> None:
    fake_tools["variants"] = [("more_shots", 0.85), ("chain_of_thought", 0.91)]
    rec = advise(test_set=fake_tools["test_file"], prompt_quality=None, optimized_prompt_quality=None)
    assert rec["path"] == "optimized_prompts"
    ev = next(r["evidence"] for r in rec["reasons"] if r["rule"] == "dt.step2.quality_bar")
    assert ev["variant"] == "chain_of_thought" and ev["quality"] == 0.91
    config = fake_tools["calls"][0][1]
    assert config.test == fake_tools["test_file"] and config.variants is True


def test_roi_on_the_seed_example() -> None:
    rec = advise(prompt_dev_hours=4, hourly_rate=100, data_prep_hours=40, training_cost=500)
    roi = rec["roi"]
    assert roi["prompt_cost"] == 400 and roi["fine_tune_cost"] == 4500 and roi["ratio"] == 11.25
    assert roi["min_quality_improvement"] == 0.10
    assert roi["target_quality"] == pytest.approx(0.8)  # best prompt 0.7 + 10 points
    assert "roi.formula" in rules(rec) and "roi.worth_it" in rules(rec)


def test_roi_skipped_without_numbers() -> None:
    rec = advise()
    assert rec["roi"] is None
    assert "cost.fine_tuning" in rules(rec)


def test_memory_that_does_not_fit_is_flagged(memory_table: None) -> None:
    rec = advise(gpu_memory_gb=79, model_params_b=70, n_examples=3000)
    assert rec["method"] == "lora" and rec["memory_estimate_gb"] == 300
    assert "diag.out_of_memory.fix.qlora" in rules(rec)


def test_missing_required_answer_names_it() -> None:
    answers = {k: v for k, v in FINE_TUNE.items() if k != "n_examples"}
    with pytest.raises(InputError) as e:
        run_scripted(answers)
    assert "n_examples" in str(e.value)


def test_invalid_scripted_answer_names_it() -> None:
    with pytest.raises(InputError) as e:
        run_scripted({**FINE_TUNE, "consistency": "sometimes"})
    assert "consistency" in str(e.value) and "variable" in str(e.value)


# ------------------------------------------------------------------ every row of the hyperparameter tables

# method, lr row, (lr, range), epochs, (per-device, accumulation), weight decay, split (train, val, test)
HP_ROWS = [
    # QLoRA: under 24 GB (method.select.qlora)
    (dict(gpu_memory_gb=8, model_params_b=1, n_examples=1000), "qlora", "method.select.qlora", "hp.lr.qlora.1b",
     2e-4, (1e-4, 3e-4), 3, (1, 32), "hp.batch.16gb", 0.01, (0.70, 0.15, 0.15)),
    (dict(gpu_memory_gb=16, model_params_b=7, n_examples=5000), "qlora", "method.select.qlora", "hp.lr.qlora.7b",
     2e-4, (1e-4, 2e-4), 2, (1, 32), "hp.batch.16gb", 0.01, (0.75, 0.125, 0.125)),
    (dict(gpu_memory_gb=20, model_params_b=13, n_examples=10000), "qlora", "method.select.qlora", "hp.lr.qlora.13b",
     2e-4, (1e-4, 2e-4), 2, (1, 32), "hp.batch.16gb", 0.01, (0.75, 0.125, 0.125)),
    (dict(gpu_memory_gb=23.9, model_params_b=70, n_examples=20000), "qlora", "method.select.qlora", "hp.lr.qlora.70b",
     1e-4, (5e-5, 1e-4), 1, (1, 32), "hp.batch.16gb", 0.001, (0.80, 0.10, 0.10)),
    # LoRA: 24 to 80 GB (method.select.lora)
    (dict(gpu_memory_gb=24, model_params_b=0.5, n_examples=2000), "lora", "method.select.lora", "hp.lr.lora.1b",
     2e-4, (1e-4, 3e-4), 3, (2, 16), "hp.batch.24gb", 0.01, (0.70, 0.15, 0.15)),
    (dict(gpu_memory_gb=40, model_params_b=7, n_examples=7000), "lora", "method.select.lora", "hp.lr.lora.7b",
     2e-4, (1e-4, 2e-4), 2, (4, 8), "hp.batch.40gb", 0.01, (0.75, 0.125, 0.125)),
    (dict(gpu_memory_gb=48, model_params_b=13, n_examples=15000), "lora", "method.select.lora", "hp.lr.lora.13b",
     2e-4, (1e-4, 2e-4), 1, (4, 8), "hp.batch.40gb", 0.001, (0.80, 0.10, 0.10)),
    (dict(gpu_memory_gb=79, model_params_b=70, n_examples=3000), "lora", "method.select.lora", "hp.lr.lora.70b",
     1e-4, (5e-5, 1e-4), 3, (4, 8), "hp.batch.40gb", 0.01, (0.70, 0.15, 0.15)),
    # Full: 80 GB+, 100k+ examples, 2+ GPUs (method.select.full) -- the seed's own learning-rate table
    (dict(gpu_memory_gb=80, gpus=2, model_params_b=1, n_examples=100000), "full", "method.select.full", "hp.lr.full.1b",
     3e-5, (1e-5, 3e-5), 1, (8, 4), "hp.batch.80gb", 0.001, (0.80, 0.10, 0.10)),
    (dict(gpu_memory_gb=80, gpus=4, model_params_b=7, n_examples=200000), "full", "method.select.full", "hp.lr.full.7b",
     1e-5, (1e-6, 1e-5), 1, (8, 4), "hp.batch.80gb", 0.001, (0.80, 0.10, 0.10)),
    (dict(gpu_memory_gb=141, gpus=8, model_params_b=13, n_examples=150000), "full", "method.select.full",
     "hp.lr.full.13b", 5e-6, (1e-6, 5e-6), 1, (8, 4), "hp.batch.80gb", 0.001, (0.80, 0.10, 0.10)),
    (dict(gpu_memory_gb=80, gpus=8, model_params_b=70, n_examples=1000000), "full", "method.select.full",
     "hp.lr.full.70b", 1e-6, (1e-7, 1e-6), 1, (8, 4), "hp.batch.80gb", 0.001, (0.80, 0.10, 0.10)),
    # 80 GB but one GPU: LoRA stays the default (method.select.default)
    (dict(gpu_memory_gb=80, gpus=1, model_params_b=7, n_examples=4999), "lora", "method.select.default",
     "hp.lr.lora.7b", 2e-4, (1e-4, 2e-4), 3, (8, 4), "hp.batch.80gb", 0.01, (0.70, 0.15, 0.15)),
]


@pytest.mark.parametrize("row", HP_ROWS, ids=[r[3] for r in HP_ROWS])
def test_hyperparameter_rows(row: tuple[Any, ...]) -> None:
    changes, method, method_rule, lr_rule, lr, lr_range, epochs, (per_device, accum), batch_rule, wd, split = row
    rec = advise(**changes)
    hp = rec["hyperparameters"]
    cited = rules(rec)
    assert rec["path"] == "fine_tune" and rec["method"] == method
    assert method_rule in cited and lr_rule in cited and batch_rule in cited
    assert hp["learning_rate"] == pytest.approx(lr)
    assert hp["learning_rate_range"] == pytest.approx(list(lr_range))
    assert hp["epochs"] == epochs
    assert (hp["per_device_batch_size"], hp["gradient_accumulation_steps"]) == (per_device, accum)
    assert 16 <= hp["effective_batch_size"] <= 64
    assert hp["weight_decay"] == wd
    assert 0.05 <= hp["warmup_ratio"] <= 0.10
    assert hp["warmup_ratio"] == (0.05 if changes["model_params_b"] < 3 else 0.10)
    assert hp["early_stopping"] == {"patience": 3, "threshold": 0.01, "metric": "eval_loss"}
    assert (rec["split"]["train"], rec["split"]["val"], rec["split"]["test"]) == split
    if method == "full":
        assert hp["lora"] is None and "hp.lr.correction.lora" not in cited
    else:
        assert hp["lora"]["target_modules"] == "all-linear" and hp["lora"]["lora_dropout"] == 0.05
        assert "hp.lr.correction.lora" in cited
    assert rec["memory_estimate_gb"] > 0


def test_memory_estimate_uses_the_estimator_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    seen: dict[str, Any] = {}

    def estimate_memory(params_b: float | None = None, model: Any = None, method: str = "lora", seq_len: int = 512,
                        batch: int = 8, *, lora_r: int = 8, **kw: Any) -> Any:
        seen.update(params_b=params_b, method=method, batch=batch, lora_r=lora_r)
        return types.SimpleNamespace(total_gb=17.5)  # the estimator's Estimate: the pipeline reads the field

    fake = types.ModuleType("tools.estimate")
    fake.estimate_memory = estimate_memory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tools.estimate", fake)
    rec = advise(gpu_memory_gb=16, model_params_b=7)
    assert rec["memory_estimate_gb"] == 17.5
    assert seen == {"params_b": 7, "method": "qlora", "batch": 1, "lora_r": 16}
    ev = next(r["evidence"] for r in rec["reasons"] if r["rule"] == "hp.memory.qlora")
    assert ev["table_gb"] == 12 and ev["tool"] == "tools.estimate"
    assert "diag.out_of_memory.fix.smaller_model" in rules(rec)  # 17.5 GB does not fit in 16


def test_rows_unreachable_through_fine_tune_path() -> None:
    """Under 1000 examples the tree never reaches a plan; the plan function still covers those rows."""
    plan, reasons = routing.hyperparameters(model_params_b=7, method_name="lora", n_examples=500, gpu_memory_gb=24)
    ids = [r.rule for r in reasons]
    assert plan["epochs"] == 5 and plan["epochs_range"] == [5, 10] and "hp.epochs.lt_1k" in ids
    assert plan["weight_decay"] == 0.1 and "hp.wd.strong" in ids
    split, reasons = routing.split_plan(500)
    assert (split["n_val"], split["n_test"]) == (100, 100)  # 15% of 500 is 75: the 100-row minimums apply
    assert {"data.split.min_val", "data.split.min_test"} <= {r.rule for r in reasons}


def test_every_lr_batch_epoch_decay_split_row_is_covered() -> None:
    import knowledge

    k = knowledge.load()
    covered = {r[3] for r in HP_ROWS} | {r[8] for r in HP_ROWS}
    assert {r.id for r in k.hyperparameters.learning_rate_by_method} <= covered
    assert {r.id for r in k.hyperparameters.batch_by_gpu_memory.rows} - covered == {"hp.batch.16gb"} - covered
    assert {r.id for r in k.rules.method_selection} == {r[2] for r in HP_ROWS}


# ------------------------------------------------------------------ what would change the decision

ANSWER_KEY = {"prompt_quality": "prompt_quality", "optimized_quality": "optimized_prompt_quality",
              "bar": "quality_target", "n_examples": "n_examples", "gpu_memory_gb": "gpu_memory_gb", "gpus": "gpus",
              "goals": "goals"}


def check_counterfactuals(rec: dict[str, Any], changes: dict[str, Any]) -> list[dict[str, Any]]:
    """Every counterfactual, replayed through the real graph with the one answer changed, gives what it says."""
    cfs = rec["what_would_change"]
    assert cfs, "every recommendation lists what would change it"
    for cf in cfs:
        assert (cf["path"], cf["method"]) != (rec["path"], rec["method"]), cf
        if cf["path"] is None:
            continue
        again = advise(**{**changes, ANSWER_KEY[cf["fact"]]: cf["to"]})
        assert again["path"] == cf["path"], (cf, again["path"])
        if cf["method"]:
            assert again["method"] == cf["method"], (cf, again["method"])
        assert cf["text"].startswith(cf["condition"])
    distances = [c["distance"] for c in cfs]
    assert distances == sorted(distances)  # smallest change first
    return cfs


@pytest.mark.parametrize("changes,path,cited", [b[1:] for b in BRANCHES], ids=[b[0] for b in BRANCHES])
def test_branch_counterfactuals_replay_through_the_graph(changes: dict[str, Any], path: str, cited: list[str]) -> None:
    rec = advise(**changes)
    check_counterfactuals(rec, changes)
    card = rec["card"]
    assert card["decision"] == path and 1 <= len(card["deciding"]) <= 4
    assert {d["rule"] for d in card["deciding"]} <= set(rules(rec))
    assert len(rules(rec)) == len(set(rules(rec)))  # no rule cited twice
    assert card["reasons_total"] == len(rec["reasons"])


def test_method_flips_are_listed_with_their_thresholds() -> None:
    rec = advise(gpu_memory_gb=24)
    texts = [c["text"] for c in check_counterfactuals(rec, dict(gpu_memory_gb=24))]
    assert "with under 24 GB of GPU memory: fine-tune with QLoRA" in texts
    assert "if optimised prompts reached 90%: use optimised prompts" in texts
    assert "with under 1,000 examples: collect more data first" in texts
    rec = advise(gpu_memory_gb=16)
    assert "with ≥24 GB of GPU memory: fine-tune with LoRA" in [c["text"] for c in rec["what_would_change"]]
    rec = advise(gpu_memory_gb=80, gpus=2, n_examples=99999)
    assert "with ≥100,000 examples: fine-tune with full fine-tuning" in [c["text"] for c in rec["what_would_change"]]


def test_no_gpu_is_an_answer_and_means_lora() -> None:
    rec = advise(gpu_memory_gb="none")
    assert rec["method"] == "lora" and "method.select.no_gpu" in rules(rec)
    assert "with a 16 GB GPU: fine-tune with QLoRA" in [c["text"] for c in check_counterfactuals(
        rec, dict(gpu_memory_gb=0))]


# ------------------------------------------------------------------ an honest summary

FIFTY = dict(task="classification", quality_target=0.95, prompt_quality=0.6, optimized_prompt_quality=0.7,
             n_examples=50)


def _numbers(evidence: Any) -> set[str]:
    """Every number in the evidence, written the ways a summary writes it."""
    out: set[str] = set()
    if isinstance(evidence, dict):
        for v in evidence.values():
            out |= _numbers(v)
    elif isinstance(evidence, (list, tuple)):
        for v in evidence:
            out |= _numbers(v)
    elif isinstance(evidence, (int, float)) and not isinstance(evidence, bool):
        out |= {f"{evidence:,}", f"{evidence:.0%}", f"{evidence:.1%}", f"{evidence:g}"}
    return out


def assert_summary_numbers_in_evidence(rec: dict[str, Any]) -> None:
    import re

    known = set().union(*(_numbers(r.get("evidence")) for r in rec["reasons"]))
    for num in re.findall(r"\d[\d,]*(?:\.\d+)?%?", rec["summary"]):
        assert num in known, (num, rec["summary"])


def test_fifty_examples_say_stay_with_prompts_for_now() -> None:
    rec = advise(**FIFTY)
    assert rec["path"] == "prompts"
    s = rec["summary"]
    assert s.startswith("Stay with prompts for now")
    assert "70% (reported) of your 95% bar" in s and "at least ~1,000 examples" in s and "you have 50" in s
    assert "no fine-tuning needed" not in s
    assert_summary_numbers_in_evidence(rec)
    cited = rules(rec)
    assert cited.count("ftw.prompts_fail") == 1
    fail = next(r for r in rec["reasons"] if r["rule"] == "ftw.prompts_fail")
    assert fail["evidence"]["measured"] is False and "(reported)" in fail["text"] and "measured" not in fail["text"]
    texts = [c["text"] for c in check_counterfactuals(rec, FIFTY)]
    assert "with ≥1,000 examples: fine-tune with LoRA" in texts and "if optimised prompts reached 95%: use optimised prompts" in texts
    assert [d["rule"] for d in rec["card"]["deciding"]] == ["ftw.prompts_fail", "size.band.lt_100", "dft.few_examples"]


@pytest.mark.parametrize("changes,start", [
    (dict(prompt_quality=0.92), "Use prompts: the plain prompt scores 92% (reported) against your 90% bar."),
    (dict(optimized_prompt_quality=0.91), "Use optimised prompts: they score 91% (reported) against your 90% bar."),
    (dict(goals=["recent_information"]), "Use retrieval (RAG)"),
    (dict(goals=["tone_style"]), "Keep improving prompts: prompts reach 70% (reported) of your 90% bar"),
    (dict(n_examples=500), "Collect more data first: prompts reach 70% (reported) of your 90% bar, and 500 examples"),
    (dict(gpu_memory_gb=16), "Fine-tune with QLoRA: prompts reach 70% (reported) of your 90% bar, and 5,000 examples"),
])
def test_every_summary_states_quality_against_the_bar(changes: dict[str, Any], start: str) -> None:
    rec = advise(**changes)
    assert rec["summary"].startswith(start), rec["summary"]
    assert_summary_numbers_in_evidence(rec)


def test_measured_numbers_are_called_measured(fake_tools: dict[str, Any]) -> None:
    fake_tools["baseline"] = 0.93
    rec = advise(test_set=fake_tools["test_file"], prompt_quality=None, optimized_prompt_quality=None)
    assert rec["summary"] == "Use prompts: the plain prompt scores 93% (measured) against your 90% bar."
    assert rec["card"]["numbers"][0] == {"name": "plain prompt", "value": 0.93, "bar": 0.9, "source": "measured"}
