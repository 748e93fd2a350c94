"""Choice mode over the labels' token trie (issue 25): the same scores and choices as the per-label path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import generation


def test_label_trie_shares_leading_tokens() -> None:
    trie = generation.LabelTrie.build([[1, 2, 9], [1, 3, 9], [1, 2, 4, 9], [5, 9]])
    # nodes: 1, 1-2, 1-3, 1-2-4, 5 (the end token is never fed)
    assert trie.tokens == [1, 2, 3, 4, 5] and trie.depth == [0, 1, 1, 2, 0]
    assert trie.paths == [[0, 1], [0, 2], [0, 1, 3], [4]]
    assert trie.ancestors[3] == [0, 1, 3] and trie.ancestors[4] == [4]


def test_trie_choices_equal_the_per_label_path(tiny_model_dir: Path) -> None:
    from tools import models

    model, tok = models.load_cached(models.resolve(str(tiny_model_dir)))
    # labels that share leading tokens, one that is a prefix of others, and different lengths
    labels = ["card", "card_arrival", "card_linking", "card_payment_fee_charged", "refund", "refund_not_showing_up",
              "top_up_failed", "top_up_limits", "pin_blocked", "exchange_rate"]
    sys_msg = {"role": "system", "content": "Classify the banking question."}
    prompts = [[sys_msg, {"role": "user", "content": f"question {i}: where is my card " * (1 + i % 3)}]
               for i in range(7)]
    flat = generation.label_logprobs(model, tok, prompts, labels, trie=False)
    for tree_tokens in (512, 20, 1):  # all rows in one forward; a few rows per forward; one row per forward
        events: list = []
        tried = generation.label_logprobs(model, tok, prompts, labels, tree_tokens=tree_tokens,
                                          on_progress=events.append)
        for a, b in zip(flat, tried, strict=True):
            assert b == pytest.approx(a, abs=1e-4)
            assert max(range(len(labels)), key=lambda k: a[k]) == max(range(len(labels)), key=lambda k: b[k])
        assert events and events[-1].stage == "choose" and events[-1].step == len(prompts)
    # no prefix shared by every row: the trie path still scores each row from its own prefill
    odd = [[{"role": "user", "content": "no system message"}], *prompts[:2]]
    assert generation.label_logprobs(model, tok, odd, labels) == pytest.approx(
        [pytest.approx(r, abs=1e-4) for r in generation.label_logprobs(model, tok, odd, labels, trie=False)])
    picks = generation.choose(model, tok, prompts, labels)
    assert [g.text for g in picks] == [labels[max(range(len(labels)), key=lambda k: r[k])] for r in flat]
