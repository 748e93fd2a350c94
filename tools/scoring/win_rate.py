"""Win rate of B over A from paired verdicts ("a", "b", "tie"): the user's side-by-side votes and a judge's
pairwise verdicts are scored by the same function, so the two can be compared."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tools.errors import InputError
from tools.scoring import metrics as M

VOTES: tuple[str, ...] = ("a", "b", "tie")


@dataclass
class WinRate:
    """B's win rate over A from paired verdicts: (B wins + half the ties) / n, with a bootstrap 95% CI."""

    a_wins: int
    b_wins: int
    ties: int
    n: int
    rate: float
    ci95: tuple[float, float]
    source: str = "human"  # "human" (votes) or the judge's name

    def to_dict(self) -> dict[str, Any]:
        return {"a_wins": self.a_wins, "b_wins": self.b_wins, "ties": self.ties, "n": self.n, "rate": self.rate,
                "ci95": list(self.ci95), "source": self.source}


def win_rate(verdicts: Sequence[str], *, source: str = "human", seed: int = 0) -> WinRate:
    """Win rate of B from "a" / "b" / "tie" verdicts (a tie counts half)."""
    bad = [v for v in verdicts if v not in VOTES]
    if bad:
        raise InputError(f"unknown verdict {bad[0]!r}", where="vote", fix="vote a, b or tie")
    items = [1.0 if v == "b" else 0.5 if v == "tie" else 0.0 for v in verdicts]
    c = Counter(verdicts)
    rate, ci = M.mean_ci(items, seed=seed)
    return WinRate(c["a"], c["b"], c["tie"], len(items), rate, ci if items else (0.0, 1.0), source)
