"""tunewise's generation against a peer engine: any OpenAI-compatible server you point it at (``--base-url``).

Start the peer yourself on the same model (for example llama.cpp's ``llama-server -m smollm2-135m.gguf -t 2``
or vLLM), then run this: the same chats (banking77 with its labels and 5 shots in the prompt, or MBPP) go
through tunewise's batched shared-prefix path (``tools.generation.generate``) and, one request at a time,
through the server at temperature 0. It reports both wall times, their ratio and how many replies agree
word for word, and writes ``benchmarks/results/peer.json``. Without ``--base-url`` it says so and stops:
tunewise never builds or starts an engine.

    PYTHONPATH=. python benchmarks/peer.py --base-url http://127.0.0.1:8080/v1 --data banking77 --rows 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))


def chats(data: str, rows: int) -> tuple[list[list[dict[str, str]]], int]:
    """The chats and their reply length: banking77 (labels + 5 shots in the prompt) or MBPP (the task)."""
    from tools.data.formats import load_examples
    from tools.prompt.evaluation import build_messages, format_spec, select_shots
    from tools.scoring import metrics

    if data == "banking77":
        test = load_examples(DATA / "banking77" / "test.csv")[:rows]
        train = load_examples(DATA / "banking77" / "train.csv")
        labels = sorted({e.output_text for e in train})
        shots = select_shots(train, 5, labels=True, seed=0, exclude={metrics.normalize(e.input_text) for e in test})
        system = "Classify the customer's banking question.\n\n" + format_spec(labels, None)
        return [build_messages(system, [(e.input_text, e.output_text) for e in shots], e) for e in test], 32
    if data == "mbpp":
        sys.path.insert(0, str(REPO / "benchmarks"))
        from mbpp_short_run import chat_row

        raw = [json.loads(x) for x in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines() if x.strip()]
        rows_ = [chat_row(r) for r in raw if 11 <= r["task_id"] <= 510][:rows]
        return [r["messages"][:-1] for r in rows_], 256
    raise SystemExit(f"unknown data set {data!r}: banking77 or mbpp")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default=None, help="the peer's OpenAI-compatible endpoint, e.g. http://host:8080/v1")
    ap.add_argument("--peer-model", default="peer", help="model name the server expects")
    ap.add_argument("--peer-label", default="", help="what the peer is (engine, weights file, flags), stored as is")
    ap.add_argument("--data", default="banking77", choices=("banking77", "mbpp"))
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: 32 (banking77), 256 (MBPP)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "peer.json"))
    ap.add_argument("--note", default="", help="free text stored with the result (e.g. machine load)")
    args = ap.parse_args()
    if not args.base_url:
        print("peer benchmark skipped: no --base-url given. Start an OpenAI-compatible server on the same model "
              "(llama.cpp's llama-server, vLLM, Ollama) and pass its /v1 address; tunewise does not build one.")
        return 0

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import machine, save_result

    from agent.prompt_backends import OpenAIChatBackend
    from tools import generation, models
    from tools.prompt.evaluation import PromptEvalConfig

    prompts, default_len = chats(args.data, args.rows)
    max_new = args.max_new_tokens or default_len
    model, tok = models.load_model(None, device="cpu")
    generation.generate(model, tok, prompts[:2], max_new_tokens=2)  # warm-up
    stats = generation.GenerationStats()
    t0 = time.perf_counter()
    ours = generation.generate(model, tok, prompts, max_new_tokens=max_new, stats=stats)
    ours_s = time.perf_counter() - t0

    peer = OpenAIChatBackend(PromptEvalConfig(test="", model=f"openai:{args.peer_model}", base_url=args.base_url))
    peer.generate(prompts[:1], max_new_tokens=2)  # warm-up (and a clear error when the server is not there)
    t0 = time.perf_counter()
    theirs = peer.generate(prompts, max_new_tokens=max_new)
    peer_s = time.perf_counter() - t0
    same = sum(a.text.strip() == b.text.strip() for a, b in zip(ours, theirs, strict=True))
    result: dict[str, Any] = {
        "benchmark": "tunewise generation vs an OpenAI-compatible peer, same chats, greedy",
        "data": args.data, "rows": len(prompts), "max_new_tokens": max_new,
        "tunewise_s": round(ours_s, 2), "peer_s": round(peer_s, 2),
        "peer_over_tunewise": round(peer_s / ours_s, 2) if ours_s else None,
        "same_replies": same, "tunewise_dtype": str(next(model.parameters()).dtype),
        "tunewise_stats": stats.to_dict(), "peer": {"base_url": args.base_url, "model": args.peer_model,
                                                      "label": args.peer_label},
        "machine": machine(), "note": args.note,
    }
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
