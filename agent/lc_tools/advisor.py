"""The advisor's knowledge and planning functions as LangChain tools (typed schemas from the signatures)."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.tools import tool


@tool
def knowledge_rule(rule_id: str) -> dict[str, Any]:
    """Look up a knowledge rule by id (e.g. 'size.band.1k_10k', 'hp.lr.correction.lora'): its text and source."""
    import knowledge

    try:
        r = knowledge.rule(rule_id)
    except KeyError as e:
        return {"error": str(e)}
    return {"id": r.id, "text": r.text, "source": r.source, "is_correction": r.is_correction}


@tool
def knowledge_explanation(topic: str) -> str:
    """The Markdown explanation of a topic: decision-tree, when-to-fine-tune, methods, hyperparameters,
    data-cleaning, evaluation, common-issues or corrections."""
    import knowledge

    try:
        return knowledge.explanation(topic)
    except KeyError as e:
        return str(e)


@tool
def recommend_method(gpu_memory_gb: float, gpus: int = 1, n_examples: int = 0) -> dict[str, Any]:
    """The training method (qlora/lora/full) for a GPU's memory, the GPU count and the data size, with reasons."""
    from agent import routing

    method, reasons = routing.method(gpu_memory_gb, gpus, n_examples)
    return {"method": method, "reasons": routing.reasons_dicts(reasons)}


@tool
def training_plan(model_params_b: float, method: Literal["full", "lora", "qlora"], n_examples: int,
                  gpu_memory_gb: float, task_complexity: Literal["simple", "complex", "unknown"] = "unknown"
                  ) -> dict[str, Any]:
    """Hyperparameters from the tables (learning rate, epochs, batch, accumulation, decay, warmup, LoRA)."""
    from agent import routing

    plan, reasons = routing.hyperparameters(model_params_b=model_params_b, method_name=method, n_examples=n_examples,
                                            gpu_memory_gb=gpu_memory_gb, complexity=task_complexity)
    split, r = routing.split_plan(n_examples)
    return {"hyperparameters": plan, "split": split, "reasons": routing.reasons_dicts(reasons + r)}


@tool
def training_memory(model_params_b: float, method: Literal["full", "lora", "qlora"], batch: int = 8,
                    lora_r: int = 8) -> dict[str, Any]:
    """Estimated training memory in GB for a model size (billions), method, per-device batch and LoRA rank."""
    from agent import pipeline, routing

    gb, reasons = pipeline.estimate_memory(model_params_b, method, batch=batch, lora_r=lora_r)
    return {"total_gb": gb, "reasons": routing.reasons_dicts(reasons)}


@tool
def advise(answers: dict[str, Any]) -> dict[str, Any]:
    """Run the whole advisor on a dict of answers (question id -> value); returns the recommendation."""
    from agent.advisor import run_scripted

    return run_scripted(answers)


TOOLS = [knowledge_rule, knowledge_explanation, recommend_method, training_plan, training_memory, advise]
