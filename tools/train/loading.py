"""Load the training and validation examples for a run, and read the base model's size from its config."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tools.errors import InputError
from tools.types import Example

VAL_FRACTION = 0.1


def load_examples(path: str) -> list[Example]:
    """Examples from any format the data tools read."""
    from tools.data import load_examples as _load

    return _load(path)


def split_holdout(examples: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``VAL_FRACTION`` of the rows (at least one) for validation, chosen by ``seed``."""
    idx = list(range(len(examples)))
    random.Random(seed).shuffle(idx)
    n_val = max(1, round(len(examples) * VAL_FRACTION))
    val = set(idx[:n_val])
    return [e for i, e in enumerate(examples) if i not in val], [e for i, e in enumerate(examples) if i in val]


def train_and_val(train: str, val: str | None, *, limit: int | None, seed: int) -> tuple[list[Example], list[Example]]:
    """The run's training and validation examples: ``val`` when given, else a seeded hold-out of ``train``."""
    train_ex = load_examples(train)
    if limit:
        train_ex = train_ex[:limit]
    if val:
        val_ex = load_examples(val)
        if limit:
            val_ex = val_ex[: max(1, limit // 5)]
    else:
        train_ex, val_ex = split_holdout(train_ex, seed)
    if len(train_ex) < 1 or len(val_ex) < 1:
        raise InputError(f"need at least one training and one validation example (got {len(train_ex)} and "
                         f"{len(val_ex)})", where=train, fix="add examples")
    return train_ex, val_ex


def params_b(model_dir: Path) -> float | None:
    """The base model's size in billions of parameters, from its config.json."""
    from tools.models import estimate_params_b

    return estimate_params_b(json.loads((model_dir / "config.json").read_text()))
