"""LangChain tool for the prompt baseline: measure a prompt (Step 1) and its variants (Step 2)."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool


@tool
def prompt_eval(test: str, system: str | None = None, shots: int = 0, shots_from: str | None = None,
                variants: bool = False, model: str | None = None, metric: str | None = None,
                limit: int | None = None, bar: float | None = None) -> dict[str, Any]:
    """Measure how well a prompt does on a test file before any fine-tuning.

    Args:
        test: test file (JSONL chat, prompt/completion, input/output, or CSV text/label) with expected outputs.
        system: system message (default: the file's own, else a short generic one).
        shots: few-shot examples to put before each input, drawn from shots_from.
        shots_from: file to draw few-shot examples from (a training file, never the test file).
        variants: also try 5/10 shots, chain of thought, an output-format spec and other system messages.
        model: embedded SmolLM2 by default; a local HF folder, run:ID or openai:MODEL.
        metric: exact_match, label_accuracy, macro_f1, contains, regex, json_valid, json_schema, json_equal,
            chrf, rouge_l, token_f1, python_syntax, pass_at_1 (default: decided from the task profile);
            a module:function metric is refused unless the user allowed it ($TUNEWISE_AGENT_METRICS).
        limit: use only the first N test rows.
        bar: quality bar (default 0.90, rule dt.quality_bar).

    Returns the summary: quality, ci95, metric, n, latency_ms, prompt_tokens, variants, best, reaches_bar, run_id.
    """
    from agent.lc_tools.evaluate import refuse_agent_metric
    from agent.prompt_backends import register
    from tools.prompt.evaluation import PromptEvalConfig, run_prompt_eval

    refused = refuse_agent_metric(metric)
    if refused:
        return refused
    register()
    return run_prompt_eval(PromptEvalConfig(test=test, system=system, shots=shots, shots_from=shots_from,
                                            variants=variants, model=model, metric=metric, limit=limit,
                                            bar=bar)).to_dict()


TOOLS = [prompt_eval]
