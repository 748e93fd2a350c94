"""Read-only knowledge and estimator tools (typed schemas from the signatures).

These look rules up and compute plans and estimates; none of them writes anything or starts a session, so
they are what the chat model may call while it explains a decision ("why?", ``agent.llm.explain``). Keep it
that way: this module must not import ``agent.advisor``, ``agent.graph`` or ``agent.llm`` (an import-linter
contract checks it).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.tools import tool

from agent.lc_tools.evaluate import fine_tune_roi
from agent.lc_tools.train import estimate_training_memory


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


# The memory estimate and the ROI formula each have one tool, owned by their area; "why?" is handed the same objects.
TOOLS = [knowledge_rule, knowledge_explanation, recommend_method, training_plan, estimate_training_memory,
         fine_tune_roi]
