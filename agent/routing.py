"""Pure routing functions: each takes answers (and measurements) and returns ``(decision, [Reason, ...])``.

Every threshold is read from ``knowledge/`` through ``knowledge.lookup``; every reason cites the rule id it
applied and the evidence (the user's numbers, or measured ones). No I/O, no LangGraph: the graph's nodes
call these and route on the decision, so the tree can be tested as a table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import knowledge
from agent.api import Card, Reason
from agent.state import AdvisorState

Path = Literal["prompts", "optimized_prompts", "fine_tune", "rag", "collect_more_data"]


def why(rule_id: str, evidence: Any = None, *, text: str | None = None) -> Reason:
    """A reason citing ``rule_id`` with its knowledge text (or ``text`` when the sentence needs numbers)."""
    return Reason(rule_id, text or knowledge.rule(rule_id).text, evidence)


def reasons_dicts(reasons: list[Reason]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in reasons]


def source(measured: dict[str, Any] | None) -> str:
    """How a quality number is known: "measured" only when tunewise scored it, else "reported" (by the user)."""
    return "measured" if measured else "reported"


def unique_reasons(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rule cited once: a rule applied again (e.g. the quality goal and step 2 both cite
    ``ftw.prompts_fail``) keeps its first sentence and gathers the later evidence under ``also``."""
    out: dict[str, dict[str, Any]] = {}
    for r in reasons:
        rid = str(r.get("rule"))
        if rid not in out:
            out[rid] = dict(r)
            continue
        first = out[rid]
        if r.get("evidence") is not None and r.get("evidence") != first.get("evidence"):
            if first.get("evidence") is None:
                first["evidence"] = r["evidence"]
            else:
                first["also"] = [*first.get("also", []), r["evidence"]]
    return list(out.values())


# ------------------------------------------------------------------ the decision tree, steps 1 and 2

def quality_bar(target: float | None, *, user_set: bool | None = None) -> tuple[float, list[Reason]]:
    """The bar prompts must reach: the user's, or ``dt.quality_bar``'s default (0.90). ``user_set``: the user
    typed the target (even one equal to the default); None judges from the value alone."""
    bar_rule = knowledge.load().rules.quality_bar
    bar = bar_rule.default if target is None else float(target)
    typed = (target is not None and bar != bar_rule.default) if user_set is None else user_set
    return bar, [why(bar_rule.id, {"bar": bar, "user_set": typed})]


def bar_quality(measured: dict[str, Any] | None, quality: float | None = None) -> tuple[float | None, str]:
    """The share that may be compared with the bar, and how it is known, from a measurement (issue 22).

    ``"share"``: the metric is a share of acceptable answers (label accuracy, tests passed, ...);
    ``"graded"``: the metric is a similarity and people graded the outputs (``measured["graded"]``, possibly
    with a judge calibrated on their grades standing in); ``"reported"``: no measurement, the user's number;
    ``None`` with ``"similarity"``: a similarity (chrF, ROUGE-L, token F1) and no grades, so the bar cannot
    be applied. A document without ``share`` counts as a share unless its metric is a known similarity.
    ``quality``, when given, is the fact the tree reads (a counterfactual may have changed it): it wins over
    the measurement's own number for a share or a graded share."""
    if not measured:
        return quality, "reported"
    from tools.scoring import metrics as M

    metric = measured.get("metric")
    share = measured.get("share")
    if share is None:
        share = not (metric in M.METRICS and not M.is_share(str(metric)))
    if share:
        own = float(measured["quality"]) if measured.get("quality") is not None else None
        return (quality if quality is not None else own), "share"
    graded = measured.get("graded") or {}
    if graded.get("share") is not None:
        return (quality if quality is not None else float(graded["share"])), "graded"
    return None, "similarity"


def _grading_cost(rows: int | None = None) -> dict[str, Any]:
    """What grading would take: ``eval.grades``'s sample (all ``rows`` when fewer), seconds per grade, and the
    time in words."""
    raw = knowledge.rule("eval.grades").raw
    n, sec = int(raw["sample_size"]), float(raw["seconds_per_grade"])
    n = min(n, int(rows)) if rows else n
    minutes = max(1, round(n * sec / 60))
    return {"sample": n, "seconds": f"{sec:g}", "minutes": f"{minutes} minute{'s' if minutes != 1 else ''}",
            "rule": "eval.grades"}


def _ungraded(step: str, what: str, measured: dict[str, Any], bar: float, evidence: dict[str, Any],
              plain: dict[str, Any] | None = None) -> Reason:
    """``dt.bar.ungraded``: a similarity and no grades, so the bar cannot be applied yet; what it would take."""
    cost = _grading_cost(measured.get("n"))
    raw = knowledge.rule("dt.bar.ungraded").raw
    fields = {"what": what, "similarity": f"{float(measured['quality']):.3f}", "metric": measured.get("metric"),
              "bar": _pct(bar), "tried": int(measured.get("variants_tried") or 0) + 1,
              "plain": f"{float(plain['quality']):.3f}" if plain and plain.get("quality") is not None else "-",
              **cost}
    ev = {**evidence, "comparable_with_bar": False, "grading": cost, "deciding": "none: the bar cannot be applied"}
    # Step 1 states the principle (dt.bar.needs_share); Step 2 decides what to do meanwhile (dt.bar.ungraded)
    rule = "dt.bar.needs_share" if step == "step1" else "dt.bar.ungraded"
    return why(rule, ev, text=" ".join(str(raw[f"says_{step}"]).format(**fields).split()))


def _graded(what: str, measured: dict[str, Any], bar: float) -> list[Reason]:
    """``dt.bar.needs_share``: the graded share, not the similarity, is compared with the bar."""
    g = measured["graded"]
    ci = g.get("ci95") or []
    judged = "judge" in (g.get("graders") or [])
    fields = {"what": what, "similarity": f"{float(measured['quality']):.3f}", "metric": measured.get("metric"),
              "graders": "you and a judge calibrated on your grades" if judged else "people",
              "share": _pct(float(g["share"])), "ci": f"[{_pct(ci[0])}–{_pct(ci[1])}]" if len(ci) == 2 else "",
              "n": g.get("n"), "good": g.get("good"), "bad": g.get("bad"), "bar": _pct(bar)}
    raw = knowledge.rule("dt.bar.needs_share").raw
    text = str(raw["says_graded"]).format(**fields)
    cal = (g.get("judge") or {}).get("calibration")
    if cal:  # a judge calibrated on these grades: it stands in only above the floor (eval.judge.agreement_floor)
        text += " " + str(raw["says_judge_trusted" if cal.get("trusted") else "says_judge_below"]).format(
            agreement=_pct(float(cal["agreement"])), judge_n=cal["n"], kappa=f"{float(cal['kappa']):.2f}",
            floor_kappa=cal["floor_kappa"], floor_n=cal["floor_n"])
    out = [why("dt.bar.needs_share", {"similarity": measured.get("quality"), "metric": measured.get("metric"),
                                      "graded": g, "bar": bar}, text=" ".join(text.split()))]
    if cal:
        out.append(why("eval.judge.agreement_floor", cal))
    return out


def step1_prompt(quality: float | None, bar: float, *, measured: dict[str, Any] | None = None
                 ) -> tuple[Literal["prompts", "continue"], list[Reason]]:
    """Step 1: a system prompt with 3-5 examples; at or above the bar, stop and use prompts.

    Only a share meets the bar (``bar_quality``): a similarity with no grades goes on to Step 2, saying the
    rule cannot be applied yet and what grading would take."""
    evidence = {"quality": quality, "bar": bar, "measured": measured is not None, **(measured or {})}
    share, how = bar_quality(measured, quality)
    if share is None:
        return "continue", [_ungraded("step1", "The plain prompt", measured or {}, bar, evidence)]
    extra = _graded("The plain prompt", measured or {}, bar) if how == "graded" else []
    evidence.update(bar_quality=share, deciding=how)
    if share >= bar:
        return "prompts", [why("dt.step1.quality_bar", evidence), *extra]
    said = "graded" if how == "graded" else source(measured)
    return "continue", [*extra, why("dt.step1", evidence, text=f"The plain prompt scores {share:.1%} "
                                    f"({said}), below the {bar:.0%} bar, so tunewise moves on to optimising "
                                    "the prompt.")]


def step2_optimized(quality: float | None, bar: float, *, measured: dict[str, Any] | None = None,
                    plain: dict[str, Any] | None = None
                    ) -> tuple[Literal["optimized_prompts", "continue"], list[Reason]]:
    """Step 2: more shots, chain-of-thought, format spec, other system messages, temperature 0.

    A similarity with no grades cannot meet the bar: the variants are ranked by it and the best one is
    recommended meanwhile (``dt.bar.ungraded``), with what grading would take."""
    evidence = {"quality": quality, "bar": bar, "measured": measured is not None, **(measured or {})}
    share, how = bar_quality(measured, quality)
    variant = (measured or {}).get("variant")
    what = "The plain prompt (no variant scored higher)" if variant == "baseline" else \
        f"The best prompt variant ({variant})" if variant else "The optimised prompt"
    if share is None:
        return "optimized_prompts", [_ungraded("step2", what, measured or {}, bar, evidence, plain)]
    extra = _graded(what, measured or {}, bar) if how == "graded" else []
    evidence.update(bar_quality=share, deciding=how)
    if share >= bar:
        steps = [why(a.id) for a in knowledge.load().rules.decision_tree[1].actions]
        return "optimized_prompts", [why("dt.step2.quality_bar", evidence), *extra, *steps]
    said = "graded" if how == "graded" else source(measured)
    text = (f"Optimised prompts score {share:.1%} ({said}), below the {bar:.0%} bar, so "
            "fine-tuning may be considered.")
    return "continue", [*extra, why("ftw.prompts_fail", evidence, text=text), why("dt.step3")]


# ------------------------------------------------------------------ step 3: consider fine-tuning

def goals_decision(goals: list[str] | None) -> tuple[Literal["rag", "optimized_prompts", "continue"], list[Reason]]:
    """Goals: each is a fine-tune-when (``ftw.*``) or a don't-fine-tune-for (``dft.*``).

    When no goal supports training, the don't-rules redirect: recent information to RAG, the rest to prompts.
    """
    goals = list(goals or ["quality"])
    reasons: list[Reason] = []
    supporting: list[str] = []
    for g in goals:
        row = knowledge.goal_rule(g)
        reasons.append(why(row.rule, {"goal": g, "supports_fine_tuning": row.supports_fine_tuning}))
        if row.supports_fine_tuning:
            supporting.append(g)
    if supporting:
        return "continue", reasons
    if "recent_information" in goals:
        return "rag", reasons
    return "optimized_prompts", reasons


def task_decision(task: str) -> tuple[Literal["simple", "complex", "unknown"], list[Reason]]:
    """Criterion 1: simple tasks are usually solved by prompts; complex ones are fine-tuning candidates.

    A simple task whose optimised prompt has been measured below the bar still goes on: the measurement
    outranks the rule of thumb, and the reason says so.
    """
    row = knowledge.task_rule(task)
    return row.complexity, [why(row.id, {"task": task, "complexity": row.complexity})]


def dataset_size(n_examples: int, *, curve: dict[str, Any] | None = None, bar: float | None = None
                 ) -> tuple[Literal["prompts", "collect_more_data", "continue"], list[Reason]]:
    """Criterion 2: under 100 prompts only; 100-999 collect more data; 1000+ fine-tuning is viable.

    With a measured learning curve (``tools.evaluate.learning_curve``) its reading is cited beside the band. The
    measurement outranks the band in one place: a curve whose largest subset already reaches the bar makes
    training viable below 1,000 examples.
    """
    band = knowledge.size_band(n_examples)
    min_ft = int(knowledge.rule("ftw.min_examples").raw["min_examples"])
    ev = {"n_examples": n_examples, "fine_tuning_from": min_ft}
    curve_reasons = curve_reading(curve, bar) if curve and bar is not None else []
    reached = bool(curve_reasons) and curve_reasons[0].rule == "lc.reaches_bar" and \
        bool((curve_reasons[0].evidence or {}).get("already_at_bar"))
    if band.id == "size.band.lt_100":
        return "prompts", [why(band.id, ev), why("dft.few_examples", ev), *curve_reasons]
    if band.id == "size.band.100_1k" and not reached:
        return "collect_more_data", [why(band.id, ev), *curve_reasons]
    return "continue", [why(band.id, ev), *curve_reasons, why("ftw.min_examples", ev)]


def curve_reading(curve: dict[str, Any], bar: float) -> list[Reason]:
    """One reason reading a measured learning curve against the bar (``lc.*``), in the user's terms."""
    points = curve.get("points") or []
    if not points:
        return []
    last = max(points, key=lambda p: p["n"])
    lo, hi = (last.get("ci95") or [None, None])[:2]
    at = f"At {last['n']:,} examples the model reaches {last['quality']:.0%}" + \
        (f" [{lo:.0%}–{hi:.0%}]" if lo is not None and hi is not None else "")
    ev: dict[str, Any] = {"n": last["n"], "quality": last["quality"], "ci95": last.get("ci95"), "bar": bar,
                          "points": len(points), "can_extrapolate": curve.get("can_extrapolate"),
                          "why_not": curve.get("why_not"), "n_to_bar": curve.get("n_to_bar"),
                          "cost_seconds": curve.get("cost_seconds")}
    if last["quality"] >= bar:
        return [why("lc.reaches_bar", {**ev, "already_at_bar": True},
                    text=f"{at}, already at your {bar:.0%} bar (measured learning curve).")]
    if not curve.get("can_extrapolate"):
        return [why("lc.cannot_extrapolate", ev, text=f"{at}; the curve is {curve.get('why_not') or 'unsure'} "
                    "to extrapolate, so the seed's size band stands on its own.")]
    if curve.get("n_to_bar"):
        band = curve.get("n_to_bar_band") or []
        rng = f" ({band[0]:,}–{band[1]:,})" if len(band) == 2 and None not in band else ""
        return [why("lc.reaches_bar", {**ev, "n_to_bar_band": band},
                    text=f"{at}; the curve reaches your {bar:.0%} bar at about {curve['n_to_bar']:,} "
                         f"examples{rng}.")]
    far = max(curve.get("predictions") or [{"factor": 1, "quality": last["quality"]}], key=lambda p: p["factor"])
    ev["prediction"] = far
    return [why("lc.below_bar", ev, text=f"{at}; at {far['factor']:g}x the data the curve predicts "
                f"{far['quality']:.0%}: more data of this kind will not reach your {bar:.0%} bar; try a larger "
                "base model.")]


def performance(quality_target: float, latency_budget_ms: float | None, consistency: str | None
                ) -> tuple[list[str], list[Reason]]:
    """Criterion 4: returns the requirements that favour fine-tuning, and a reason for each criterion."""
    favour: list[str] = []
    reasons: list[Reason] = []
    q = knowledge.quality_band(quality_target)
    reasons.append(why(q.id, {"quality_target": quality_target}))
    if q.recommendation != "prompts":
        favour.append("quality")
    if latency_budget_ms is not None:
        lat = knowledge.latency_band(latency_budget_ms)
        reasons.append(why(lat.id, {"latency_budget_ms": latency_budget_ms}))
        if lat.recommendation != "prompts":
            favour.append("latency")
    if consistency:
        c = knowledge.consistency_rule(consistency)
        reasons.append(why(c.id, {"consistency": consistency}))
        if c.recommendation != "prompts":
            favour.append("consistency")
    return favour, reasons


ROI_INPUTS = ("prompt_dev_hours", "hourly_rate", "data_prep_hours", "training_cost")


def cost_benefit(answers: dict[str, Any], *, prompt_quality: float | None = None
                 ) -> tuple[dict[str, Any] | None, list[Reason]]:
    """Criterion 3: the ROI formula on the user's numbers; ``None`` when they gave none."""
    given = {k: answers.get(k) for k in ROI_INPUTS}
    if any(v is None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        return None, [why("cost.fine_tuning", {"roi": "not computed", "missing": missing})]
    v = {k: float(x) for k, x in given.items() if x is not None}
    r = knowledge.roi(v["prompt_dev_hours"], v["hourly_rate"], v["data_prep_hours"], v["training_cost"])
    ratio = None if math.isinf(r.ratio) else round(r.ratio, 2)
    roi = {
        "inputs": given,
        "prompt_cost": r.prompt_cost,
        "fine_tune_cost": r.fine_tune_cost,
        "ratio": ratio,
        "min_quality_improvement": r.min_quality_improvement,
    }
    if prompt_quality is not None:
        # what a fine-tuned model must score on the same test set to justify its cost
        roi["target_quality"] = round(min(1.0, prompt_quality + r.min_quality_improvement), 4)
    text = (f"Prompts cost ${r.prompt_cost:,.0f} and fine-tuning ${r.fine_tune_cost:,.0f}"
            + (f", {ratio}x more" if ratio is not None else "")
            + f"; it pays only if it gains more than {r.min_quality_improvement:.0%} quality.")
    return roi, [why(r.rule_ids[0], roi, text=text), why(r.rule_ids[1])]


# ------------------------------------------------------------------ method and plan

def method(gpu_memory_gb: float, gpus: int, n_examples: int) -> tuple[MethodOutcome, list[Reason]]:
    """The seed's selection chain: QLoRA under 24 GB, LoRA under 80 GB, full with 100k+ and 2+ GPUs, else LoRA.

    No GPU at all (0 GB, a valid answer) is LoRA on the CPU (``method.select.no_gpu``): QLoRA saves GPU memory
    and nothing else."""
    ev = {"gpu_memory_gb": gpu_memory_gb, "gpus": gpus, "n_examples": n_examples}
    if not gpu_memory_gb:
        return "lora", [why("method.select.no_gpu", ev)]
    choice = knowledge.method_for(gpu_memory_gb, gpus, n_examples)
    return choice.method, [why(i, ev) for i in choice.rule_ids]


def memory_estimate(params_b: float, method_name: str) -> tuple[float, list[Reason]]:
    """Training memory (GB) from the seed's memory table, scaled linearly between its 7B/13B/70B columns."""
    row = next(r for r in knowledge.load().hyperparameters.memory_by_method if r.method == method_name)
    points = sorted((float(k.rstrip("b")), v) for k, v in row.gb.items())
    if params_b <= points[0][0]:
        gb = points[0][1] * params_b / points[0][0]
    elif params_b >= points[-1][0]:
        gb = points[-1][1] * params_b / points[-1][0]
    else:
        (x0, y0), (x1, y1) = next((a, b) for a, b in zip(points, points[1:], strict=False) if a[0] <= params_b <= b[0])
        gb = y0 + (y1 - y0) * (params_b - x0) / (x1 - x0)
    gb = round(gb, 2)
    return gb, [why(row.id, {"model_params_b": params_b, "method": method_name, "estimate_gb": gb})]


def fits(estimate_gb: float, gpu_memory_gb: float, gpus: int, method_name: str) -> list[Reason]:
    """A warning (citing the out-of-memory fixes) when the estimate exceeds the training machine."""
    capacity = gpu_memory_gb * (gpus if method_name == "full" else 1)
    if estimate_gb <= capacity:
        return []
    fix = "diag.out_of_memory.fix.qlora" if method_name != "qlora" else "diag.out_of_memory.fix.smaller_model"
    return [why(fix, {"estimate_gb": estimate_gb, "available_gb": capacity},
                text=f"The estimate ({estimate_gb:g} GB) exceeds the {capacity:g} GB available: "
                     + knowledge.rule(fix).text)]


def start_rank() -> int:
    """The LoRA rank to start with (``hp.lora.rank``)."""
    return int(knowledge.load().hyperparameters.rank_rule.start)


def lora_settings(complexity: str) -> tuple[dict[str, Any], list[Reason]]:
    """Rank 8 to start (16 for complex tasks), alpha = 2 x rank, dropout 0.05, all linear layers."""
    hp = knowledge.load().hyperparameters
    cfg = hp.lora_config
    # complex tasks take the rank the table reserves for them; everything else starts where the rule says
    row = next((r for r in hp.rank_selection if complexity == "complex" and r.use_for == "complex tasks"), None)
    row = row or next(r for r in hp.rank_selection if r.rank == hp.rank_rule.start)
    rank = row.rank
    lora = {"r": rank, "lora_alpha": int(cfg.alpha_ratio * rank), "lora_dropout": cfg.lora_dropout,
            "target_modules": cfg.target_modules, "bias": cfg.bias}
    reasons = [why(hp.rank_rule.id), why(row.id, {"task_complexity": complexity, "r": rank}),
               why("hp.lora.alpha", {"lora_alpha": lora["lora_alpha"]}), why("hp.lora.target_modules")]
    return lora, reasons


def hyperparameters(*, model_params_b: float, method_name: str, n_examples: int, gpu_memory_gb: float,
                    complexity: str = "unknown") -> tuple[dict[str, Any], list[Reason]]:
    """The training plan from the tables: learning rate, epochs, batch/accumulation, decay, warmup, stopping."""
    hp = knowledge.load().hyperparameters
    lr = knowledge.lr_for(model_params_b, knowledge.as_method(method_name))
    ep = knowledge.epochs_for(n_examples)
    batch = knowledge.batch_for(gpu_memory_gb)
    wd = knowledge.weight_decay_for(n_examples)
    # warm up longer for larger models (hp.warmup): the low end of 5-10% for the smallest size row, else the default
    smallest = hp.learning_rate_by_model_size[0].size
    warmup = hp.warmup.min_ratio if knowledge.size_row(model_params_b).size == smallest else hp.warmup.default_ratio
    es = hp.early_stopping
    plan: dict[str, Any] = {
        "learning_rate": lr.recommended,
        "learning_rate_range": [lr.lr_min, lr.lr_max],
        "epochs": ep.recommended,
        "epochs_range": [ep.min_epochs, ep.max_epochs],
        "per_device_batch_size": batch.per_device,
        "gradient_accumulation_steps": batch.gradient_accumulation,
        "effective_batch_size": batch.effective,
        "weight_decay": wd.value,
        "warmup_ratio": warmup,
        "lr_scheduler": hp.lr_schedule.scheduler,
        "early_stopping": {"patience": es.patience, "threshold": es.threshold, "metric": es.metric},
        "lora": None,
    }
    reasons = [why(i, {"model_params_b": model_params_b, "method": method_name, "learning_rate": lr.recommended})
               for i in lr.rule_ids]
    reasons += [why(ep.id, {"n_examples": n_examples, "epochs": ep.recommended}),
                *[why(i, {"gpu_memory_gb": gpu_memory_gb, "per_device": batch.per_device,
                          "accumulation": batch.gradient_accumulation, "below_table": batch.below_table})
                  for i in batch.rule_ids],
                why(wd.id, {"n_examples": n_examples, "weight_decay": wd.value}),
                why(hp.warmup.id, {"warmup_ratio": warmup, "model_params_b": model_params_b}),
                why(hp.lr_schedule.id), why(es.id)]
    if method_name in ("lora", "qlora"):
        plan["lora"], lora_reasons = lora_settings(complexity)
        reasons += lora_reasons
    return plan, reasons


def short_run(hp: dict[str, Any], *, device: dict[str, Any] | None, model_params_b: float,
              max_steps: int | None, method_name: str | None = None) -> tuple[dict[str, Any], list[Reason]]:
    """The short check run the pipeline trains on THIS machine, and how much of the test split it scores.

    On a GPU (or for a model too large to check on a CPU) it is the plan's batch, with every test row and
    probe. Without a GPU, a small model trains ``hp.batch.cpu``'s batch (8 x 1) for a few dozen steps and is
    checked on a subset (``eval.short_run.subset``). The recommendation's plan is untouched: it is for the
    training machine the user described.
    """
    k = knowledge.load()
    kind = str((device or {}).get("kind") or "cpu")
    cpu = k.rule("hp.batch.cpu").raw
    plan_batch = {"per_device_batch_size": hp.get("per_device_batch_size"),
                  "gradient_accumulation_steps": hp.get("gradient_accumulation_steps")}
    if kind == "cuda" or model_params_b > float(cpu["max_params_b"]):
        return {"device": kind, **plan_batch, "max_steps": max_steps, "eval_steps": None, "val_rows": None,
                "evaluation": None}, []
    steps = int(max_steps or cpu["max_steps"])
    per_device, acc = int(cpu["per_device_batch_size"]), int(cpu["gradient_accumulation_steps"])
    sub = k.rule("eval.short_run.subset").raw
    evaluation = {"test_rows": int(sub["test_rows"]), "compare_rows": int(sub["compare_rows"]),
                  "probes": int(sub["probes"])}
    lr = k.rule("hp.lr.check_run").raw
    run = {"device": kind, "per_device_batch_size": per_device, "gradient_accumulation_steps": acc,
           "effective_batch_size": per_device * acc, "max_steps": steps, "learning_rate": float(lr["learning_rate"]),
           # floor: the last evaluation lands at or before the last step, so all of them happen
           "eval_steps": max(1, steps // int(cpu["evaluations"])), "val_rows": int(cpu["val_rows"]),
           "evaluation": evaluation}
    ev = {"device": kind, "model_params_b": model_params_b, "plan": plan_batch,
          "short_run": {k_: run[k_] for k_ in ("per_device_batch_size", "gradient_accumulation_steps", "max_steps")}}
    text = (f"This machine has no GPU, so the short check run trains {per_device} sequences per step"
            f"{f' x {acc} accumulation steps' if acc > 1 else ' without accumulation'} for {steps} steps instead "
            f"of the plan's {plan_batch['per_device_batch_size']} x {plan_batch['gradient_accumulation_steps']}: "
            "on a CPU time is the limit, not memory. The plan above stays the one for your GPU.")
    reasons = [why("hp.batch.cpu", ev, text=text),
               why("hp.lr.check_run", {"check_run_lr": run["learning_rate"], "plan_lr": hp.get("learning_rate")}),
               why("eval.short_run.subset", evaluation)]
    if method_name and method_name != "lora":  # QLoRA (or full) is the target machine's; a CPU check trains LoRA
        run["method"] = "lora"
        reasons.append(why("method.check_run.cpu", {"target_method": method_name, "check_run_method": "lora"}))
    return run, reasons


def split_plan(n_examples: int) -> tuple[dict[str, Any], list[Reason]]:
    """Train/val/test fractions and counts (``data.split.*``), with the 100-row minimums."""
    s = knowledge.split_ratios(n_examples)
    plan = {"train": s.train, "val": s.val, "test": s.test, "n_train": s.n_train, "n_val": s.n_val,
            "n_test": s.n_test, "seed": s.seed, "stratify_by": s.stratify_by, "feasible": s.feasible}
    return plan, [why(i, {"n_examples": n_examples}) for i in s.rule_ids]


# ------------------------------------------------------------------ the best-practice checklist

def checklist(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tick the 15 best-practice items from the evidence gathered so far in the session.

    The verdicts come from ``tools.checklist`` (the report's evaluator too); here only the session's facts and
    the evidence shown beside each item are gathered."""
    from tools.checklist import ChecklistFacts, evaluate

    answers = state.get("answers") or {}
    measured = state.get("measured") or {}
    plan = state.get("plan") or {}
    pipe = state.get("pipeline") or {}
    method_name = state.get("method")
    n = answers.get("n_examples")
    hp = plan.get("hyperparameters") or {}
    train = pipe.get("train") or {}
    compare_rows = len((pipe.get("compare") or {}).get("rows") or []) if "compare" in pipe else None
    facts = ChecklistFacts(
        prompt_baseline_measured=bool(measured), n_examples=n, dataset_cleaned="clean" in pipe,
        split_created="split" in pipe, metric_defined=bool(measured.get("metric")) or "quality_target" in answers,
        method=method_name, learning_rate=hp.get("learning_rate"), model_params_b=answers.get("model_params_b"),
        epochs=hp.get("epochs"), val_loss_monitored=train.get("best_val_loss") is not None,
        runlog=bool(state.get("session_id")), test_evaluated="evaluate" in pipe, side_by_side_rows=compare_rows,
        forgetting_checked="forgetting" in pipe, ab_tested="ab" in pipe, hyperparameters_documented=bool(hp))
    shown: dict[str, Any] = {
        "prompt_baseline_measured": {"quality": measured.get("quality"), "n": measured.get("n")}
        if measured else "reported by the user, not measured",
        "n_examples>=1000": {"n_examples": n},
        "dataset_cleaned": _pick(pipe.get("clean"), "input_rows", "kept_rows", "removed"),
        "split_created": _pick(pipe.get("split"), "train", "val", "test"),
        "metric_defined": {"metric": measured.get("metric"), "bar": state.get("bar")},
        "method_lora": {"method": method_name},
        "lr_in_range": {"learning_rate": hp.get("learning_rate"), "range": hp.get("learning_rate_range")},
        "epochs_3_5": {"epochs": hp.get("epochs")},
        "val_loss_monitored": {"best_val_loss": train.get("best_val_loss")},
        "runlog": {"session_id": state.get("session_id")},
        "test_evaluated": _pick(pipe.get("evaluate"), "quality", "metric", "n"),
        "manual_review": {"side_by_side_rows": compare_rows} if compare_rows is not None else None,
        "forgetting_checked": _pick(pipe.get("forgetting"), "drop", "degraded", "verdict"),
        "ab_tested": _pick(pipe.get("ab"), "metric", "diff", "diff_ci95"),
        "hyperparameters_documented": {"recorded_in": "run log (sessions.recommendation)"} if hp else None,
    }
    return {t.id: {"n": t.n, "done": bool(t.done), "text": t.text, "evidence": shown.get(t.evidence)}
            for t in evaluate(facts)}


def _pick(d: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    if not isinstance(d, dict):
        return None
    return {k: d[k] for k in keys if k in d}


# ------------------------------------------------------------------ the whole tree as one table
# ``TREE`` is the decision tree once: for each deciding node of the graph, a pure function of the facts with a
# ``Literal`` outcome, and the node each outcome leads to. The graph's conditional edges (``agent.graph``) and
# ``decide`` (which the counterfactuals replay) both walk it, so the card's "what would change" replays exactly
# the graph's logic.

FACTS = ("bar", "prompt_quality", "optimized_quality", "goals", "task", "n_examples", "gpu_memory_gb", "gpus")
PATH_WORDS = {"prompts": "use prompts", "optimized_prompts": "use optimised prompts", "fine_tune": "fine-tune",
              "rag": "use retrieval (RAG)", "collect_more_data": "collect more data first"}
# the question that supplies a fact (they differ where the question predates the fact's name)
QUESTION_FOR = {"optimized_quality": "optimized_prompt_quality"}


class MissingFact(Exception):  # noqa: N818 - a signal: the tree needs this fact before it can go on
    """Raised by a routing function that needs a fact nobody has given yet; ``question`` asks for it."""

    def __init__(self, fact: str) -> None:
        super().__init__(fact)
        self.fact = fact
        self.question = QUESTION_FOR.get(fact, fact)


@dataclass(frozen=True)
class Facts:
    """The flat facts the decision tree reads (answers and measurements), as the graph's state holds them."""

    bar: float
    prompt_quality: float | None = None
    optimized_quality: float | None = None
    goals: list[str] | None = None
    task: str | None = None
    n_examples: int | None = None
    gpu_memory_gb: float | None = None
    gpus: int | None = None
    curve: dict[str, Any] | None = None  # a measured learning curve, read by the size criterion
    measured: dict[str, Any] | None = None  # the plain prompt's measurement (evidence; None when reported)
    measured_optimized: dict[str, Any] | None = None

    @classmethod
    def of(cls, facts: Mapping[str, Any], curve: dict[str, Any] | None = None) -> Facts:
        """From a flat dict keyed by ``FACTS`` (what ``counterfactuals`` changes one key of)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in facts.items() if k in names and k != "curve"}, curve=curve)

    def flat(self) -> dict[str, Any]:
        """The ``FACTS`` as a flat dict."""
        return {k: getattr(self, k) for k in FACTS}

    def need(self, fact: str) -> Any:
        """The fact's value; ``MissingFact`` when it is not known yet."""
        value = getattr(self, fact)
        if value is None:
            raise MissingFact(fact)
        return value


Step3Outcome = Literal["rag", "optimized_prompts", "prompts", "collect_more_data", "fine_tune"]
MethodOutcome = Literal["lora", "qlora", "full"]
TreeNode = Literal["prompt_baseline", "optimize_prompts", "consider_fine_tuning", "choose_method"]
AfterTree = Literal["recommend", "plan_training"]


def _ungraded_similarity(measured: dict[str, Any] | None) -> bool:
    return bool(measured) and bar_quality(measured)[1] == "similarity"


def at_prompt_baseline(f: Facts) -> tuple[Literal["prompts", "continue"], list[Reason]]:
    """Step 1 on the facts: the plain prompt's share against the bar (a bare similarity cannot meet it)."""
    q = f.prompt_quality if _ungraded_similarity(f.measured) else f.need("prompt_quality")
    return step1_prompt(q, f.bar, measured=f.measured)


def at_optimize_prompts(f: Facts) -> tuple[Literal["optimized_prompts", "continue"], list[Reason]]:
    """Step 2 on the facts: the best optimised prompt's share against the bar; with only a similarity and no
    grades, the best variant meanwhile (``dt.bar.ungraded``)."""
    q = f.optimized_quality if _ungraded_similarity(f.measured_optimized) else f.need("optimized_quality")
    return step2_optimized(q, f.bar, measured=f.measured_optimized, plain=f.measured)


def _cite_step2(outcome: str, reasons: list[Reason]) -> list[str]:
    if outcome != "optimized_prompts":
        return []
    return ["dt.bar.ungraded" if any(r.rule == "dt.bar.ungraded" for r in reasons) else "dt.step2.quality_bar"]


def at_consider_fine_tuning(f: Facts) -> tuple[Step3Outcome, list[Reason]]:
    """Step 3 on the facts: goals first (a don't-fine-tune goal redirects), then task and dataset size."""
    goal, reasons = goals_decision(f.goals)
    if goal != "continue":
        return goal, reasons
    if f.task:
        reasons += task_decision(f.task)[1]
    size, r = dataset_size(int(f.need("n_examples")), curve=f.curve, bar=f.bar)
    return ("fine_tune" if size == "continue" else size), reasons + r


def at_choose_method(f: Facts) -> tuple[MethodOutcome, list[Reason]]:
    """The method on the facts: GPU memory, GPU count and data size."""
    return method(float(f.need("gpu_memory_gb")), int(f.gpus or 1), int(f.need("n_examples")))


def _size_rules(reasons: list[Reason]) -> list[str]:
    return [r.rule for r in reasons if r.rule.startswith(("size.band", "lc."))]


def _cite_step3(outcome: str, reasons: list[Reason]) -> list[str]:
    if outcome in ("rag", "optimized_prompts"):  # a goal redirected: the don't-fine-tune rules decided
        return ["ftw.prompts_fail", *[r.rule for r in reasons if r.rule.startswith("dft.")]]
    return ["ftw.prompts_fail", *_size_rules(reasons), *(["dft.few_examples"] if outcome == "prompts" else [])]


@dataclass(frozen=True)
class Branch:
    """One deciding node: its pure routing function, the node each outcome leads to, and the rule ids an
    outcome adds to the card's deciding rules."""

    choose: Callable[[Facts], tuple[str, list[Reason]]]
    edges: Mapping[str, TreeNode | AfterTree]
    cite: Callable[[str, list[Reason]], list[str]]


TREE_START: TreeNode = "prompt_baseline"
TREE: dict[str, Branch] = {  # keyed by the graph's deciding nodes (``TreeNode``)
    "prompt_baseline": Branch(at_prompt_baseline, {"prompts": "recommend", "continue": "optimize_prompts"},
                              lambda o, _: ["dt.step1.quality_bar"] if o == "prompts" else []),
    "optimize_prompts": Branch(at_optimize_prompts,
                               {"optimized_prompts": "recommend", "continue": "consider_fine_tuning"},
                               _cite_step2),
    "consider_fine_tuning": Branch(at_consider_fine_tuning,
                                   {"rag": "recommend", "optimized_prompts": "recommend", "prompts": "recommend",
                                    "collect_more_data": "recommend", "fine_tune": "choose_method"},
                                   _cite_step3),
    "choose_method": Branch(at_choose_method, {"lora": "plan_training", "qlora": "plan_training",
                                               "full": "plan_training"},
                            lambda _, reasons: [reasons[0].rule]),
}
PATHS: tuple[Path, ...] = get_args(Path)


def facts_of(state: AdvisorState) -> Facts:
    """The facts of the graph's state: measurements where tunewise took them, else the user's answers. A
    quality is the number that may meet the bar (``bar_quality``): a share, a graded share, or None for a bare
    similarity."""
    answers = state.get("answers") or {}
    measured, optimized = state.get("measured"), state.get("measured_optimized")
    bar = state.get("bar")
    return Facts(bar=float(bar) if bar is not None else quality_bar(None)[0],
                 prompt_quality=bar_quality(measured, None)[0] if measured else answers.get("prompt_quality"),
                 optimized_quality=bar_quality(optimized, None)[0] if optimized
                 else answers.get("optimized_prompt_quality"),
                 goals=answers.get("goals"), task=answers.get("task"), n_examples=answers.get("n_examples"),
                 gpu_memory_gb=answers.get("gpu_memory_gb"), gpus=answers.get("gpus"),
                 curve=state.get("learning_curve"), measured=measured or None, measured_optimized=optimized or None)


def next_node(node: str, facts: Facts) -> TreeNode | AfterTree:
    """Where the graph goes after deciding ``node`` on ``facts`` (the graph's conditional edge)."""
    branch = TREE[node]
    return branch.edges[branch.choose(facts)[0]]


def decide(facts: dict[str, Any], curve: dict[str, Any] | None = None) -> dict[str, Any]:
    """The decision tree on ``facts`` -> ``{path, method, needs, deciding}``, walking ``TREE`` as the graph does.

    ``needs`` names the question of the first missing fact when the tree cannot finish; ``deciding`` lists the
    2-4 rule ids that settled the path and the method.
    """
    f = Facts.of(facts, curve)
    path: str | None = None
    meth: str | None = None
    deciding: list[str] = []
    node: str = TREE_START
    while (branch := TREE.get(node)) is not None:
        try:
            outcome, reasons = branch.choose(f)
        except MissingFact as m:
            return {"path": path, "method": meth, "needs": m.question, "deciding": deciding if path else []}
        node = branch.edges[outcome]
        deciding = [*deciding, *branch.cite(outcome, reasons)]
        if outcome in PATHS:
            path = outcome
        elif node == "plan_training":
            meth = outcome
    return {"path": path, "method": meth, "needs": None, "deciding": deciding}


METHOD_NAMES = {"lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tuning"}


def method_name(m: str | None) -> str:
    return METHOD_NAMES.get(m or "lora", m or "LoRA")


def _outcome_words(d: dict[str, Any]) -> str:
    if d["path"] is None:
        return f"tunewise would go on and ask for {d['needs'].replace('_', ' ')}"
    if d["path"] == "fine_tune" and d["method"]:
        return f"fine-tune with {method_name(d['method'])}"
    return PATH_WORDS[d["path"]]


def _pct(x: float) -> str:
    return f"{x:.0%}" if abs(x * 100 - round(x * 100)) < 1e-9 else f"{x:.1%}"


def _candidates(facts: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """(fact, direction, changed value, condition in words): the thresholds the rules themselves use,
    nearest first in each direction."""
    k = knowledge.load()
    out: list[tuple[str, str, Any, str]] = []
    bar = float(facts["bar"])
    for fact, words in (("prompt_quality", "the plain prompt"), ("optimized_quality", "optimised prompts")):
        q = facts.get(fact)
        if q is None:
            continue
        if q < bar:
            out.append((fact, "up", bar, f"if {words} reached {_pct(bar)}"))
        else:
            out.append((fact, "down", round(bar - 0.01, 4), f"if {words} scored under {_pct(bar)}"))
    known = [q for q in (facts.get("prompt_quality"), facts.get("optimized_quality")) if q is not None]
    if known:
        best = max(known)
        if best < bar:
            out.append(("bar", "down", best, f"with a bar of {_pct(best)} or lower"))
        elif facts.get("prompt_quality") is not None and facts["prompt_quality"] >= bar:
            higher = round(facts["prompt_quality"] + 0.01, 4)
            if higher <= 1:
                out.append(("bar", "up", higher, f"with a bar above {_pct(facts['prompt_quality'])}"))
    n = facts.get("n_examples")
    if n is not None:
        edges = sorted({int(b.min) + (0 if b.min_inclusive else 1) for b in k.rules.dataset_size_bands if b.min}
                       | {int(r.min_examples) for r in k.rules.method_selection if r.min_examples})
        out += [("n_examples", "up", e, f"with ≥{e:,} examples") for e in edges if e > n]
        out += [("n_examples", "down", e - 1, f"with under {e:,} examples") for e in reversed(edges) if e <= n]
    gpu = facts.get("gpu_memory_gb")
    if gpu is not None:
        edges_gb = sorted({float(r.max_gpu_memory_gb) for r in k.rules.method_selection if r.max_gpu_memory_gb})
        smallest_gpu = float(k.hyperparameters.batch_by_gpu_memory.rows[0].gpu_memory_gb)
        ups = ([(smallest_gpu, f"with a {smallest_gpu:g} GB GPU")] if not gpu else []) + \
            [(e, f"with ≥{e:g} GB of GPU memory") for e in edges_gb if e > gpu]
        downs = [(e - 1, f"with under {e:g} GB of GPU memory") for e in reversed(edges_gb) if e <= gpu]
        if gpu:
            downs.append((0.0, "with no GPU"))
        out += [("gpu_memory_gb", "up", v, t) for v, t in ups] + [("gpu_memory_gb", "down", v, t) for v, t in downs]
    gpus = int(facts.get("gpus") or 1)
    if facts.get("gpu_memory_gb") is not None:
        need = max((int(r.min_gpus) for r in k.rules.method_selection if r.min_gpus), default=2)
        if gpus < need:
            out.append(("gpus", "up", need, f"with {need} or more GPUs"))
        else:
            out.append(("gpus", "down", 1, "with a single GPU"))
    goals = list(facts.get("goals") or ["quality"])
    for row in k.rules.goals:
        if row.supports_fine_tuning and row.goal not in goals:
            out.append(("goals", "up", [*goals, row.goal], f"if you also wanted {row.goal.replace('_', ' ')}"))
    return out


def _distance(fact: str, old: Any, new: Any) -> float:
    """How big a change is, relative to the old value (goals count as one step)."""
    if fact == "goals":
        return 1.0
    old_f, new_f = float(old or 0), float(new)
    return abs(new_f - old_f) / abs(old_f) if old_f else 1.0  # from nothing (no GPU, 0 examples): one step


def counterfactuals(facts: dict[str, Any], curve: dict[str, Any] | None = None, *, limit: int = 6
                    ) -> list[dict[str, Any]]:
    """The smallest changes to the answers or measurements that flip the path or the method.

    For each fact and direction, the nearest threshold (read from the rules) whose re-run of ``decide``
    gives another outcome; sorted by relative size of the change; one entry per distinct outcome.
    """
    base = decide(facts, curve)
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for fact, direction, value, condition in _candidates(facts):
        changed = decide({**facts, fact: value}, curve)
        key = (fact, changed["path"], changed["method"], changed["needs"])
        if key in found:  # a nearer threshold of this fact already gives this outcome
            continue
        if (changed["path"], changed["method"]) == (base["path"], base["method"]) and \
                changed["needs"] == base["needs"]:
            continue
        if base["path"] == changed["path"] == "fine_tune" and changed["method"] is None:
            continue  # the method is not known either way: not a flip
        outcome = _outcome_words(changed)
        found[key] = {
            "fact": fact, "from": facts.get(fact), "to": value, "direction": direction, "condition": condition,
            "path": changed["path"], "method": changed["method"], "needs": changed["needs"],
            "rules": changed["deciding"], "text": f"{condition}: {outcome}",
            "distance": round(_distance(fact, facts.get(fact), value), 4)}
    return sorted(found.values(), key=lambda c: c["distance"])[:limit]


# ------------------------------------------------------------------ the summary and the card

def _bar_words(bar: float, user_set: bool) -> str:
    return f"your {_pct(bar)} bar" if user_set else f"the default {_pct(bar)} bar"


def summary_line(facts: dict[str, Any], decision: dict[str, Any], *, measured: dict[str, bool],
                 user_bar: bool = True, curve: dict[str, Any] | None = None) -> str:
    """One sentence: the decision, the quality against the bar, and the deciding reason, in the user's terms.

    ``measured`` says, per quality fact, whether tunewise measured it ("measured") or the user reported it.
    Every number in the sentence is in the reasons' evidence.
    """
    bar = float(facts["bar"])
    bw = _bar_words(bar, user_bar)
    q1, q2 = facts.get("prompt_quality"), facts.get("optimized_quality")
    path, n = decision["path"], facts.get("n_examples")

    def said(fact: str) -> str:
        if ((facts.get("how") or {}).get(fact) or {}).get("how") == "graded":
            return "graded"
        return "measured" if measured.get(fact) else "reported"

    best_fact = "optimized_quality" if q2 is not None and (q1 is None or q2 >= q1) else "prompt_quality"
    best = facts.get(best_fact)
    reach = f"prompts reach {_pct(best)} ({said(best_fact)}) of {bw}" if best is not None else ""
    min_ft = int(knowledge.rule("ftw.min_examples").raw["min_examples"])
    reading = curve_reading(curve, bar) if curve else []
    curve_bit = ""
    if reading and reading[0].rule in ("lc.reaches_bar", "lc.below_bar") and not \
            (reading[0].evidence or {}).get("already_at_bar"):
        ev = reading[0].evidence or {}
        curve_bit = (f"; the measured curve reaches the bar at about {ev['n_to_bar']:,} examples"
                     if reading[0].rule == "lc.reaches_bar" else
                     "; the measured curve says more data of this kind will not reach the bar")
    ungraded = facts.get("ungraded")
    if path == "optimized_prompts" and ungraded and q2 is None:
        variant = ungraded.get("variant")
        fields = {**_grading_cost(ungraded.get("n")),
                  "what": "the plain prompt" if variant in (None, "baseline") else variant,
                  "similarity": f"{float(ungraded['similarity']):.3f}", "metric": ungraded.get("metric"),
                  "bar": _pct(bar)}
        return " ".join(str(knowledge.rule("dt.bar.ungraded").raw["summary"]).format(**fields).split())
    if path == "prompts" and q1 is not None and q1 >= bar:
        return f"Use prompts: the plain prompt scores {_pct(q1)} ({said('prompt_quality')}) against {bw}."
    if path == "optimized_prompts" and q2 is not None and q2 >= bar:
        return f"Use optimised prompts: they score {_pct(q2)} ({said('optimized_quality')}) against {bw}."
    if path == "optimized_prompts":
        goals = ", ".join(g.replace("_", " ") for g in facts.get("goals") or [])
        return (f"Keep improving prompts: {reach}, but your goals ({goals}) are served better by the prompt "
                "than by training.")
    if path == "rag":
        return f"Use retrieval (RAG) for information that changes: {reach}, and training does not keep facts current."
    if path == "prompts":
        return (f"Stay with prompts for now: {reach}; fine-tuning needs at least ~{min_ft:,} examples "
                f"and you have {n:,}.")
    if path == "collect_more_data":
        return (f"Collect more data first: {reach}, and {n:,} examples are too few to train on safely; "
                f"fine-tuning becomes viable from ~{min_ft:,}{curve_bit}.")
    if path == "fine_tune":
        meth = method_name(decision.get("method"))
        return (f"Fine-tune with {meth}: {reach}, and {n:,} examples make training viable{curve_bit}."
                if n is not None else f"Fine-tune with {meth}: {reach}.")
    return ""


def card(facts: dict[str, Any], decision: dict[str, Any], reasons: list[dict[str, Any]], *,
         measured: dict[str, bool], summary: str, cfs: list[dict[str, Any]]) -> Card:
    """The short card the CLI and the TUI lead with: decision, method, key numbers against the bar, the
    deciding rules (2-4), and the top counterfactuals. The full reason list stays in ``reasons``."""
    bar = float(facts["bar"])
    numbers = []
    how = facts.get("how") or {}
    for fact, name in (("prompt_quality", "plain prompt"), ("optimized_quality", "optimised prompt")):
        m = how.get(fact) or {}
        if facts.get(fact) is not None:
            numbers.append({"name": name, "value": facts[fact], "bar": bar,
                            "source": "measured" if measured.get(fact) else "reported"})
            if m.get("how") == "graded":  # say it is people's share, not the similarity
                numbers[-1].update(source="graded", kind="graded",
                                   text=_number_text(name, facts[fact], bar, m, True))
        elif m.get("similarity") is not None:  # a similarity: shown, never set against the bar
            numbers.append({"name": name, "value": m["similarity"], "bar": None, "source": "measured",
                            "kind": "similarity", "metric": m.get("metric"),
                            "text": _card_words("card_similarity", name=name, metric=m.get("metric"),
                                                similarity=f"{float(m['similarity']):.3f}")})
    if facts.get("n_examples") is not None:
        numbers.append({"name": "examples", "value": facts["n_examples"],
                        "bar": int(knowledge.rule("ftw.min_examples").raw["min_examples"]), "source": "reported"
                        if not measured.get("n_examples") else "measured"})
    texts = {r["rule"]: r["text"] for r in reasons}
    deciding = [{"rule": rid, "text": texts.get(rid) or knowledge.rule(rid).text} for rid in decision["deciding"]]
    return Card(decision=decision["path"], method=decision["method"], summary=summary, numbers=numbers,
                deciding=deciding, what_would_change=[c["text"] for c in cfs[:3]], reasons_total=len(reasons),
                deciding_number=deciding_number(facts, decision, measured=measured))


def _card_words(key: str, **fields: Any) -> str:
    """A card sentence from ``dt.bar.needs_share`` (the wording lives in knowledge/evaluation.yaml)."""
    return str(knowledge.rule("dt.bar.needs_share").raw[key]).format(**fields)


def _number_text(name: str, value: float, bar: float, m: dict[str, Any], measured: bool | None) -> str:
    """One card number in words, saying what kind of number met (or missed) the bar."""
    if m.get("how") == "graded":
        g = m.get("graded") or {}
        ci = g.get("ci95") or []
        ranks = _card_words("card_ranks", metric=m.get("metric"), similarity=f"{float(m['similarity']):.3f}") \
            if m.get("similarity") is not None else ""
        return _card_words("card_graded", name=name, share=_pct(value), n=g.get("n"), bar=_pct(bar), ranks=ranks,
                           ci=f" [{_pct(ci[0])}–{_pct(ci[1])}]" if len(ci) == 2 else "")
    metric = f" {m['metric']}" if m.get("metric") else ""
    return f"{name}{metric} {_pct(value)} vs bar {_pct(bar)} ({'measured' if measured else 'reported'})"


def deciding_number(facts: dict[str, Any], decision: dict[str, Any], *, measured: dict[str, bool]
                    ) -> dict[str, Any]:
    """Which number decided the prompt steps: the share compared with the bar (its kind: a metric that is a
    share, people's grades, or the user's report), or none, when only a similarity was measured."""
    how = facts.get("how") or {}
    fact = "prompt_quality" if decision.get("path") == "prompts" else "optimized_quality"
    if facts.get(fact) is None and facts.get("prompt_quality") is not None and decision.get("path") != "prompts":
        fact = "prompt_quality"
    m = how.get(fact) or {}
    value = facts.get(fact)
    name = "plain prompt" if fact == "prompt_quality" else "optimised prompt"
    if value is None:
        sim = m.get("similarity")
        return {"fact": fact, "kind": "none", "value": None, "compared_with_bar": False, "metric": m.get("metric"),
                "similarity": sim, "rule": "dt.bar.ungraded",
                "text": _card_words("card_none", name=name, metric=m.get("metric"),
                                    similarity=f"{float(sim):.3f}" if sim is not None else "-")}
    kind = m.get("how") or ("share" if measured.get(fact) else "reported")
    g = m.get("graded") or {}
    return {"fact": fact, "kind": kind, "value": value, "compared_with_bar": True,
            "metric": "graded_share" if kind == "graded" else m.get("metric"),
            "ci95": g.get("ci95") if kind == "graded" else m.get("ci95"), "n": g.get("n") if kind == "graded"
            else m.get("n"), "rule": "dt.bar.needs_share" if kind == "graded" else None,
            "text": _number_text(name, float(value), float(facts["bar"]), m, measured.get(fact))}
