"""Text generation from chat messages with a local model.

``generate`` is the one entry point used by prompt evaluation, model evaluation and the forgetting check.
``generate_sequential`` is the plain reference path (one example at a time, greedy, ``model.generate``);
``generate`` is the fast path (batched, shared-prefix KV cache reused) and must give the same predictions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.types import ProgressCallback, ProgressEvent, emit

Chat = Sequence[dict[str, str]]


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    output_tokens: int
    latency_ms: float
    recomputed: bool = False  # the fast path met a near-tie and the reference path took over from there
    token_ids: list[int] = field(default_factory=list, repr=False)  # the reply's tokens (reference path only)


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


def generate(model: Any, tokenizer: Any, prompts: Sequence[Chat], *, max_new_tokens: int = 32,
             batch_size: int = 128, on_progress: ProgressCallback | None = None,
             tie_tolerance: float | None = None, **options: Any) -> list[Generation]:
    """Greedy generation for a list of chats: batched, with the shared prefix encoded once.

    The prompts of an evaluation share their system message and few-shot pairs, which are most of the tokens
    (about 750 of 780 for banking77 with 5 shots). So:

    1. the longest token prefix common to every prompt runs through the model once, giving a KV cache;
    2. prompts go in batches (sorted by length, so little padding); each batch gets a copy of that cache,
       repeated along the batch dimension, and only the suffixes run: ``prefix | pad... | suffix``. The
       attention mask is 1 over the prefix, 0 over the padding, 1 over the suffix, and position ids continue
       from the prefix length for the real tokens, so each row sees exactly what it would see alone;
    3. greedy decoding, one token per step for the whole batch; a row stops at its first EOS (or pad) token.

    Predictions equal ``generate_sequential``'s. Batching changes the shapes of the matrix products, so the
    logits differ from the reference's by float rounding (about 1e-5 in fp32). That moves the argmax only
    where the top two logits are nearly tied, which does happen (banking77 has label pairs such as
    ``get_card_by_name``/``..._number`` at 1.5e-5 apart). So every step's top-2 margin is tracked, and a row
    whose margin ever fell below ``tie_tolerance`` times the top logit's size (default 3e-5 in fp32, 1e-2 in
    half precision) is re-run
    on the reference path (``Generation.recomputed``); every other row's argmax cannot have moved.
    ``latency_ms`` of each result is the
    batch's wall time divided by its size (the throughput view; single-request latency needs
    ``generate_sequential``). Without a shared prefix (no chat template prefix) it falls back to the
    sequential path.
    """
    import torch

    if not prompts:
        return []
    all_ids = [chat_ids(tokenizer, m) for m in prompts]
    n = len(all_ids)
    # Keep at least one token per prompt outside the prefix: its logits start the reply.
    plen = min(common_prefix_len(all_ids), min(len(s) for s in all_ids) - 1)
    if plen <= 0:
        return generate_sequential(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                   on_progress=on_progress)
    device = next(model.parameters()).device
    cache_kw = cache_kwarg(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    batch_size = max(1, int(batch_size))
    # Rounding differences scale with the logits' magnitude: measured on SmolLM2 in fp32, about 4e-5 at
    # logits near 32 (1.2e-6 relative); the default keeps a 25x safety factor. Half precision rounds ~1e4x worse.
    rel_tol = tie_tolerance if tie_tolerance is not None else (
        3e-5 if next(model.parameters()).dtype == torch.float32 else 1e-2)

    results: list[Generation | None] = [None] * n
    t_start = time.perf_counter()
    with torch.inference_mode():
        pre = model(input_ids=torch.tensor([all_ids[0][:plen]], device=device), use_cache=True,
                    logits_to_keep=1)
        prefix_cache = _out_cache(pre)
        prefix_s = time.perf_counter() - t_start
        order = sorted(range(n), key=lambda i: len(all_ids[i]))
        shared = _shared_prefix_kv(model, prefix_cache) if options.get("shared_attention", True) else None
        done_count = 0
        for b0 in range(0, n, batch_size):
            rows = order[b0:b0 + batch_size]
            t0 = time.perf_counter()
            out_ids, margins, scales = _greedy_batch(model, [all_ids[i][plen:] for i in rows], plen,
                                                     prefix_cache, shared, cache_kw, device, pad_id, stops,
                                                     max_new_tokens, int(options.get("prefill_chunk", 16)))
            # The prefix is paid once for all batches; spread its cost over the examples.
            per_row_ms = ((time.perf_counter() - t0) / len(rows) + prefix_s / n) * 1000
            for r, i in enumerate(rows):
                tie = _first_tie(margins[r], scales[r], rel_tol)
                if tie is not None:
                    # Every step before the near tie had a clear argmax, so those tokens are the reference's;
                    # the reference path takes over from the tie on (not from the start: long replies meet a
                    # near tie somewhere far more often than short labels do).
                    kept = out_ids[r][:tie]
                    rest = _sequential_one(model, tokenizer, all_ids[i] + kept, max_new_tokens - tie, device)
                    new = kept + rest.token_ids
                    results[i] = Generation(tokenizer.decode(new, skip_special_tokens=True).strip(),
                                            len(all_ids[i]), len(new), per_row_ms + rest.latency_ms,
                                            recomputed=True)
                    continue
                results[i] = Generation(tokenizer.decode(out_ids[r], skip_special_tokens=True).strip(),
                                        len(all_ids[i]), len(out_ids[r]), per_row_ms)
            done_count += len(rows)
            emit(on_progress, ProgressEvent("generate", done_count, n))
    return [r for r in results if r is not None]


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


def _greedy_batch(model: Any, suffixes: list[list[int]], plen: int, prefix_cache: Any,
                  shared: list[tuple[Any, Any]] | None, cache_kw: str, device: Any, pad_id: int, stops: set[int],
                  max_new_tokens: int, prefill_chunk: int = 16
                  ) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
    """Greedy continuation of ``prefix | left-padded suffixes`` for one batch: the new token ids per row and,
    per step, the top-2 logit margin and the top logit's size (the scale of rounding).

    With ``shared`` the rows' caches hold only their own tokens and attention reads the one prefix copy;
    without it each batch gets the prefix cache repeated along the batch dimension.
    """
    import copy

    if shared is not None:
        with _attn_implementation(model, _SHARED_ATTN):
            logits, cache, mask, next_pos = _prefill_shared(model, suffixes, plen, shared, cache_kw, device,
                                                            pad_id, chunk=max(1, prefill_chunk))
            return _decode(model, logits, cache, mask, next_pos, cache_kw, {"tw_shared_prefix": shared},
                           device, stops, max_new_tokens)
    inp, mask, pos = _left_pad(suffixes, plen, plen, pad_id, device)
    cache = copy.deepcopy(prefix_cache)
    if len(suffixes) > 1:
        cache.batch_repeat_interleave(len(suffixes))
    out = model(input_ids=inp, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                **{cache_kw: cache})
    return _decode(model, out.logits[:, -1, :], _out_cache(out), mask, pos[:, -1:] + 1, cache_kw, {}, device,
                   stops, max_new_tokens)


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


def _prefill_shared(model: Any, suffixes: list[list[int]], plen: int, shared: list[tuple[Any, Any]],
                    cache_kw: str, device: Any, pad_id: int, chunk: int = 16) -> tuple[Any, Any, Any, Any]:
    """Run the suffixes after the shared prefix in chunks of similar length (little padding), then merge
    the chunks' caches into one batch for decoding, left-padding shorter ones with masked zeros."""
    import torch
    from transformers import DynamicCache

    logits, masks, nexts, kvs = [], [], [], []
    for c0 in range(0, len(suffixes), chunk):
        part = suffixes[c0:c0 + chunk]
        inp, mask, pos = _left_pad(part, plen, 0, pad_id, device)
        cache = DynamicCache(config=model.config)
        out = model(input_ids=inp, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                    tw_shared_prefix=shared, **{cache_kw: cache})
        logits.append(out.logits[:, -1, :])
        masks.append(mask)
        nexts.append(pos[:, -1:] + 1)
        kvs.append([(ly.keys, ly.values) for ly in _out_cache(out).layers])
    width = max(m.shape[1] for m in masks)

    def pad(t: Any) -> Any:  # left-pad the sequence dimension (dim 2 of keys/values) to ``width``
        return torch.nn.functional.pad(t, (0, 0, width - t.shape[2], 0))

    merged = DynamicCache(config=model.config)
    for li in range(len(kvs[0])):
        merged.update(torch.cat([pad(kv[li][0]) for kv in kvs]), torch.cat([pad(kv[li][1]) for kv in kvs]), li)
    mask = torch.cat([torch.nn.functional.pad(m, (width - m.shape[1], 0)) for m in masks])
    return torch.cat(logits), merged, mask, torch.cat(nexts)


def _decode(model: Any, logits: Any, cache: Any, mask: Any, next_pos: Any, cache_kw: str,
            extra: dict[str, Any], device: Any, stops: set[int],
            max_new_tokens: int) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
    """Greedy steps from the last logits of a prefilled batch; rows leave the batch at their EOS. Returns the
    new tokens per row and, per row and step, the top-2 logit gap and the top logit's size."""
    import torch

    b = logits.shape[0]
    outs: list[list[int]] = [[] for _ in range(b)]
    margins: list[list[float]] = [[] for _ in range(b)]  # per row, per step: top-2 logit gap
    scales: list[list[float]] = [[] for _ in range(b)]  # per row, per step: |top logit|
    active = list(range(b))  # batch position -> row; finished rows leave the batch
    for step in range(max_new_tokens):
        top = logits.float().topk(2, dim=-1)
        tok = top.indices[:, 0]
        gaps = (top.values[:, 0] - top.values[:, 1]).tolist()
        tops = top.values[:, 0].abs().tolist()
        keep = []
        for j, t in enumerate(tok.tolist()):
            r = active[j]
            margins[r].append(gaps[j])
            scales[r].append(tops[j])
            if t not in stops:
                outs[r].append(t)
                keep.append(j)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            # Rows that hit EOS stop costing anything: drop them from the batch and from the cache.
            idx = torch.tensor(keep, device=device)
            cache.batch_select_indices(idx)
            mask, tok, next_pos = mask[idx], tok[idx], next_pos[idx]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=device)], dim=1)
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos, use_cache=True,
                    logits_to_keep=1, **{cache_kw: cache}, **extra)
        logits = out.logits[:, -1, :]
        cache = _out_cache(out)
        next_pos = next_pos + 1
    return outs, margins, scales


# ---------------------------------------------------------------------------------------------- choice mode

def label_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Chat], labels: Sequence[str], *,
                   chunk: int = 64, on_progress: ProgressCallback | None = None) -> list[list[float]]:
    """Log-likelihood of each label as the whole assistant reply, for each prompt (lm-eval-harness's
    multiple-choice scoring).

    The token prefix every prompt shares (system message, few-shot pairs) runs through the model once. Rows
    then go in batches: their own suffixes are prefilled together (left-padded after the prefix, as in
    ``generate``), and every label continues from a copy of each row's cache, at most ``chunk`` (row, label)
    sequences per forward, right-padded (padding after a label cannot change the label's own positions:
    attention is causal). A label's score is the sum of its tokens' log-probabilities plus the end-of-turn
    token's, so a label that is a prefix of another ("card" / "card_arrival") does not win by stopping early.
    """
    import copy

    import torch
    from transformers import DynamicCache

    if not prompts:
        return []
    device = next(model.parameters()).device
    cache_kw = cache_kwarg(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    seqs = [list(tokenizer(lab, add_special_tokens=False)["input_ids"]) + end for lab in labels]
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
