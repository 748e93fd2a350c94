"""The dataset tools are LangChain tools with schemas, and they run."""

from __future__ import annotations

import json
from pathlib import Path

from agent.lc_tools import all_tools
from agent.lc_tools.data import TOOLS


def test_data_tools_registered_and_callable(tmp_path: Path) -> None:
    names = {t.name for t in all_tools()}
    assert {"inspect_dataset", "clean_dataset", "split_dataset"} <= names
    rows = [{"messages": [{"role": "user", "content": f"Question {i} about account {i * 7}?"},
                          {"role": "assistant", "content": f"Answer number {i} is {i * 13}."}]} for i in range(20)]
    src = tmp_path / "d.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tools = {t.name: t for t in TOOLS}
    assert tools["inspect_dataset"].invoke({"path": str(src)})["rows"] == 20
    report = tools["clean_dataset"].invoke({"path": str(src), "out": str(tmp_path / "c.jsonl")})
    assert report["input_rows"] == 20 and "config" not in report
    assert "path" in tools["split_dataset"].args
