"""Choice mode speed: every label of a row in one forward over the labels' token trie, against the per-label
path (each label continues from a copy of the row's cache), same prompts, same loaded model.

banking77: the plain prompt as prompt evaluation builds it (the generic system message and the question),
its labels (77; ``--labels`` takes fewer), the first N test rows, the embedded SmolLM2. The script checks both
paths choose the same labels and writes ``benchmarks/results/choice_speed.json``.

    PYTHONPATH=. python benchmarks/choice_speed.py --rows 300
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "banking77"))
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--labels", type=int, default=None, help="use the first K labels (default: all)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "choice_speed.json"))
    ap.add_argument("--note", default="", help="free text stored with the result (e.g. machine load)")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_metrics_speed import machine, save_result

    from tools import generation, models
    from tools.data.formats import load_examples
    from tools.prompt.evaluation import DEFAULT_SYSTEM, build_messages
    from tools.scoring import metrics

    data = Path(args.data)
    test = load_examples(data / "test.csv")[: args.rows]
    labels = sorted({e.output_text for e in load_examples(data / "train.csv")})[: args.labels]
    prompts = [build_messages(DEFAULT_SYSTEM, [], e) for e in test]
    model, tok = models.load_model(None, device="cpu")
    generation.label_logprobs(model, tok, prompts[:1], labels[:2])  # warm-up, both paths benefit

    def timed(trie: bool) -> tuple[float, list[str]]:
        t0 = time.perf_counter()
        scores = generation.label_logprobs(model, tok, prompts, labels, trie=trie)
        took = time.perf_counter() - t0
        return took, [labels[max(range(len(labels)), key=lambda k: row[k])] for row in scores]

    flat_s, flat = timed(False)
    trie_s, tried = timed(True)
    seqs = generation._label_seqs(tok, labels)
    tree = generation.LabelTrie.build(seqs)
    acc = sum(metrics.label_accuracy(tried, [e.output_text for e in test], labels)) / len(test)
    result = {
        "benchmark": "choice mode: label trie vs per-label path (tools.generation.label_logprobs)",
        "data": str(data.name), "rows": len(test), "labels": len(labels),
        "label_tokens": sum(len(s) for s in seqs), "trie_nodes_fed": len(tree.tokens),
        "per_label_path_s": round(flat_s, 2), "trie_s": round(trie_s, 2),
        "speedup": round(flat_s / trie_s, 2) if trie_s else None,
        "same_choices": tried == flat, "differing_rows": sum(a != b for a, b in zip(tried, flat, strict=True)),
        "choice_accuracy": round(acc, 4),
        "model": "SmolLM2-135M-Instruct", "dtype": str(next(model.parameters()).dtype), "machine": machine(),
        "note": args.note or "shared 2-core CPU (several engineers at once): absolute times inflated, the ratio "
                              "is what the two paths measured in the same process",
    }
    save_result(result, args.out)
    return 0 if tried == flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
