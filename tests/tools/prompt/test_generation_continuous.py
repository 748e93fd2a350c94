"""Continuous batching in ``generate``: rows join and leave the running batch, near ties are resolved by a batch-1
reference run up to the tie and the row goes on in the batch. Every case must give ``generate_sequential``'s predictions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tools import generation

INPUTS = ["hi", "Where is my new card? I ordered it two weeks ago and nothing has arrived, please help me out.",
          "refund", "What is the exchange rate for euros to pounds today, and is there a fee for it?", "x",
          "Can I top up by bank transfer?", "ok", "My card payment was declined twice at the same shop, why?", "thanks"]


def _chats(inputs: list[str]) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": t}] for t in inputs]


@pytest.fixture(scope="module")
def diverse(tiny_model_dir: Path):
    """A random model with large weights (its greedy replies vary from prompt to prompt) whose EOS is the first
    token of one reply and a frequent token elsewhere: rows stop at step 0, midway, or run to the limit."""
    from transformers import AutoTokenizer

    from tests._tiny import tiny_llama

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = tiny_llama(tok, seed=1, initializer_range=0.5)
    replies = generation.generate_sequential(model, tok, _chats(INPUTS), max_new_tokens=12)
    # Both EOS and pad stop a row: EOS is the third reply's first token, pad the most frequent token after the
    # first in the other replies (the test below checks that rows then stop at different steps).
    eos = replies[2].token_ids[0]
    later = [t for g in replies for t in g.token_ids[1:] if t != eos]
    tok = copy.deepcopy(tok)
    tok.eos_token = tok.convert_ids_to_tokens(eos)
    tok.pad_token = tok.convert_ids_to_tokens(max(set(later), key=later.count))
    return model, tok


def _decisions(gens: list[generation.Generation], max_new_tokens: int) -> int:
    """Token choices made: one per output token, plus the EOS of each row that stopped before the limit."""
    return sum(g.output_tokens + (g.output_tokens < max_new_tokens) for g in gens)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("batch_size", [2, 3, 16])
@pytest.mark.parametrize("tol", [0.0, 1e-2, float("inf")])
def test_continuous_batching_equals_sequential(diverse, shared: bool, batch_size: int, tol: float) -> None:
    model, tok = diverse
    prompts = _chats(INPUTS)
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=12)
    lens = [g.output_tokens for g in ref]
    assert 0 in lens and 12 in lens and len(set(lens)) >= 3  # EOS at step 0, midway, and rows that hit the limit
    stats = generation.GenerationStats()
    fast = generation.generate(model, tok, prompts, max_new_tokens=12, batch_size=batch_size, tie_tolerance=tol,
                               shared_attention=shared, stats=stats)
    assert [g.token_ids for g in fast] == [g.token_ids for g in ref]
    assert [g.text for g in fast] == [g.text for g in ref]
    assert [g.output_tokens for g in fast] == lens
    assert stats.shared_attention is shared and stats.rows == len(prompts)
    if batch_size < len(prompts):
        assert stats.joins > 1  # waiting prompts joined the running batch as rows left
    assert stats.row_steps == sum(lens) - sum(n == 12 for n in lens)  # the last token needs no forward
    if tol == float("inf"):  # every choice is a near tie: all decided by the reference path
        assert stats.tie_resolutions == _decisions(ref, 12) and all(g.recomputed for g in fast)
    if tol == 0.0:
        assert stats.tie_resolutions == 0 and not any(g.recomputed for g in fast)
    assert stats.recomputed_rows == sum(g.recomputed for g in fast)


def test_near_ties_are_decided_by_the_reference_forward(diverse, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage the batched logits after every step: swap each row's top two and leave them 1e-6 apart. The
    default tolerance sees near ties everywhere, the reference path decides, and the outputs stay the
    reference's; with the check off (tolerance 0) the sabotage shows in the outputs (the test can fail)."""
    model, tok = diverse
    prompts = _chats(INPUTS[:5])
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=8)
    real_step = generation._ContinuousBatch._step

    def sabotaged(self, tokens):  # type: ignore[no-untyped-def]
        real_step(self, tokens)
        top = self.logits.topk(2, dim=-1)
        rows = range(self.logits.shape[0])
        logits = self.logits.clone()
        logits[rows, top.indices[:, 1]] = top.values[:, 0]
        logits[rows, top.indices[:, 0]] = top.values[:, 0] - 1e-6
        self.logits = logits

    monkeypatch.setattr(generation._ContinuousBatch, "_step", sabotaged)
    stats = generation.GenerationStats()
    fast = generation.generate(model, tok, prompts, max_new_tokens=8, batch_size=2, stats=stats)
    assert [g.token_ids for g in fast] == [g.token_ids for g in ref]
    assert stats.tie_changed > 0 and stats.tie_resolutions >= stats.tie_changed
    off = generation.generate(model, tok, prompts, max_new_tokens=8, batch_size=2, tie_tolerance=0.0)
    assert [g.token_ids for g in off] != [g.token_ids for g in ref]


def test_growing_cache_writes_in_place_and_keeps_rows(tiny) -> None:
    import torch

    model, _ = tiny
    cfg = model.config
    h, d = cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    k0, v0 = torch.randn(3, h, 4, d), torch.randn(3, h, 4, d)
    cache = generation._growing_cache(model, [(k0, v0)] * cfg.num_hidden_layers, room=2)
    ly = cache.layers[0]
    steps = [torch.randn(3, h, 1, d) for _ in range(5)]  # more than the room: it must grow
    for s in steps:
        keys, values = ly.update(s, s + 1)
    assert torch.equal(keys, torch.cat([k0, *steps], dim=2)) and torch.equal(values, torch.cat([v0, *[s + 1 for s in steps]], dim=2))
    assert cache.layers[1].get_seq_length() == 4  # other layers untouched
    ly.batch_select_indices(torch.tensor([0, 2]))
    ly.drop_front(3)
    assert torch.equal(ly.keys, torch.cat([k0, *steps], dim=2)[[0, 2], :, 3:])
    assert ly.get_seq_length() == 6


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from tools import models

    return models.load_model(str(tiny_model_dir), device="cpu")


def test_shared_attention_is_chosen_by_prefix_length() -> None:
    # banking77 with five shots: a long prefix, short rows -> share; MBPP: the system prompt only -> plain sdpa
    assert generation.prefer_shared_attention(750, [20, 35], 32)
    assert not generation.prefer_shared_attention(29, [40, 126], 256)


def test_stats_to_dict(diverse) -> None:
    model, tok = diverse
    stats = generation.GenerationStats()
    gens = generation.generate(model, tok, _chats(INPUTS[:4]), max_new_tokens=4, batch_size=2, stats=stats)
    doc = json.loads(json.dumps(stats.to_dict()))
    assert doc["rows"] == 4 and doc["joins"] >= 2 and doc["decode_steps"] > 0 and doc["prefix_tokens"] > 0
    assert all(g.latency_ms > 0 for g in gens)


@pytest.mark.real_model
def test_mbpp_programs_equal_sequential_on_real_model(real_model_dir: Path) -> None:
    """Code generation (MBPP prompts, 48 tokens) with more prompts than places in the batch."""
    from tools import models

    path = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mbpp" / "mbpp.jsonl"
    if not path.exists():
        pytest.skip(f"mbpp not found at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines()[10:14]]
    prompts = [[{"role": "system", "content": "You are an expert Python programmer."},
                {"role": "user", "content": f"{r['text']}\nYour code should pass this test:\n{r['test_list'][0]}"}]
               for r in rows]
    model, tok = models.load_cached(str(real_model_dir), device="cpu")
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=48)
    stats = generation.GenerationStats()
    fast = generation.generate(model, tok, prompts, max_new_tokens=48, batch_size=3, stats=stats)
    assert [g.token_ids for g in fast] == [g.token_ids for g in ref]
    assert stats.joins >= 2 and not stats.shared_attention


def test_prefill_groups_keep_similar_lengths_together() -> None:
    # sorted by length; a new group at more than 1.25x the group's shortest, or when the group is full
    assert generation._length_groups([50, 10, 12, 11, 100, 13], 16) == [[1, 3, 2], [5], [0], [4]]
    assert generation._length_groups([10, 10, 10], 2) == [[0, 1], [2]]
    assert generation._length_groups([], 4) == []


@pytest.mark.parametrize("kept", [16, 1])
def test_a_rows_reference_is_kept_between_its_near_ties(diverse, monkeypatch: pytest.MonkeyPatch, kept: int) -> None:
    """Every step a near tie (tolerance inf): each row's reference path is advanced from its last tie, never
    restarted from the prompt (the one-shot reference is not called at all), and the outputs are still the
    reference's, also when only one row may keep its reference and the others start again at each tie."""
    model, tok = diverse
    prompts = _chats(INPUTS[:6])
    ref = generation.generate_sequential(model, tok, prompts, max_new_tokens=10)
    calls = {"one_shot": 0, "steps": 0}
    real_tokens_to = generation._Reference.tokens_to

    def counted(self, reply, step):  # type: ignore[no-untyped-def]
        before = len(self.tokens)
        out = real_tokens_to(self, reply, step)
        calls["steps"] += len(self.tokens) - before
        return out

    def one_shot(*a, **k):  # type: ignore[no-untyped-def]
        calls["one_shot"] += 1
        raise AssertionError("a consistent row never needs the reference from scratch")

    monkeypatch.setattr(generation._Reference, "tokens_to", counted)
    monkeypatch.setattr(generation, "_sequential_one", one_shot)
    monkeypatch.setattr(generation, "KEPT_REFERENCES", kept)
    stats = generation.GenerationStats()
    fast = generation.generate(model, tok, prompts, max_new_tokens=10, batch_size=3, tie_tolerance=float("inf"),
                               stats=stats)
    assert [g.token_ids for g in fast] == [g.token_ids for g in ref]
    assert calls["one_shot"] == 0 and stats.tie_resolutions == _decisions(ref, 10)
    if kept >= 3:  # every running row keeps its reference: one reference step per decision, nothing recomputed
        assert calls["steps"] == stats.tie_resolutions
    else:  # rows start again from their prompt after another row took the one place: more steps
        assert calls["steps"] > stats.tie_resolutions
