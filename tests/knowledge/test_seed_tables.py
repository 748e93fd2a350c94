"""Every number of every table in the seed document, checked row by row against the loaded knowledge."""

from __future__ import annotations

import pytest

from knowledge import Knowledge, load


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load()


# ---------------------------------------------------------------- decision tree and criteria


def test_quality_bar_and_steps(k: Knowledge) -> None:
    assert k.rules.quality_bar.default == 0.90
    assert k.rules.quality_bar.user_may_override is True
    steps = {s.id: s for s in k.rules.decision_tree}
    assert list(steps) == ["dt.step1", "dt.step2", "dt.step3"]
    step1 = {a.id: a for a in steps["dt.step1"].actions}
    assert step1["dt.step1.few_shot"].params == {"min_shots": 3, "max_shots": 5}
    assert "dt.step1.system_prompt" in step1
    step2 = {a.id: a for a in steps["dt.step2"].actions}
    assert step2["dt.step2.more_shots"].params == {"min_shots": 5, "max_shots": 10}
    assert step2["dt.step2.temperature_zero"].params == {"temperature": 0.0}
    assert {"dt.step2.chain_of_thought", "dt.step2.output_format", "dt.step2.system_messages"} <= set(step2)
    for sid, outcome in (("dt.step1", "use_prompts"), ("dt.step2", "use_optimized_prompts")):
        exit_ = steps[sid].exit
        assert exit_ is not None and exit_.compare == ">=" and exit_.outcome == outcome
        assert exit_.id == f"{sid}.quality_bar"
    assert steps["dt.step3"].exit is None


def test_fine_tune_when_and_dont(k: Knowledge) -> None:
    when = {r.id: r for r in k.rules.fine_tune_when}
    assert set(when) == {
        "ftw.prompts_fail",
        "ftw.min_examples",
        "ftw.consistency",
        "ftw.latency",
        "ftw.new_capability",
    }
    assert when["ftw.min_examples"].min_examples == 1000
    dont = {r.id: r for r in k.rules.dont_fine_tune_for}
    assert {i: r.alternative for i, r in dont.items()} == {
        "dft.tone_style": "system_message",
        "dft.output_format": "format_spec_in_prompt",
        "dft.few_examples": "prompts",
        "dft.quick_experiment": "prompts",
        "dft.recent_information": "rag",
    }
    assert dont["dft.few_examples"].max_examples == 100


def test_goals_point_at_the_right_rules(k: Knowledge) -> None:
    goals = {g.goal: (g.supports_fine_tuning, g.rule) for g in k.rules.goals}
    assert goals == {
        "quality": (True, "ftw.prompts_fail"),
        "consistency": (True, "ftw.consistency"),
        "latency": (True, "ftw.latency"),
        "new_capability": (True, "ftw.new_capability"),
        "tone_style": (False, "dft.tone_style"),
        "output_format": (False, "dft.output_format"),
        "recent_information": (False, "dft.recent_information"),
        "quick_experiment": (False, "dft.quick_experiment"),
    }


def test_task_complexity(k: Knowledge) -> None:
    tasks = {t.task: (t.complexity, t.recommendation) for t in k.rules.task_complexity}
    for simple in ("classification", "extraction", "formatting", "tone"):
        assert tasks[simple] == ("simple", "prompts")
    for complex_ in ("multi_step_reasoning", "domain_language", "complex_behavior", "new_capability"):
        assert tasks[complex_] == ("complex", "consider_fine_tuning")
    assert tasks["other"][0] == "unknown"
    behaviour = next(t for t in k.rules.task_complexity if t.task == "complex_behavior")
    assert behaviour.min_edge_cases == 100


@pytest.mark.parametrize(
    ("rid", "lo", "hi", "lo_inc", "hi_inc", "rec"),
    [
        ("size.band.lt_100", 0, 100, True, False, "prompts_only"),
        ("size.band.100_1k", 100, 1000, True, False, "prompts_preferred"),
        ("size.band.1k_10k", 1000, 10000, True, True, "fine_tuning_viable_if_prompts_fail"),
        ("size.band.gt_10k", 10000, None, False, False, "fine_tuning_effective"),
    ],
)
def test_size_bands(
    k: Knowledge, rid: str, lo: int, hi: int | None, lo_inc: bool, hi_inc: bool, rec: str
) -> None:
    band = next(b for b in k.rules.dataset_size_bands if b.id == rid)
    assert (band.min, band.max, band.min_inclusive, band.max_inclusive, band.recommendation) == (
        lo, hi, lo_inc, hi_inc, rec,
    )  # fmt: skip


def test_cost_benefit(k: Knowledge) -> None:
    cost = {c.approach: c for c in k.rules.cost_benefit}
    p, f = cost["prompt_engineering"], cost["fine_tuning"]
    assert (p.cost_usd_min, p.cost_usd_max, p.maintenance, p.time) == (0, 0, "easy", "minutes to hours")
    assert (f.cost_usd_min, f.cost_usd_max, f.cost_open_ended, f.maintenance, f.time) == (
        100, 1000, True, "hard", "days to weeks",
    )  # fmt: skip


def test_roi_example(k: Knowledge) -> None:
    roi = k.rules.roi
    ex = roi.example
    assert (ex.prompt_dev_hours, ex.hourly_rate, ex.data_prep_hours, ex.training_cost) == (4, 100, 40, 500)
    assert ex.prompt_cost == 400
    assert ex.fine_tune_cost == 4500
    assert ex.ratio == pytest.approx(11.25) and ex.ratio_stated == 11
    assert roi.worth_it.min_quality_improvement == 0.10
    assert [i.name for i in roi.inputs] == [
        "prompt_dev_hours",
        "hourly_rate",
        "data_prep_hours",
        "training_cost",
    ]


@pytest.mark.parametrize(
    ("table", "rid", "lo", "hi", "rec"),
    [
        ("quality_bands", "perf.quality.90_95", 0.90, 0.95, "prompts"),
        ("quality_bands", "perf.quality.95_98", 0.95, 0.98, "fine_tuning_may_help"),
        ("quality_bands", "perf.quality.98_plus", 0.98, 1.0, "fine_tuning_with_curation"),
        ("latency_bands", "perf.latency.lt_200", 0, 200, "fine_tuning_and_optimisation"),
        ("latency_bands", "perf.latency.200_1000", 200, 1000, "fine_tuning_may_help"),
        ("latency_bands", "perf.latency.gt_1000", 1000, None, "prompts"),
    ],
)
def test_performance_bands(k: Knowledge, table: str, rid: str, lo: float, hi: float | None, rec: str) -> None:
    band = next(b for b in getattr(k.rules, table) if b.id == rid)
    assert (band.min, band.max, band.recommendation) == (lo, hi, rec)


def test_consistency_levels(k: Knowledge) -> None:
    levels = {c.level: (c.recommendation, c.temperature) for c in k.rules.consistency_levels}
    assert levels == {
        "variable": ("prompts", "> 0"),
        "high": ("prompts_or_fine_tuning", "0"),
        "perfect": ("fine_tuning_with_validation", None),
    }


def test_method_selection_and_when_to_use(k: Knowledge) -> None:
    sel = [(r.method, r.max_gpu_memory_gb, r.min_examples, r.min_gpus) for r in k.rules.method_selection]
    assert sel == [
        ("qlora", 24, None, None),
        ("lora", 80, None, None),
        ("full", None, 100000, 2),
        ("lora", None, None, None),
    ]
    methods = {m.method: {w.id: w for w in m.when_to_use} for m in k.rules.methods}
    assert methods["full"]["method.full.when.massive_data"].min_examples == 100000
    assert methods["full"]["method.full.when.multi_gpu"].min_gpus == 2
    assert "method.full.when.fundamental_change" in methods["full"]
    assert methods["qlora"]["method.qlora.when.limited_gpu"].max_gpu_memory_gb == 24
    assert {"method.lora.when.default", "method.lora.when.limited_compute", "method.lora.when.fast_iteration",
            "method.lora.when.multi_task"} == set(methods["lora"])  # fmt: skip


# ---------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(
    ("size", "pretrain", "ft_max", "ft_min"),
    [
        ("1b", 3e-4, 3e-5, 1e-5),
        ("7b", 3e-4, 1e-5, 1e-6),
        ("13b", 2e-4, 5e-6, 1e-6),
        ("70b", 1e-4, 1e-6, 1e-7),
    ],
)
def test_lr_by_model_size(k: Knowledge, size: str, pretrain: float, ft_max: float, ft_min: float) -> None:
    row = next(r for r in k.hyperparameters.learning_rate_by_model_size if r.size == size)
    assert row.id == f"hp.lr.{size}"
    assert (row.pretrain_lr, row.finetune_lr_max, row.finetune_lr_min) == (pretrain, ft_max, ft_min)
    full = next(r for r in k.hyperparameters.learning_rate_by_method if r.method == "full" and r.size == size)
    assert (full.lr_min, full.lr_max) == (ft_min, ft_max)


def test_lr_rule_and_pretraining(k: Knowledge) -> None:
    hp = k.hyperparameters
    assert hp.lr_rule.divisor == 100
    assert (hp.pretraining_lr.min, hp.pretraining_lr.max) == (3e-4, 1e-3)
    assert (hp.pretraining_lr.finetune_divisor_min, hp.pretraining_lr.finetune_divisor_max) == (100, 1000)
    assert (hp.lr_start.start, hp.lr_start.conservative) == (1e-5, 1e-6)


def test_lora_lr_correction(k: Knowledge) -> None:
    c = k.hyperparameters.lr_method_correction
    assert (c.seed, c.choice) == (1e-5, 2e-4)
    assert any("QLoRA" in e for e in c.evidence) and any("LoRA" in e for e in c.evidence)
    for method in ("lora", "qlora"):
        row7 = next(
            r for r in k.hyperparameters.learning_rate_by_method if r.method == method and r.size == "7b"
        )
        assert (row7.lr_min, row7.lr_max, row7.recommended) == (1e-4, 2e-4, 2e-4)
        full7 = next(
            r for r in k.hyperparameters.learning_rate_by_method if r.method == "full" and r.size == "7b"
        )
        assert row7.lr_min / full7.lr_max == pytest.approx(10)  # "about ten times a full fine-tune"


def test_lr_warning_signs(k: Knowledge) -> None:
    signs = {w.direction: w for w in k.hyperparameters.lr_warning_signs}
    assert signs["too_high"].threshold == 1e-4 and signs["too_high"].applies_to_methods == ["full"]
    assert signs["too_low"].threshold == 1e-7
    assert set(signs["too_high"].signs) == {
        "training_loss_oscillates",
        "gibberish_output",
        "catastrophic_forgetting",
    }
    assert set(signs["too_low"].signs) == {"loss_barely_decreases", "no_adaptation", "slow_convergence"}


@pytest.mark.parametrize(
    ("rid", "lo", "hi", "e_min", "e_max"),
    [
        ("hp.epochs.lt_1k", 0, 1000, 5, 10),
        ("hp.epochs.1k_5k", 1000, 5000, 3, 5),
        ("hp.epochs.5k_10k", 5000, 10000, 2, 3),
        ("hp.epochs.gt_10k", 10000, None, 1, 2),
    ],
)
def test_epochs_table(k: Knowledge, rid: str, lo: int, hi: int | None, e_min: int, e_max: int) -> None:
    row = next(r for r in k.hyperparameters.epochs_by_dataset_size if r.id == rid)
    assert (row.min, row.max, row.min_epochs, row.max_epochs) == (lo, hi, e_min, e_max)
    assert e_min <= row.recommended <= e_max


@pytest.mark.parametrize(("gb", "lo", "hi"), [(16, 1, 2), (24, 2, 4), (40, 4, 8), (80, 8, 16)])
def test_batch_table(k: Knowledge, gb: int, lo: int, hi: int) -> None:
    table = k.hyperparameters.batch_by_gpu_memory
    assert table.model_params_b == 7
    row = next(r for r in table.rows if r.gpu_memory_gb == gb)
    assert (row.id, row.min_batch, row.max_batch) == (f"hp.batch.{gb}gb", lo, hi)


def test_effective_batch_weight_decay_warmup_early_stopping(k: Knowledge) -> None:
    hp = k.hyperparameters
    eb = hp.effective_batch
    assert (eb.min, eb.max, eb.example_per_device * eb.example_accumulation) == (16, 64, 32)
    assert {w.kind: w.value for w in hp.weight_decay} == {"standard": 0.01, "strong": 0.1, "light": 0.001}
    w = hp.warmup
    assert (w.min_ratio, w.max_ratio, w.default_ratio, w.seed_example_steps) == (0.05, 0.10, 0.1, 100)
    assert w.longer_for_larger_models is True
    es = hp.early_stopping
    assert (es.patience, es.threshold, es.metric, es.greater_is_better) == (3, 0.01, "eval_loss", False)
    td = hp.training_defaults
    assert (td.eval_steps, td.save_steps, td.logging_steps, td.warmup_steps) == (100, 100, 10, 100)
    assert (td.learning_rate, td.num_train_epochs, td.per_device_train_batch_size, td.gradient_accumulation_steps) == (
        1e-5, 3, 8, 4,
    )  # fmt: skip


def test_lora_config_records_seed_and_choice(k: Knowledge) -> None:
    cfg = k.hyperparameters.lora_config
    assert (cfg.r, cfg.lora_dropout, cfg.bias, cfg.task_type) == (8, 0.05, "none", "CAUSAL_LM")
    assert (cfg.lora_alpha, cfg.alpha_ratio) == (16, 2)
    assert cfg.target_modules == "all-linear"
    seed = cfg.seed_example
    assert (seed.r, seed.lora_alpha, seed.target_modules) == (8, 32, ["q_proj", "v_proj"])
    assert (seed.trainable_params_stated, seed.trainable_percent_stated) == (8_400_000, 0.12)
    assert {c.id for c in cfg.corrections} == {"hp.lora.alpha", "hp.lora.target_modules"}
    note = cfg.notes[0]
    assert note.choice == 32 * 2 * (4096 * 8 + 8 * 4096)  # Llama-7B shapes, q_proj + v_proj at r=8


def test_rank_table(k: Knowledge) -> None:
    ranks = {r.rank: r.capacity for r in k.hyperparameters.rank_selection}
    assert ranks == {4: "minimal", 8: "standard", 16: "high", 32: "near_full"}
    rr = k.hyperparameters.rank_rule
    assert (rr.start, rr.typical_min, rr.typical_max) == (8, 4, 16)


@pytest.mark.parametrize(
    ("method", "gb7", "gb13", "gb70"),
    [("full", 120, 200, 1000), ("lora", 40, 60, 300), ("qlora", 12, 20, 80)],
)
def test_memory_table(k: Knowledge, method: str, gb7: int, gb13: int, gb70: int) -> None:
    row = next(r for r in k.hyperparameters.memory_by_method if r.method == method)
    assert row.id == f"hp.memory.{method}"
    assert row.gb == {"7b": gb7, "13b": gb13, "70b": gb70}


def test_full_ft_breakdown_7b(k: Knowledge) -> None:
    b = k.hyperparameters.full_ft_memory_7b
    assert (b.params_b, b.bytes_per_param) == (7, 4)
    assert (b.weights_gb, b.gradients_gb, b.optimizer_gb, b.activations_gb, b.total_gb) == (
        28,
        28,
        56,
        8,
        120,
    )
    assert b.activations_batch_size == 8


def test_lora_param_example(k: Knowledge) -> None:
    ex = k.hyperparameters.lora_param_example
    assert (ex.d, ex.k, ex.r) == (4096, 4096, 8)
    assert ex.full_params == 16_777_216 and ex.full_params_stated == "16.7M"
    assert (ex.a_params, ex.b_params, ex.lora_params, ex.lora_params_stated) == (32768, 32768, 65536, "64K")
    assert round(100 * ex.lora_params / ex.full_params, 1) == ex.percent_stated == 0.4


@pytest.mark.parametrize(
    ("rid", "method", "n_min", "n_max", "seed_lr", "e_min", "e_max"),
    [
        ("qr.tone_matching", "prompts", None, None, None, None, None),
        ("qr.simple_classification", "prompts", None, None, None, None, None),
        ("qr.complex_domain_task", "lora", 1000, 10000, 1e-5, 3, 5),
        ("qr.fundamental_change", "full", 100000, None, 1e-5, 1, 3),
        ("qr.limited_gpu", "qlora", 1000, 10000, 1e-5, 3, 5),
    ],
)
def test_quick_reference(
    k: Knowledge, rid: str, method: str, n_min: int | None, n_max: int | None,
    seed_lr: float | None, e_min: int | None, e_max: int | None,
) -> None:  # fmt: skip
    row = next(r for r in k.hyperparameters.quick_reference if r.id == rid)
    assert (row.method, row.min_examples, row.max_examples, row.seed_lr, row.min_epochs, row.max_epochs) == (
        method, n_min, n_max, seed_lr, e_min, e_max,
    )  # fmt: skip
    # Adapter rows use the corrected learning rate; the full fine-tune keeps the seed's.
    expected_lr = {"lora": 2e-4, "qlora": 2e-4, "full": 1e-5, "prompts": None}[method]
    assert row.lr == expected_lr


def test_default_recommendation_and_claims(k: Knowledge) -> None:
    d = k.hyperparameters.default_recommendation
    assert (d.first, d.method, d.seed_lr, d.epochs) == ("prompts", "lora", 1e-5, 3)
    claims = {c.id: c.factor for c in k.hyperparameters.efficiency_claims}
    assert claims == {
        "fact.lora_speed": 10,
        "fact.qlora_memory": 4,
        "fact.mixed_precision_speed": 2,
        "fact.lora_efficiency": 100,
    }
    assert all((c.source or "").startswith("seed:") for c in k.hyperparameters.efficiency_claims)


# ---------------------------------------------------------------- data


@pytest.mark.parametrize(
    ("rid", "lo", "hi", "ratios"),
    [
        ("data.split.lt_5k", 0, 5000, (0.70, 0.15, 0.15)),
        ("data.split.5k_10k", 5000, 10000, (0.75, 0.125, 0.125)),
        ("data.split.gt_10k", 10000, None, (0.80, 0.10, 0.10)),
    ],
)
def test_split_rules(
    k: Knowledge, rid: str, lo: int, hi: int | None, ratios: tuple[float, float, float]
) -> None:
    row = next(r for r in k.data.split_rules if r.id == rid)
    assert (row.min, row.max, (row.train, row.val, row.test)) == (lo, hi, ratios)


def test_split_minimums_and_settings(k: Knowledge) -> None:
    assert {m.split: m.min_rows for m in k.data.split_minimums} == {"val": 100, "test": 100}
    s = k.data.split_settings
    assert (s.seed, s.stratify_by) == (42, "label")
    assert (s.example_rows, s.example_train, s.example_val, s.example_test) == (3000, 2100, 450, 450)
    middle = next(r for r in k.data.split_rules if r.id == "data.split.5k_10k")
    assert middle.correction is not None and middle.correction.choice == "75/12.5/12.5"


def test_cleaning_thresholds(k: Knowledge) -> None:
    f = k.data.filters
    assert f.error_markers.seed_markers == ["error", "exception", "failed"]
    assert f.min_length.min_chars == 10 and f.max_length.max_chars == 2000
    assert f.completeness.terminal_chars == [".", "!", "?"]
    assert set(f.completeness.exempt_output_kinds) >= {"label", "structured"}
    assert set(f.min_length.exempt_output_kinds) == {"label", "structured"}
    nd = f.near_duplicates
    assert (nd.threshold, nd.num_perm, nd.shingle_size, nd.max_cluster_size) == (0.8, 128, 5, 100)
    assert {p.kind for p in f.pii.kinds} == {"email", "phone", "card", "iban", "ip"}
    assert next(p for p in f.pii.kinds if p.kind == "card").validator == "luhn"
    assert f.language.min_chars > 0 and f.language.below_min_chars == "undetermined"
    assert f.quality_heuristics.min_chars == 100
    assert [x.id for x in f.ordered()][:5] == [
        "data.clean.error_markers", "data.clean.min_length", "data.clean.max_length",
        "data.clean.completeness", "data.clean.language",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name", ["error_markers", "min_length", "completeness", "language", "near_duplicates"]
)
def test_corrected_filters_record_seed_choice_why(k: Knowledge, name: str) -> None:
    c = getattr(k.data.filters, name).correction
    assert c is not None and c.seed and c.choice and len(c.why) > 20


def test_spot_check_sources_augmentation_formats(k: Knowledge) -> None:
    sc = k.data.spot_check
    assert sc.sample_size == 100 and len(sc.checks) == 6
    assert len(k.data.sources.good) == 4 and len(k.data.sources.bad) == 4
    assert {m.method for m in k.data.augmentation.methods} == {"paraphrase", "back_translation", "synthetic"}
    assert k.data.augmentation.warning.id == "data.augment.validate"
    assert {f.name for f in k.data.formats} == {"openai_chat", "hf_input_output"}
    assert (k.data.principle.example_raw_rows, k.data.principle.example_clean_rows) == (10000, 3000)


# ---------------------------------------------------------------- diagnosis


def test_five_issues(k: Knowledge) -> None:
    assert [i.name for i in k.diagnosis.issues] == [
        "overfitting", "catastrophic_forgetting", "poor_quality", "slow_training", "out_of_memory",
    ]  # fmt: skip
    for issue in k.diagnosis.issues:
        assert issue.symptoms and len(issue.fixes) >= 4


def test_overfitting_fixes(k: Knowledge) -> None:
    i = k.diagnosis.issue("overfitting")
    assert i.fix("fewer_epochs").params == {"num_train_epochs": 3}
    assert i.fix("fewer_epochs").instead_of == {"num_train_epochs": 10}
    assert (i.fix("weight_decay").params, i.fix("weight_decay").instead_of) == (
        {"weight_decay": 0.1},
        {"weight_decay": 0.01},
    )
    assert i.fix("early_stopping").params == {"early_stopping_patience": 3}
    assert i.fix("lora").params == {"method": "lora"}
    assert [f.order for f in i.fixes] == [1, 2, 3, 4, 5, 6]


def test_forgetting_fixes(k: Knowledge) -> None:
    i = k.diagnosis.issue("catastrophic_forgetting")
    assert i.fixes[0].id == "diag.catastrophic_forgetting.fix.lower_lr"
    assert (i.fix("lower_lr").params, i.fix("lower_lr").instead_of) == (
        {"learning_rate": 1e-6},
        {"learning_rate": 1e-4},
    )
    assert (i.fix("fewer_epochs").params, i.fix("fewer_epochs").instead_of) == (
        {"num_train_epochs": 2},
        {"num_train_epochs": 10},
    )
    assert i.fix("mix_general_data").params == {
        "general_data_fraction_min": 0.1,
        "general_data_fraction_max": 0.2,
    }


def test_poor_quality_fixes(k: Knowledge) -> None:
    i = k.diagnosis.issue("poor_quality")
    assert i.fixes[0].id.endswith("check_data")
    assert i.fix("bigger_model").params == {"model_size_ladder_b": [7, 13, 70]}
    assert i.fix("more_data").params == {"min_examples": 1000}
    assert (i.fix("higher_lr").params, i.fix("higher_lr").instead_of) == (
        {"learning_rate": 3e-5},
        {"learning_rate": 1e-5},
    )
    assert (i.fix("more_epochs").params, i.fix("more_epochs").instead_of) == (
        {"num_train_epochs": 5},
        {"num_train_epochs": 3},
    )


def test_slow_and_oom_fixes(k: Knowledge) -> None:
    slow = k.diagnosis.issue("slow_training")
    assert slow.fix("lora").params["expected_speedup"] == 10
    assert slow.fix("mixed_precision").params["expected_speedup"] == 2
    assert slow.fix("accumulation").params == {
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 16,
    }
    assert slow.fix("gradient_checkpointing").params == {"gradient_checkpointing": True}
    oom = k.diagnosis.issue("out_of_memory")
    assert oom.fix("qlora").params == {"method": "qlora", "expected_memory_reduction": 4}
    assert oom.fix("batch_one").params == {
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 32,
    }
    assert oom.fix("smaller_model").params == {"model_size_ladder_b": [7, 3, 1]}
    assert (oom.fix("shorter_sequences").params, oom.fix("shorter_sequences").instead_of) == (
        {"max_seq_length": 512}, {"max_seq_length": 2048},
    )  # fmt: skip


def test_warning_and_epoch_signs(k: Knowledge) -> None:
    signs = {s.pattern: s.issue for s in k.diagnosis.warning_signs}
    assert signs == {
        "train_to_zero_val_rising": "diag.overfitting",
        "train_oscillating": "hp.lr.too_high",
        "train_flat": "hp.lr.too_low",
    }
    epochs = {e.direction: e.signs for e in k.diagnosis.epoch_signs}
    assert (
        "train_to_zero_val_rising" in epochs["too_many"] and "catastrophic_forgetting" in epochs["too_many"]
    )
    assert "train_and_val_still_decreasing" in epochs["too_few"]


# ---------------------------------------------------------------- checklist and evaluation


def test_checklist_fifteen_items_in_groups(k: Knowledge) -> None:
    c = k.checklist.checklist
    assert [len(c.before), len(c.during), len(c.after)] == [5, 5, 5]
    assert [i.n for i in c.items] == list(range(1, 16))
    assert [i.evidence for i in c.items] == [
        "prompt_baseline_measured", "n_examples>=1000", "dataset_cleaned", "split_created", "metric_defined",
        "method_lora", "lr_in_range", "epochs_3_5", "val_loss_monitored", "runlog",
        "test_evaluated", "manual_review", "forgetting_checked", "ab_tested", "hyperparameters_documented",
    ]  # fmt: skip
    assert all(i.id.startswith(f"chk.{g}.") for g in ("before", "during", "after") for i in getattr(c, g))
    by_id = {i.id: i for i in c.items}
    assert by_id["chk.before.enough_examples"].params == {"min_examples": 1000}
    assert by_id["chk.before.split"].params == {"train": 0.70, "val": 0.15, "test": 0.15}
    assert by_id["chk.during.small_lr"].params == {"full_7b_lr_min": 1e-6, "full_7b_lr_max": 1e-5}
    assert by_id["chk.during.epochs"].params == {"min_epochs": 3, "max_epochs": 5}
    assert by_id["chk.after.manual"].params == {"min_examples": 20, "max_examples": 50}


def test_principles_summary_and_evaluation(k: Knowledge) -> None:
    assert len(k.checklist.principles) == 5
    assert [s.order for s in k.checklist.summary_tree] == [1, 2, 3, 4, 5, 6]
    ev = k.checklist.evaluation
    assert ev.test_once.max_runs == 1
    assert (ev.manual.min_examples, ev.manual.max_examples, ev.manual.include_edge_cases) == (20, 50, True)
    assert (ev.ab_test.traffic_split, ev.ab_test.min_requests) == (0.5, 1000)
    assert ev.ab_test.metrics == [
        "user_satisfaction",
        "task_success_rate",
        "response_time",
        "cost_per_request",
    ]
    assert [t.category for t in ev.forgetting_check.tasks] == [
        "general_knowledge",
        "translation",
        "arithmetic",
        "literature",
    ]
