"""tunewise's domain knowledge: validated YAML tables with stable rule ids, and pure look-ups over them.

Importing the package validates the packaged files once, so a broken table fails loudly at start-up.
"""

from knowledge.loader import (
    EXPLANATION_TOPICS,
    Knowledge,
    KnowledgeError,
    Rule,
    all_rule_ids,
    explanation,
    load,
    rule,
)
from knowledge.lookup import (
    BatchAdvice,
    LrAdvice,
    MethodChoice,
    RoiResult,
    SplitPlan,
    as_method,
    batch_for,
    consistency_rule,
    epochs_for,
    goal_rule,
    latency_band,
    lr_for,
    method_for,
    quality_band,
    roi,
    size_band,
    size_row,
    split_ratios,
    task_rule,
    weight_decay_for,
)

load()

__all__ = [
    "EXPLANATION_TOPICS",
    "BatchAdvice",
    "Knowledge",
    "KnowledgeError",
    "LrAdvice",
    "MethodChoice",
    "RoiResult",
    "Rule",
    "SplitPlan",
    "all_rule_ids",
    "as_method",
    "batch_for",
    "consistency_rule",
    "epochs_for",
    "explanation",
    "goal_rule",
    "latency_band",
    "load",
    "lr_for",
    "method_for",
    "quality_band",
    "roi",
    "rule",
    "size_band",
    "size_row",
    "split_ratios",
    "task_rule",
    "weight_decay_for",
]
