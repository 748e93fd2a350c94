"""The TUI's "Accept rule" applies the spot-check's rule, as the CLI does: a cleaned file beside the input."""

from __future__ import annotations

import json
from pathlib import Path

from tools.data.spotcheck import SpotCheck
from tui import services


def test_accepting_a_rule_writes_the_cleaned_data(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": f"lorem ipsum filler {i}" if i % 5 == 0 else f"my card {i} is lost"},
                          {"role": "assistant", "content": "lost_card"}]} for i in range(40)]
    data = tmp_path / "tickets.jsonl"
    original = "".join(json.dumps(r) + "\n" for r in rows)
    data.write_text(original, encoding="utf-8")
    spot = SpotCheck(data, n=20, seed=0)
    rule = {"kind": "keyword", "pattern": "lorem"}
    out = Path(services.accept_rule(rule, spot))
    assert out == tmp_path / "tickets.spotchecked.jsonl"
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(kept) == 32 and not any("lorem" in r["messages"][0]["content"] for r in kept)
    assert data.read_text(encoding="utf-8") == original  # the input is never modified
