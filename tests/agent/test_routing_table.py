"""One decision tree: the graph's conditional edges and ``routing.decide`` walk the same table (``routing.TREE``).

If a node routed on its own logic (or an edge read a key a node set), a counterfactual could promise an outcome
the graph never reaches; these tests fail then.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent import graph, routing
from agent.advisor import run_scripted
from agent.state import AdvisorState

BASE = dict(task="domain_language", goals=["quality"], quality_target=0.9, test_set="", prompt_quality=0.6,
            optimized_prompt_quality=0.7, n_examples=5000, consistency="variable", gpu_memory_gb=24, gpus=1,
            model_params_b=7)

# answers that end on every path and every method
CASES = [
    dict(prompt_quality=0.95),
    dict(optimized_prompt_quality=0.9),
    dict(goals=["recent_information"]),
    dict(goals=["tone_style"]),
    dict(n_examples=50),
    dict(n_examples=500),
    dict(gpu_memory_gb=16),
    dict(gpu_memory_gb=0),
    dict(gpu_memory_gb=80, gpus=4, n_examples=200_000),
    dict(),
]


def facts_of_answers(answers: dict[str, Any]) -> dict[str, Any]:
    return {"bar": answers["quality_target"], "prompt_quality": answers["prompt_quality"],
            "optimized_quality": answers["optimized_prompt_quality"], "goals": answers["goals"],
            "task": answers["task"], "n_examples": answers["n_examples"],
            "gpu_memory_gb": answers["gpu_memory_gb"], "gpus": answers["gpus"]}


def walk_edges(answers: dict[str, Any]) -> tuple[str | None, str | None, list[str]]:
    """Follow the compiled graph's own edge functions from step 1 on a state holding ``answers``."""
    state: AdvisorState = {"answers": answers, "bar": answers["quality_target"]}
    node, visited, path, method = routing.TREE_START, [], None, None
    while node in routing.TREE:
        visited.append(node)
        outcome, _ = routing.TREE[node].choose(routing.facts_of(state))
        nxt = graph.tree_edge(node)(state)
        assert nxt == routing.TREE[node].edges[outcome]
        path = outcome if outcome in routing.PATHS else path
        method = outcome if nxt == "plan_training" else method
        node = nxt
    return path, method, visited


@pytest.mark.parametrize("changes", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "base" for c in CASES])
def test_graph_edges_and_decide_agree(changes: dict[str, Any]) -> None:
    answers = {**BASE, **changes}
    decision = routing.decide(facts_of_answers(answers))
    path, method, _ = walk_edges(answers)
    assert (path, method) == (decision["path"], decision["method"])


@pytest.mark.parametrize("changes", CASES[::3] + [CASES[7]], ids=lambda c: ",".join(c) or "base")
def test_a_graph_run_ends_where_decide_says(changes: dict[str, Any]) -> None:
    answers = {**BASE, **changes}
    rec = run_scripted(answers)["recommendation"]
    decision = routing.decide(facts_of_answers(answers))
    assert (rec["path"], rec["method"]) == (decision["path"], decision["method"])


def test_decide_names_the_first_missing_question() -> None:
    facts = facts_of_answers(BASE)
    assert routing.decide({**facts, "prompt_quality": None})["needs"] == "prompt_quality"
    assert routing.decide({**facts, "optimized_quality": None})["needs"] == "optimized_prompt_quality"
    assert routing.decide({**facts, "n_examples": None})["needs"] == "n_examples"
    gpu = routing.decide({**facts, "gpu_memory_gb": None})
    assert (gpu["path"], gpu["needs"]) == ("fine_tune", "gpu_memory_gb") and gpu["deciding"]
    # a goal that redirects decides before the size is needed
    assert routing.decide({**facts, "n_examples": None, "goals": ["recent_information"]})["path"] == "rag"


def test_the_compiled_graph_draws_the_table_edges() -> None:
    drawn = graph.build_graph().get_graph()
    for node in routing.TREE:
        targets = {e.target for e in drawn.edges if e.source == node}
        assert targets == set(graph.tree_targets(node)), node
    assert "next" not in AdvisorState.__annotations__  # edges read facts, not a key each node sets
