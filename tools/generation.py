"""Text generation from chat messages with a local model.

``generate`` is the one entry point used by prompt evaluation, model evaluation and the forgetting check.
``generate_sequential`` is the plain reference path (one example at a time, greedy, ``model.generate``);
``generate`` is the fast path (continuous batching, shared-prefix KV cache reused) and must give the same
predictions (its docstring says how far that is guaranteed).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tools.types import ProgressCallback, ProgressEvent, emit

Chat = Sequence[dict[str, str]]


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    output_tokens: int
    latency_ms: float
    recomputed: bool = False  # the fast path met a near tie: that step's token came from the reference path
    token_ids: list[int] = field(default_factory=list, repr=False)  # the reply's tokens


def chat_ids(tokenizer: Any, messages: Chat) -> list[int]:
    """Token ids of the messages rendered with the model's chat template, ready for the assistant's reply."""
    out = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True,
                                        return_dict=True)
    return list(out["input_ids"])


def generate_sequential(model: Any, tokenizer: Any, prompts: Sequence[Chat], *, max_new_tokens: int = 32,
                        on_progress: ProgressCallback | None = None) -> list[Generation]:
    """The reference path: one prompt at a time, greedy, no cache reuse between prompts."""
    results: list[Generation] = []
    device = next(model.parameters()).device
    for i, msgs in enumerate(prompts):
        results.append(_sequential_one(model, tokenizer, chat_ids(tokenizer, msgs), max_new_tokens, device))
        emit(on_progress, ProgressEvent("generate", i + 1, len(prompts)))
    return results


def _sequential_one(model: Any, tokenizer: Any, ids: list[int], max_new_tokens: int, device: Any) -> Generation:
    import torch

    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids),
                             dtype=torch.long, device=device), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)
    new = _cut_at_eos(out[0, len(ids):].tolist(), tokenizer)
    return Generation(tokenizer.decode(new, skip_special_tokens=True).strip(), len(ids), len(new),
                      (time.perf_counter() - t0) * 1000, token_ids=new)


def _first_tie(gaps: list[float], tops: list[float], rel_tol: float) -> int | None:
    """The first step whose top-2 gap is below ``rel_tol`` times the largest top logit seen so far, or None."""
    scale = 1.0
    for step, (g, t) in enumerate(zip(gaps, tops, strict=True)):
        scale = max(scale, t)
        if g < rel_tol * scale:
            return step
    return None


def _cut_at_eos(ids: list[int], tokenizer: Any) -> list[int]:
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    for j, t in enumerate(ids):
        if t in stops:
            return ids[:j]
    return ids


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by every sequence."""
    if not seqs:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs)
    for j in range(n):
        t = first[j]
        if any(s[j] != t for s in seqs):
            return j
    return n


def cache_kwarg(model: Any) -> str:
    """transformers 5 renamed ``past_key_values`` to ``cache``; use whichever this model's forward takes."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _out_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


@dataclass
class GenerationStats:
    """Where ``generate``'s time went; pass one in to have it filled (the benchmarks' per-phase breakdown)."""

    rows: int = 0
    batch_size: int = 0
    prefix_tokens: int = 0  # the prompts' common token prefix, run through the model once
    shared_attention: bool = False  # every row reads the one copy of the prefix's keys/values (else a copy per row)
    prefix_s: float = 0.0
    prefill_s: float = 0.0  # the rows' own prompt tokens after the prefix
    joins: int = 0  # how many times rows joined the running batch (the first fill included)
    decode_s: float = 0.0  # the batched one-token steps
    decode_steps: int = 0
    row_steps: int = 0  # rows summed over decode steps: the forwards the one-at-a-time path would run
    tie_resolutions: int = 0  # steps decided by the reference path because the batched top-2 margin was too small
    tie_changed: int = 0  # resolutions whose token differs from the batched argmax
    tie_s: float = 0.0
    reference_mismatches: int = 0  # resolutions that found an earlier token not the reference's (none expected)
    recomputed_rows: int = 0
    sequential_fallback: bool = False  # no common prefix: the reference path ran instead

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def prefer_shared_attention(prefix_len: int, own_lens: Sequence[int], max_new_tokens: int) -> bool:
    """Whether the rows should read one shared copy of the prefix's keys/values rather than each its own copy.

    Sharing saves memory and bandwidth in proportion to the prefix, but its attention runs as a few separate
    einsums instead of one fused ``sdpa`` call. It pays when the prefix is at least as long as a row's own
    tokens (banking77 with five shots: about 750 prefix tokens against 30 + 32); with a short prefix (MBPP:
    29 tokens of system prompt against up to 126 + 256) the plain path is faster. Measured on SmolLM2, one
    decode step of 24 rows, 1 CPU thread: 215 ms plain against 240 ms shared with 300 own tokens per row,
    about equal (212 / 201 ms) with 100.
    """
    return prefix_len >= max(own_lens, default=0) + max_new_tokens


def generate(model: Any, tokenizer: Any, prompts: Sequence[Chat], *, max_new_tokens: int = 32,
             batch_size: int = 128, on_progress: ProgressCallback | None = None,
             tie_tolerance: float | None = None, shared_attention: bool | None = None, prefill_chunk: int = 16,
             stats: GenerationStats | None = None) -> list[Generation]:
    """Greedy generation for a list of chats: batched, with the shared prefix encoded once.

    The prompts of an evaluation share their system message and few-shot pairs, which are most of the tokens
    (about 750 of 780 for banking77 with 5 shots). So:

    1. the longest token prefix common to every prompt runs through the model once, giving a KV cache;
    2. the rows run in one batch of up to ``batch_size`` (they join shortest first, prefilled in groups of
       similar length, so little padding); only their suffixes are computed: ``prefix | pad... | suffix``. The attention mask is 1 over the prefix, 0 over the
       padding, 1 over the suffix, and position ids continue from the prefix length for the real tokens, so
       each row sees exactly what it would see alone. With ``shared_attention`` (default: when the prefix is
       longer than a row's own tokens, ``prefer_shared_attention``) every row reads the one copy of the
       prefix's keys/values instead of its own copy;
    3. greedy decoding, one token per step for the whole batch (continuous batching): a row leaves at its
       first EOS (or pad) token or at ``max_new_tokens``, and waiting prompts take the free places, each
       row with its own mask and positions.

    Predictions equal ``generate_sequential``'s, in this sense. Batching changes the shapes of the matrix
    products, so the logits differ from the reference's by float rounding (about 1e-5 in fp32). That moves
    the argmax only where the top two logits are nearly tied, which does happen (banking77 has label pairs
    such as ``get_card_by_name``/``..._number`` at 1.5e-5 apart; a 256-token program meets one in about one
    row of eight). So at every step of every row the top-2 margin is checked against ``tie_tolerance`` times
    the largest top logit the row has seen (default 3e-5 in fp32, 1e-2 in half precision: 25x the rounding
    measured on SmolLM2):

    - above it, the batched argmax is the reference's (the rounding cannot reorder the top two);
    - below it (a near tie), the step's token is the reference's own: ``generate_sequential``'s computation
      for that prompt (batch 1, the prompt's prefill, then one token at a time) runs up to this step, and
      its token is taken. The row then goes on in the batch, still checked at every step
      (``Generation.recomputed`` says it happened). A cheaper resolution, one batch-1 forward over the prompt
      and the reply so far, is not enough: it rounds differently from the reference's token-by-token cache,
      and on banking77 it picks ``get_card_by_number`` where the reference says ``..._name`` (1.3e-5 apart).
      The resolution also checks that the reference's earlier tokens are the row's; if not, the row takes
      the reference's whole reply (``GenerationStats.reference_mismatches``; none has been seen).

    So every token is the reference's, provided the batched logits are within half the tolerance of the
    reference's wherever the margin was above it (the measured rounding is 25x smaller). A near tie costs
    the reference's work up to that step, so long replies with many ties gain less.

    ``latency_ms`` of each result is its share of the wall time (each step's time split over the rows in
    it, plus its own prefill and tie resolutions and a share of the prefix): the throughput view;
    single-request latency needs ``generate_sequential``. Without a shared prefix it falls back to the
    sequential path.
    """
    import torch

    if not prompts:
        return []
    all_ids = [chat_ids(tokenizer, m) for m in prompts]
    n = len(all_ids)
    st = stats if stats is not None else GenerationStats()
    st.rows, st.batch_size = n, max(1, int(batch_size))
    # Keep at least one token per prompt outside the prefix: its logits start the reply.
    plen = min(common_prefix_len(all_ids), min(len(s) for s in all_ids) - 1)
    if plen <= 0:
        st.sequential_fallback = True
        return generate_sequential(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                   on_progress=on_progress)
    # Rounding differences scale with the logits' magnitude: measured on SmolLM2 in fp32, about 4e-5 at
    # logits near 32 (1.2e-6 relative); the default keeps a 25x safety factor. Half precision rounds ~1e4x worse.
    rel_tol = tie_tolerance if tie_tolerance is not None else (
        3e-5 if next(model.parameters()).dtype == torch.float32 else 1e-2)
    if shared_attention is None:
        shared_attention = prefer_shared_attention(plen, [len(s) - plen for s in all_ids], max_new_tokens)
    st.prefix_tokens = plen
    t0 = time.perf_counter()
    with torch.inference_mode():
        device = next(model.parameters()).device
        pre = model(input_ids=torch.tensor([all_ids[0][:plen]], device=device), use_cache=True,
                    logits_to_keep=1)
        prefix_cache = _out_cache(pre)
        shared = _shared_prefix_kv(model, prefix_cache) if shared_attention else None
        st.shared_attention = shared is not None
        st.prefix_s = time.perf_counter() - t0
        decoder = _ContinuousBatch(model, tokenizer, all_ids, plen, prefix_cache, shared, rel_tol=rel_tol,
                                   max_new_tokens=max_new_tokens, batch_size=st.batch_size,
                                   chunk=max(1, int(prefill_chunk)), stats=st, on_progress=on_progress)
        results = decoder.run(sorted(range(n), key=lambda i: len(all_ids[i])))
    st.recomputed_rows = sum(g.recomputed for g in results)
    return results


class _ContinuousBatch:
    """The running batch of ``generate``: rows join (prefill), step together, and leave at EOS.

    Its state is one KV cache over the rows' own tokens (left-padded to a common width), the attention mask
    (rows x width), each row's next position, and the logits each row's next token is chosen from.
    """

    def __init__(self, model: Any, tokenizer: Any, all_ids: list[list[int]], plen: int, prefix_cache: Any,
                 shared: list[tuple[Any, Any]] | None, *, rel_tol: float, max_new_tokens: int, batch_size: int,
                 chunk: int, stats: GenerationStats, on_progress: ProgressCallback | None) -> None:
        self.model, self.tokenizer, self.all_ids, self.plen = model, tokenizer, all_ids, plen
        self.prefix_cache, self.shared, self.rel_tol = prefix_cache, shared, rel_tol
        self.max_new_tokens, self.batch_size, self.chunk = max_new_tokens, batch_size, chunk
        self.stats, self.on_progress = stats, on_progress
        self.device = next(model.parameters()).device
        self.cache_kw = cache_kwarg(model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        self.extra = {"tw_shared_prefix": shared} if shared is not None else {}
        n = len(all_ids)
        self.outs: list[list[int]] = [[] for _ in range(n)]
        self.scale = [1.0] * n  # per row: the largest |top logit| so far (the size of the rounding), at least 1
        self.cost_s = [stats.prefix_s / n] * n  # per row: its share of the wall time
        self.recomputed = [False] * n
        self.refs: dict[int, _Reference] = {}  # rows that met a near tie: their reference path so far
        self.results: list[Generation | None] = [None] * n
        self.done = 0
        self.rows: list[int] = []  # batch position -> prompt index
        self.cache: Any = None
        self.mask: Any = None
        self.pos: Any = None
        self.logits: Any = None

    def run(self, order: list[int]) -> list[Generation]:
        from collections import deque

        pending = deque(order)
        # Join waiting prompts in groups (one prefill and one cache merge per group), not one by one.
        group = max(1, self.batch_size // 4)
        while pending or self.rows:
            free = self.batch_size - len(self.rows)
            if pending and free > 0 and (not self.rows or free >= min(group, len(pending))):
                self._join([pending.popleft() for _ in range(min(free, len(pending)))])
            tokens = self._choose()
            if self.rows:
                self._step(tokens)
        return [r for r in self.results if r is not None]

    def _attention(self) -> _attn_implementation:
        return _attn_implementation(self.model, _SHARED_ATTN if self.shared is not None else None)

    def _join(self, new: list[int]) -> None:
        """Prefill the new rows' suffixes (in chunks of similar length) and merge them into the running batch."""
        import copy

        import torch
        from transformers import DynamicCache

        t0 = time.perf_counter()
        parts = []
        if self.rows:
            parts.append((self.logits, [(ly.keys, ly.values) for ly in self.cache.layers], self.mask, self.pos))
        joined: list[int] = []  # the new rows in the order of their parts
        for group in _length_groups([len(self.all_ids[i]) for i in new], self.chunk):
            joined += [new[g] for g in group]
            suffixes = [self.all_ids[new[g]][self.plen:] for g in group]
            if self.shared is not None:
                inp, mask, pos = _left_pad(suffixes, self.plen, 0, self.pad_id, self.device)
                cache = DynamicCache(config=self.model.config)
            else:
                inp, mask, pos = _left_pad(suffixes, self.plen, self.plen, self.pad_id, self.device)
                cache = copy.deepcopy(self.prefix_cache)
                if len(suffixes) > 1:
                    cache.batch_repeat_interleave(len(suffixes))
            with self._attention():
                out = self.model(input_ids=inp, attention_mask=mask, position_ids=pos, use_cache=True,
                                 logits_to_keep=1, **{self.cache_kw: cache}, **self.extra)
            parts.append((out.logits[:, -1, :], [(ly.keys, ly.values) for ly in _out_cache(out).layers], mask,
                          pos[:, -1:] + 1))
        width = max(p[2].shape[1] for p in parts)

        def pad(t: Any) -> Any:  # left-pad the sequence dimension (dim 2 of keys/values) to ``width``
            return torch.nn.functional.pad(t, (0, 0, width - t.shape[2], 0))

        kvs = [(torch.cat([pad(p[1][li][0]) for p in parts]), torch.cat([pad(p[1][li][1]) for p in parts]))
               for li in range(len(parts[0][1]))]
        self.cache = _growing_cache(self.model, kvs, room=self.max_new_tokens + 1)
        self.mask = torch.cat([torch.nn.functional.pad(p[2], (width - p[2].shape[1], 0)) for p in parts])
        self.pos = torch.cat([p[3] for p in parts])
        self.logits = torch.cat([p[0] for p in parts])
        self.rows = self.rows + joined
        dt = time.perf_counter() - t0
        for i in new:
            self.cost_s[i] += dt / len(new)
        self.stats.prefill_s += dt
        self.stats.joins += 1

    def _choose(self) -> list[int]:
        """Each row's token from its logits (a near tie is resolved the reference's way); rows that stop leave."""
        import torch

        top = self.logits.float().topk(2, dim=-1)
        tokens = top.indices[:, 0].tolist()
        gaps = (top.values[:, 0] - top.values[:, 1]).tolist()
        tops = top.values[:, 0].abs().tolist()
        keep: list[int] = []
        nxt: list[int] = []
        for j, i in enumerate(self.rows):
            self.scale[i] = max(self.scale[i], tops[j])
            t = tokens[j]
            if gaps[j] < self.rel_tol * self.scale[i]:
                resolved = self._resolve(i, t)
                if resolved is None:  # the row now holds the reference's whole reply
                    self._finish(i)
                    continue
                t = resolved
            stop = t in self.stops or t < 0
            if not stop:
                self.outs[i].append(t)
            if stop or len(self.outs[i]) >= self.max_new_tokens:
                self._finish(i)
            else:
                keep.append(j)
                nxt.append(t)
        if len(keep) < len(self.rows):
            emit(self.on_progress, ProgressEvent("generate", self.done, len(self.results)))
            self.rows = [self.rows[j] for j in keep]
            if keep:
                idx = torch.tensor(keep, device=self.device)
                self.cache.batch_select_indices(idx)
                self.mask, self.pos = self.mask[idx], self.pos[idx]
                # Columns that no remaining row attends to (padding of rows that left) are dropped.
                lead = int(self.mask.any(dim=0).int().argmax())
                if lead > 0:
                    self.mask = self.mask[:, lead:]
                    for ly in self.cache.layers:
                        ly.drop_front(lead)
        return nxt

    def _resolve(self, i: int, batched: int) -> int | None:
        """The token at a near tie, from the reference path itself: ``generate_sequential``'s computation for
        this prompt, run up to this step (batch 1, the prompt's prefill then one token at a time). Its tokens
        before this step must be the row's; if they are not (an earlier clear margin was not clear enough),
        the row takes the reference's whole reply and ``None`` says it is finished. A stop token (EOS) comes
        back as -1.

        The reference's state is kept for the row's next tie (``_Reference``): a second tie costs the steps
        since the first, not the prompt's prefill and every step again (a long reply meets several)."""
        t0 = time.perf_counter()
        step = len(self.outs[i])
        ref = self._reference_tokens(i, step)
        t: int | None
        if ref[:step] != self.outs[i]:
            self.outs[i] = _sequential_one(self.model, self.tokenizer, self.all_ids[i], self.max_new_tokens,
                                           self.device).token_ids
            self.stats.reference_mismatches += 1
            t = None
        else:
            t = ref[step] if len(ref) > step else -1
        dt = time.perf_counter() - t0
        self.recomputed[i] = True
        self.cost_s[i] += dt
        self.stats.tie_resolutions += 1
        self.stats.tie_changed += int(t != batched and not (t == -1 and batched in self.stops))
        self.stats.tie_s += dt
        return t

    def _reference_tokens(self, i: int, step: int) -> list[int]:
        """The reference's tokens for row ``i`` up to ``step``: from its kept state, or from the prompt when the
        kept state does not match the row (then the caller sees the mismatch)."""
        ref = self._reference(i).tokens_to(self.outs[i], step)
        if ref is None:  # the reference's earlier tokens are not the row's
            self.refs.pop(i, None)
            ref = _sequential_one(self.model, self.tokenizer, self.all_ids[i], step + 1, self.device).token_ids
        return ref

    def _reference(self, i: int) -> _Reference:
        """Row ``i``'s kept reference path (at most ``KEPT_REFERENCES`` rows keep one: the least recently used
        one is dropped, and starts again from its prompt at its next tie)."""
        ref = self.refs.pop(i, None) or _Reference(self.model, self.tokenizer, self.all_ids[i], self.device)
        self.refs[i] = ref  # most recently used last
        while len(self.refs) > KEPT_REFERENCES:
            self.refs.pop(next(iter(self.refs)))
        return ref

    def _finish(self, i: int) -> None:
        self.refs.pop(i, None)
        new = self.outs[i]
        self.results[i] = Generation(self.tokenizer.decode(new, skip_special_tokens=True).strip(),
                                     len(self.all_ids[i]), len(new), self.cost_s[i] * 1000,
                                     recomputed=self.recomputed[i], token_ids=list(new))
        self.done += 1

    def _step(self, tokens: list[int]) -> None:
        """One batched forward: each row's chosen token at its own next position."""
        import torch

        t0 = time.perf_counter()
        b = len(self.rows)
        self.mask = torch.cat([self.mask, torch.ones((b, 1), dtype=self.mask.dtype, device=self.device)], dim=1)
        with self._attention():
            out = self.model(input_ids=torch.tensor(tokens, device=self.device)[:, None], attention_mask=self.mask,
                             position_ids=self.pos, use_cache=True, logits_to_keep=1,
                             **{self.cache_kw: self.cache}, **self.extra)
        self.logits = out.logits[:, -1, :]
        self.cache = _out_cache(out)
        self.pos = self.pos + 1
        dt = time.perf_counter() - t0
        for i in self.rows:
            self.cost_s[i] += dt / b
        self.stats.decode_s += dt
        self.stats.decode_steps += 1
        self.stats.row_steps += b


KEPT_REFERENCES = 16  # rows whose reference path is kept between near ties (a batch-1 KV cache each)


class _Reference:
    """One prompt's ``generate_sequential`` computation, advanced step by step and kept between near ties.

    The reference is Hugging Face's greedy ``generate`` on the prompt alone: a prefill of the prompt, then one
    token at a time through its cache. Here each step is one ``generate(max_new_tokens=1)`` call on the prompt
    and the reply so far with the kept cache, which feeds only the one token the cache lacks: the same
    forward, with the same shapes, as the reference's own loop, so the same logits and the same token."""

    def __init__(self, model: Any, tokenizer: Any, ids: list[int], device: Any) -> None:
        from transformers import DynamicCache

        self.model, self.tokenizer, self.ids, self.device = model, tokenizer, ids, device
        self.cache = DynamicCache(config=model.config)
        self.tokens: list[int] = []  # the reference's token at each step computed so far
        self.stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}

    def tokens_to(self, reply: list[int], step: int) -> list[int] | None:
        """The reference's tokens for steps 0..``step``, the reply's tokens fed in between (as the reference
        would have fed its own); None when one of them differs from the reply's, or the reference stopped."""
        import torch

        while len(self.tokens) <= step:
            j = len(self.tokens)
            if j and (self.tokens[j - 1] != reply[j - 1] or self.tokens[j - 1] in self.stops):
                return None
            seq = self.ids + reply[:j]
            with torch.inference_mode():
                out = self.model.generate(torch.tensor([seq], device=self.device),
                                          attention_mask=torch.ones(1, len(seq), dtype=torch.long,
                                                                    device=self.device),
                                          **{cache_kwarg(self.model): self.cache}, max_new_tokens=1, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
            self.tokens.append(int(out[0, -1]))
        if self.tokens[:step] != reply[:step]:
            return None
        return _cut_at_eos(self.tokens[: step + 1], self.tokenizer) if self.tokens[step] in self.stops \
            else self.tokens[: step + 1]


def _length_groups(lengths: list[int], most: int, slack: float = 1.25) -> list[list[int]]:
    """Indices of ``lengths`` in prefill groups: at most ``most`` each, and a new group when a length exceeds
    ``slack`` times the group's shortest, so left-padding wastes little compute (the prefill is compute-bound:
    every padded position costs as much as a real token)."""
    groups: list[list[int]] = []
    for j in sorted(range(len(lengths)), key=lambda j: lengths[j]):
        if groups and len(groups[-1]) < most and lengths[j] <= slack * lengths[groups[-1][0]]:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


_GROWING_LAYER: Any = None


def _growing_cache(model: Any, kvs: list[tuple[Any, Any]], room: int) -> Any:
    """A ``DynamicCache`` holding ``kvs`` (per layer: keys, values) whose layers have ``room`` spare positions:
    a step writes its keys/values in place, where ``DynamicLayer`` concatenates, copying the whole cache (rows
    x width x layers) at every step."""
    global _GROWING_LAYER
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if _GROWING_LAYER is None:
        class GrowingLayer(DynamicLayer):
            def __init__(self, keys: Any, values: Any, room: int) -> None:
                super().__init__()
                b, h, w, _ = keys.shape
                self._k = keys.new_empty((b, h, w + room, keys.shape[-1]))
                self._v = values.new_empty((b, h, w + room, values.shape[-1]))
                self._k[:, :, :w] = keys
                self._v[:, :, :w] = values
                self.n, self.device, self.is_initialized = w, keys.device, True
                self._view()

            def _view(self) -> None:
                self.keys, self.values = self._k[:, :, :self.n], self._v[:, :, :self.n]

            def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
                import torch

                m = self.n + key_states.shape[-2]
                if m > self._k.shape[2]:  # out of room: double it
                    grow = (0, 0, 0, max(m, 2 * self._k.shape[2]) - self._k.shape[2])
                    self._k = torch.nn.functional.pad(self._k, grow)
                    self._v = torch.nn.functional.pad(self._v, grow)
                self._k[:, :, self.n:m] = key_states
                self._v[:, :, self.n:m] = value_states
                self.n = m
                self._view()
                return self.keys, self.values

            def batch_select_indices(self, indices: Any) -> None:
                self._k, self._v = self._k[indices], self._v[indices]
                self._view()

            def drop_front(self, k: int) -> None:
                self._k, self._v, self.n = self._k[:, :, k:], self._v[:, :, k:], self.n - k
                self._view()

        _GROWING_LAYER = GrowingLayer
    cache = DynamicCache(config=model.config)
    cache.layers = [_GROWING_LAYER(k, v, room) for k, v in kvs]
    return cache


_SHARED_ATTN = "tunewise_shared_prefix"


def _shared_prefix_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                             scaling: float, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Attention over ``[shared prefix | this row's own keys]`` without copying the prefix for every row.

    ``query``: (batch, heads, q, dim); ``key``/``value``: the rows' own cache, (batch, kv_heads, k, dim);
    the prefix's keys/values, (kv_heads, prefix_len, dim), come in ``tw_shared_prefix`` (one pair per
    layer) and are visible to every query. ``attention_mask`` (additive, eager form) covers the rows' keys.
    """
    import torch

    pk, pv = kwargs["tw_shared_prefix"][module.layer_idx]
    b, h, q, d = query.shape
    hkv = key.shape[1]
    qg = query.reshape(b, hkv, h // hkv, q, d)  # grouped-query attention: heads share kv heads in groups
    sp = torch.einsum("bhgqd,hld->bhgql", qg, pk) * scaling
    so = torch.einsum("bhgqd,bhkd->bhgqk", qg, key) * scaling
    if attention_mask is not None:
        so = so + attention_mask[:, :, None, :, : so.shape[-1]]
    w = torch.cat([sp, so], dim=-1).softmax(dim=-1, dtype=torch.float32).to(query.dtype)
    plen = pk.shape[1]
    out = (torch.einsum("bhgql,hld->bhgqd", w[..., :plen], pv)
           + torch.einsum("bhgqk,bhkd->bhgqd", w[..., plen:], value))
    return out.reshape(b, h, q, d).transpose(1, 2).contiguous(), None


def _shared_prefix_kv(model: Any, prefix_cache: Any) -> list[tuple[Any, Any]] | None:
    """The prefix's per-layer (keys, values) without the batch dimension, when this model can use them.

    Needs a plain attention-based decoder (every layer a full-attention DynamicLayer) and transformers'
    attention registry; otherwise ``None``, and batches get an expanded copy of the prefix cache instead.
    """
    try:
        from transformers import AttentionInterface
        from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:
        return None
    layers = getattr(prefix_cache, "layers", None)
    if not layers or any(type(ly) is not DynamicLayer or isinstance(ly, DynamicSlidingWindowLayer)
                         for ly in layers):
        return None
    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return None
    AttentionInterface.register(_SHARED_ATTN, _shared_prefix_attention)
    AttentionMaskInterface.register(_SHARED_ATTN, eager_mask)
    return [(ly.keys[0], ly.values[0]) for ly in layers]


class _attn_implementation:  # noqa: N801 - used as a context manager
    """Switch a model's attention implementation for a block, and back."""

    def __init__(self, model: Any, name: str | None) -> None:
        self.config, self.name, self.old = model.config, name, None

    def __enter__(self) -> None:
        if self.name:
            self.old = self.config._attn_implementation
            self.config._attn_implementation = self.name

    def __exit__(self, *exc: object) -> None:
        if self.name:
            self.config._attn_implementation = self.old


def _left_pad(suffixes: list[list[int]], plen: int, mask_prefix: int, pad_id: int,
              device: Any) -> tuple[Any, Any, Any]:
    """Input ids, attention mask (``mask_prefix`` leading ones for a cached prefix) and position ids for
    left-padded suffixes that continue a prefix of ``plen`` tokens."""
    import torch

    b, s = len(suffixes), max(len(x) for x in suffixes)
    inp = torch.full((b, s), pad_id, dtype=torch.long)
    mask = torch.zeros((b, mask_prefix + s), dtype=torch.long)
    mask[:, :mask_prefix] = 1
    pos = torch.full((b, s), plen, dtype=torch.long)
    for r, suf in enumerate(suffixes):
        k = len(suf)
        inp[r, s - k:] = torch.tensor(suf)
        mask[r, mask_prefix + s - k:] = 1
        pos[r, s - k:] = torch.arange(plen, plen + k)
    return inp.to(device), mask.to(device), pos.to(device)


# ---------------------------------------------------------------------------------------------- choice mode

def label_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Chat], labels: Sequence[str], *,
                   chunk: int = 64, on_progress: ProgressCallback | None = None, trie: bool = True,
                   tree_tokens: int = 512) -> list[list[float]]:
    """Log-likelihood of each label as the whole assistant reply, for each prompt (lm-eval-harness's
    multiple-choice scoring).

    The token prefix every prompt shares (system message, few-shot pairs) runs through the model once. Rows
    then go in batches: their own suffixes are prefilled together (left-padded after the prefix, as in
    ``generate``). A label's score is the sum of its tokens' log-probabilities plus the end-of-turn token's,
    so a label that is a prefix of another ("card" / "card_arrival") does not win by stopping early.

    With ``trie`` (the default) every label of a row is scored in ONE forward over the labels' token trie:
    labels sharing leading tokens ("card_arrival", "card_linking") share those tokens' work, each trie node
    sees the row and its own ancestors only (a tree attention mask), and the row's cache is read in place, not
    copied per label. Rows go ``tree_tokens // trie nodes`` at a time. ``trie=False`` is the earlier path:
    every label continues from a copy of each row's cache, at most ``chunk`` (row, label) sequences per
    forward, right-padded. Both give the same scores up to float rounding (``tests``: same choices).
    """
    if trie:
        return _label_logprobs_trie(model, tokenizer, prompts, labels, tree_tokens=tree_tokens,
                                    on_progress=on_progress)
    return _label_logprobs_flat(model, tokenizer, prompts, labels, chunk=chunk, on_progress=on_progress)


def _label_seqs(tokenizer: Any, labels: Sequence[str]) -> list[list[int]]:
    """Each label's tokens as the reply, then the end-of-turn token."""
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [list(tokenizer(lab, add_special_tokens=False)["input_ids"]) + end for lab in labels]


@dataclass
class LabelTrie:
    """The labels' token trie, flattened for one forward: node ``i`` feeds ``tokens[i]`` at ``depth[i]`` after
    the row; ``ancestors[i]`` are the nodes it may attend to (itself included). A label's score reads the
    row's own next-token log-probabilities for its first token and node ``paths[label][j-1]``'s for its
    token ``j``. The last token of a label (the end of turn) is never fed: nothing is read after it."""

    tokens: list[int]
    depth: list[int]
    ancestors: list[list[int]]
    paths: list[list[int]]

    @classmethod
    def build(cls, seqs: Sequence[Sequence[int]]) -> LabelTrie:
        tokens: list[int] = []
        depth: list[int] = []
        ancestors: list[list[int]] = []
        node_of: dict[tuple[int, ...], int] = {}
        paths: list[list[int]] = []
        for seq in seqs:
            path: list[int] = []
            for j in range(len(seq) - 1):
                key = tuple(seq[: j + 1])
                if key not in node_of:
                    node_of[key] = len(tokens)
                    tokens.append(seq[j])
                    depth.append(j)
                    ancestors.append([*(ancestors[path[-1]] if path else []), len(tokens) - 1])
                path.append(node_of[key])
            paths.append(path)
        return cls(tokens, depth, ancestors, paths)


def _label_logprobs_trie(model: Any, tokenizer: Any, prompts: Sequence[Chat], labels: Sequence[str], *,
                         tree_tokens: int, on_progress: ProgressCallback | None) -> list[list[float]]:
    import copy

    import torch
    from transformers import DynamicCache

    if not prompts:
        return []
    device = next(model.parameters()).device
    cache_kw = cache_kwarg(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    seqs = _label_seqs(tokenizer, labels)
    tree = LabelTrie.build(seqs)
    t_nodes = len(tree.tokens)
    all_ids = [chat_ids(tokenizer, m) for m in prompts]
    plen = max(0, min(common_prefix_len(all_ids), min(len(s) for s in all_ids) - 1))
    rows_per_batch = max(1, tree_tokens // max(1, t_nodes))
    # trie edges below fed nodes: (node, next token), gathered from that node's logits
    edges = sorted({(path[j - 1], seq[j]) for seq, path in zip(seqs, tree.paths, strict=True)
                    for j in range(1, len(seq))})
    edge_at = {e: k for k, e in enumerate(edges)}
    width = max((len(seq) - 1 for seq in seqs), default=0)
    # per label, its edges' columns, padded with the extra zero column (index len(edges))
    label_edges_list = [[edge_at[(path[j - 1], seq[j])] for j in range(1, len(seq))] for seq, path in
                        zip(seqs, tree.paths, strict=True)]
    dtype = next(model.parameters()).dtype
    tree_mask = torch.full((t_nodes, t_nodes), torch.finfo(dtype).min, dtype=dtype)
    for i, anc in enumerate(tree.ancestors):
        tree_mask[i, anc] = 0
    out: list[list[float]] = [[] for _ in all_ids]
    with torch.inference_mode():
        prefix_cache = None
        if plen:
            prefix_cache = _out_cache(model(input_ids=torch.tensor([all_ids[0][:plen]], device=device),
                                            use_cache=True, logits_to_keep=1))
        node_tokens = torch.tensor(tree.tokens, dtype=torch.long, device=device)
        node_depth = torch.tensor(tree.depth, dtype=torch.long, device=device)
        edge_node = torch.tensor([e[0] for e in edges], dtype=torch.long, device=device)
        edge_token = torch.tensor([e[1] for e in edges], dtype=torch.long, device=device)
        first_tok = torch.tensor([seq[0] for seq in seqs], dtype=torch.long, device=device)
        label_edges = torch.tensor([le + [len(edges)] * (width - len(le)) for le in label_edges_list],
                                   dtype=torch.long, device=device).reshape(len(seqs), width)
        for r0 in range(0, len(all_ids), rows_per_batch):
            rows = list(range(r0, min(len(all_ids), r0 + rows_per_batch)))
            b = len(rows)
            inp, mask, pos = _left_pad([all_ids[i][plen:] for i in rows], plen, plen, pad_id, device)
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                if b > 1:
                    cache.batch_repeat_interleave(b)
            else:
                cache = DynamicCache(config=model.config)
            pre = model(input_ids=inp, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                        **{cache_kw: cache})
            first = torch.log_softmax(pre.logits[:, -1].float(), dim=-1)
            edge_lp = None
            if t_nodes:
                # one forward per row batch over every trie node: [row's keys (its mask) | own ancestors]
                past = torch.where(mask.bool(), 0.0, torch.finfo(dtype).min).to(dtype)
                full_mask = torch.cat([past[:, None, None, :].expand(b, 1, t_nodes, past.shape[1]),
                                       tree_mask.to(device)[None, None].expand(b, 1, t_nodes, t_nodes)], dim=-1)
                res = model(input_ids=node_tokens[None].expand(b, t_nodes),
                            attention_mask=full_mask,
                            position_ids=(pos[:, -1:] + 1) + node_depth[None], use_cache=True,
                            **{cache_kw: _out_cache(pre)})
                logits = res.logits.float()
                norm = torch.logsumexp(logits, dim=-1)  # (b, nodes): log-softmax without its full tensor
                edge_lp = logits[:, edge_node, edge_token] - norm[:, edge_node]
            # each label: its first token from the row's own logits, the rest from its trie edges (summed in
            # float64, as the flat path sums Python floats)
            scores = first.double()[:, first_tok]
            if edge_lp is not None:
                padded = torch.cat([edge_lp.double(), torch.zeros((b, 1), dtype=torch.float64, device=device)], 1)
                scores = scores + padded[:, label_edges].sum(-1)
            for ri, i in enumerate(rows):
                out[i] = scores[ri].tolist()
            emit(on_progress, ProgressEvent("choose", rows[-1] + 1, len(all_ids)))
    return out


def _label_logprobs_flat(model: Any, tokenizer: Any, prompts: Sequence[Chat], labels: Sequence[str], *,
                         chunk: int, on_progress: ProgressCallback | None) -> list[list[float]]:
    import copy

    import torch
    from transformers import DynamicCache

    if not prompts:
        return []
    device = next(model.parameters()).device
    cache_kw = cache_kwarg(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    seqs = _label_seqs(tokenizer, labels)
    all_ids = [chat_ids(tokenizer, m) for m in prompts]
    # Keep one token per prompt outside the prefix: its logits score each label's first token.
    plen = max(0, min(common_prefix_len(all_ids), min(len(s) for s in all_ids) - 1))
    n_labels = len(seqs)
    label_chunk = max(1, min(n_labels, chunk))
    rows_per_batch = max(1, chunk // label_chunk)
    out: list[list[float]] = [[] for _ in all_ids]
    with torch.inference_mode():
        prefix_cache = None
        if plen:
            prefix_cache = _out_cache(model(input_ids=torch.tensor([all_ids[0][:plen]], device=device),
                                            use_cache=True, logits_to_keep=1))
        for r0 in range(0, len(all_ids), rows_per_batch):
            rows = list(range(r0, min(len(all_ids), r0 + rows_per_batch)))
            inp, mask, pos = _left_pad([all_ids[i][plen:] for i in rows], plen, plen, pad_id, device)
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                if len(rows) > 1:
                    cache.batch_repeat_interleave(len(rows))
            else:
                cache = DynamicCache(config=model.config)
            pre = model(input_ids=inp, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                        **{cache_kw: cache})
            first = torch.log_softmax(pre.logits[:, -1].float(), dim=-1)
            row_cache, next_pos = _out_cache(pre), pos[:, -1] + 1
            for c0 in range(0, n_labels, label_chunk):
                part = seqs[c0:c0 + label_chunk]
                k, width = len(part), max(len(s) for s in part)
                lab = torch.full((k, width), pad_id, dtype=torch.long)
                lab_mask = torch.zeros((k, width), dtype=torch.long)
                for j, s in enumerate(part):
                    lab[j, :len(s)] = torch.tensor(s)
                    lab_mask[j, :len(s)] = 1
                # (row, label) pairs, row-major: batch_repeat_interleave repeats each row k times in a row
                c = copy.deepcopy(row_cache)
                if k > 1:
                    c.batch_repeat_interleave(k)
                b = len(rows) * k
                res = model(input_ids=lab.repeat(len(rows), 1).to(device),
                            attention_mask=torch.cat([mask.repeat_interleave(k, dim=0),
                                                      lab_mask.repeat(len(rows), 1).to(device)], dim=1),
                            position_ids=(next_pos.repeat_interleave(k)[:, None]
                                          + torch.arange(width, device=device)[None, :]).reshape(b, width),
                            use_cache=True, **{cache_kw: c})
                lp = torch.log_softmax(res.logits.float(), dim=-1)
                for ri, i in enumerate(rows):
                    for j, s in enumerate(part):
                        total = float(first[ri, s[0]])
                        for t in range(1, len(s)):
                            total += float(lp[ri * k + j, t - 1, s[t]])
                        out[i].append(total)
            emit(on_progress, ProgressEvent("choose", rows[-1] + 1, len(all_ids)))
    return out


def choose(model: Any, tokenizer: Any, prompts: Sequence[Chat], labels: Sequence[str], *,
           on_progress: ProgressCallback | None = None) -> list[Generation]:
    """Answer each prompt with the label of highest log-likelihood (``label_logprobs``): never an invented
    label. ``output_tokens`` is 0: nothing is generated."""
    results = []
    t0 = time.perf_counter()
    scores = label_logprobs(model, tokenizer, prompts, labels, on_progress=on_progress)
    per_row_ms = (time.perf_counter() - t0) * 1000 / max(1, len(prompts))
    for msgs, row in zip(prompts, scores, strict=True):
        best = max(range(len(labels)), key=lambda k: row[k])
        results.append(Generation(labels[best], len(chat_ids(tokenizer, msgs)), 0, per_row_ms))
    return results
