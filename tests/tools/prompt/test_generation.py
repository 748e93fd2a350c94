"""The fast generation path (batched, shared-prefix KV cache) gives the sequential reference's predictions."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tools import generation


def _chats(inputs: list[str], system: str = "Answer with one word.") -> list[list[dict[str, str]]]:
    shots = [{"role": "user", "content": "The card never came."}, {"role": "assistant", "content": "card_arrival"}]
    return [[{"role": "system", "content": system}, *shots, {"role": "user", "content": t}] for t in inputs]


def test_common_prefix_len() -> None:
    assert generation.common_prefix_len([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert generation.common_prefix_len([[5], [6]]) == 0
    assert generation.common_prefix_len([]) == 0
    assert generation.common_prefix_len([[1, 2]]) == 2


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from tools import models

    return models.load_model(str(tiny_model_dir), device="cpu")


@pytest.mark.parametrize(("batch_size", "shared", "chunk"), [(1, True, 16), (3, True, 16), (16, True, 16),
                                                             (16, True, 2), (3, False, 16)])
def test_batched_equals_sequential_on_tiny_model(tiny, batch_size: int, shared: bool, chunk: int) -> None:
    model, tok = tiny
    inputs = ["hi", "Where is my new card? I ordered it two weeks ago and nothing yet.", "refund please",
              "What is the exchange rate for euros to pounds today?", "x", "Can I top up by bank transfer?"]
    prompts = _chats(inputs)
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=10)
    fast = generation.generate(model, tok, prompts, max_new_tokens=10, batch_size=batch_size,
                               shared_attention=shared, prefill_chunk=chunk)
    assert [g.text for g in fast] == [g.text for g in ref]
    assert [g.output_tokens for g in fast] == [g.output_tokens for g in ref]
    assert [g.prompt_tokens for g in fast] == [g.prompt_tokens for g in ref]


def test_shared_prefix_attention_is_used_for_llama(tiny) -> None:
    import torch

    model, tok = tiny
    ids = generation.chat_ids(tok, _chats(["a"])[0])
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), use_cache=True)
    shared = generation._shared_prefix_kv(model, out.cache)
    assert shared is not None and len(shared) == model.config.num_hidden_layers
    assert shared[0][0].shape[1] == len(ids)  # (kv_heads, prefix_len, dim)
    assert model.config._attn_implementation in ("sdpa", "eager")  # switched only inside a batch


def test_identical_prompts_and_empty_input(tiny) -> None:
    model, tok = tiny
    prompts = _chats(["same", "same"])
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=5)
    assert [g.text for g in generation.generate(model, tok, prompts, max_new_tokens=5)] == [g.text for g in ref]
    assert generation.generate(model, tok, [], max_new_tokens=5) == []


def test_progress_events(tiny) -> None:
    model, tok = tiny
    events = []
    generation.generate(model, tok, _chats(["a", "b", "c"]), max_new_tokens=2, batch_size=2,
                        on_progress=events.append)
    assert [(e.step, e.total) for e in events] == [(2, 3), (3, 3)]


@pytest.mark.real_model
def test_batched_equals_sequential_on_real_model(real_model_dir: Path, banking77: Path) -> None:
    """Five banking77 shots (about 750 prompt tokens), a few test rows: same greedy predictions."""
    from tools import models

    model, tok = models.load_cached(str(real_model_dir), device="cpu")
    with (banking77 / "train.csv").open() as f:
        train = list(csv.DictReader(f))
    with (banking77 / "test.csv").open() as f:
        test = list(csv.DictReader(f))[::600][:4]
    shots: list[dict[str, str]] = []
    for r in train[::2000][:5]:
        shots += [{"role": "user", "content": r["text"]}, {"role": "assistant", "content": r["category"]}]
    system = "Classify the customer's banking question. Answer with the category label only."
    prompts = [[{"role": "system", "content": system}, *shots, {"role": "user", "content": r["text"]}]
               for r in test]
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=12)
    fast = generation.generate(model, tok, prompts, max_new_tokens=12, batch_size=4)
    assert [g.text for g in fast] == [g.text for g in ref]


def test_near_ties_are_recomputed_on_the_reference_path(tiny) -> None:
    model, tok = tiny
    prompts = _chats(["one", "two two", "three three three"])
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=6)
    every = generation.generate(model, tok, prompts, max_new_tokens=6, tie_tolerance=float("inf"))
    none = generation.generate(model, tok, prompts, max_new_tokens=6, tie_tolerance=0.0)
    assert all(g.recomputed for g in every) and not any(g.recomputed for g in none)
    assert [g.text for g in every] == [g.text for g in none] == [g.text for g in ref]


@pytest.mark.parametrize(("shared", "chunk"), [(True, 16), (True, 2), (False, 16)])
def test_rows_that_stop_early_leave_the_batch(tiny_model_dir: Path, shared: bool, chunk: int) -> None:
    """A random model with large weights (diverse outputs) and one of its frequent tokens as EOS, so rows
    finish at different steps and leave the batch."""
    import torch
    from transformers import AutoTokenizer

    from tests._tiny import tiny_llama

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = tiny_llama(tok, seed=1, initializer_range=0.5)
    prompts = _chats(["alpha", "beta gamma", "delta", "a much longer question about cards and refunds", "z"])
    first = generation.chat_ids(tok, prompts[0])
    with torch.inference_mode():
        raw = model.generate(torch.tensor([first]), attention_mask=torch.ones(1, len(first), dtype=torch.long),
                             max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    tok.eos_token = tok.convert_ids_to_tokens(raw[0, len(first) + 2].item())  # the first reply's third token
    tok.pad_token = tok.eos_token
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=8)
    assert len({g.output_tokens for g in ref}) > 1  # rows really stop at different steps
    fast = generation.generate(model, tok, prompts, max_new_tokens=8, batch_size=5, shared_attention=shared,
                               prefill_chunk=chunk)
    assert [g.text for g in fast] == [g.text for g in ref]
    assert [g.output_tokens for g in fast] == [g.output_tokens for g in ref]


def test_first_tie_is_where_the_reference_path_takes_over() -> None:
    # scale is the running max of |top logit| (at least 1): step 2's gap 0.5 < 0.1 * 10 is the first near tie
    assert generation._first_tie([5.0, 3.0, 0.5, 0.0], [2.0, 10.0, 10.0, 10.0], 0.1) == 2
    assert generation._first_tie([5.0, 3.0], [2.0, 10.0], 0.1) is None
    assert generation._first_tie([0.05], [0.5], 0.1) == 0  # scale never below 1


def test_a_tie_midway_keeps_the_tokens_before_it(tiny) -> None:
    """Rows whose first near tie comes after some steps: the reference path continues from the kept tokens,
    and the outputs still equal the reference's."""
    model, tok = tiny
    prompts = _chats(["alpha", "beta beta", "gamma gamma gamma", "delta"])
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=12)
    # a tolerance that catches some steps but not the first ones of every row
    for tol in (1e-3, 1e-2, 5e-2):
        fast = generation.generate(model, tok, prompts, max_new_tokens=12, tie_tolerance=tol)
        assert [g.text for g in fast] == [g.text for g in ref]
