"""The training tools are LangChain tools with typed schemas, and the estimate runs through them."""

from __future__ import annotations


def test_training_tools_are_registered_with_schemas() -> None:
    from agent.lc_tools import all_tools
    from agent.lc_tools.train import TOOLS

    names = {t.name for t in TOOLS}
    assert names == {"train_model", "estimate_training_memory", "diagnose_run", "export_merged_model"}
    assert names <= {t.name for t in all_tools()}
    assert "train" in TOOLS[0].args and "method" in TOOLS[0].args


def test_estimate_tool_answers() -> None:
    from agent.lc_tools.train import estimate_training_memory

    out = estimate_training_memory.invoke({"method": "qlora", "params_b": 7})
    assert out["method"] == "qlora" and out["total_gb"] > 0 and out["seed_reference_gb"] == 12
