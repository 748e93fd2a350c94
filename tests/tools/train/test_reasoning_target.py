"""Training on a reasoning set keeps the worked steps as the target (issue 22, item 1): the loss covers the whole
rationale and its final answer, not the answer alone; the options stay in the prompt."""

from __future__ import annotations

from pathlib import Path

from tests.tools._data_fixtures import banking77_dir
from tools.train.data import IGNORE, encode_example
from tools.train.loading import train_and_val

WORD_PROBLEMS = Path(__file__).parents[1] / "data" / "fixtures" / "word_problems_synthetic.jsonl"


def test_the_loss_covers_the_worked_steps(tiny_model_dir: Path) -> None:
    from tools.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    aqua = banking77_dir().parent / "aqua" / "dev.json"
    for path in (aqua, WORD_PROBLEMS):
        train, _ = train_and_val(str(path), None, limit=8, seed=0)
        ex = train[0]
        enc = encode_example(tok, ex, 1024)
        target = tok.decode([t for t in enc.labels if t != IGNORE][:-1])  # without the EOS
        assert target.strip() == ex.output_text.strip()  # every step of the rationale is learned
        assert len(ex.output_text.strip().splitlines()) >= 2
        prompt = tok.decode([t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab == IGNORE])
        assert ex.input_text[:40] in prompt and ("Options:" in prompt) == (path == aqua)
