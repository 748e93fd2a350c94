"""The one-page report: every section from the run log, plots inline, Markdown with PNGs, and it renders."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.eval_run import fill_runlog, make_run, write_test_file
from tools import report as R

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("Summary", "Data", "Prompt baseline", "Training", "Test set", "Side by side", "Forgetting", "A/B",
            "Checklist")


@pytest.fixture
def filled_run(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    rid = make_run(tiny_model_dir)
    fill_runlog(rid, write_test_file(tmp_path / "test.jsonl"), monkeypatch)
    return rid


def test_html_report_has_every_section_and_plots(filled_run: str, tmp_path: Path) -> None:
    out = R.build_report(filled_run, tmp_path / "report.html")
    text = out.read_text()
    for s in SECTIONS:
        assert f"<h2>{s}</h2>" in text
    assert text.count("<svg") == 3  # training curves, test scores, forgetting per category
    assert "label_accuracy" in text and "95% CI" in text and "McNemar" in text
    assert "✓ done" in text and "Verdict:" in text
    assert not list(tmp_path.glob(".report.html.*"))  # atomic write left no temp file


def test_markdown_report_writes_pngs(filled_run: str, tmp_path: Path) -> None:
    out = R.build_report(filled_run, tmp_path / "team.md")
    text = out.read_text()
    for s in SECTIONS:
        assert f"## {s}" in text
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pngs == ["team_files/curves.png", "team_files/test.png", "team_files/forgetting.png"]
    for p in pngs:
        assert (tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_bare_run_says_what_is_missing(tiny_model_dir: Path, tmp_path: Path) -> None:
    rid = make_run(tiny_model_dir, curves=False)
    text = R.build_report(rid, tmp_path / "r.html").read_text()
    assert "Not evaluated on the test set yet" in text and "forgetting check has not been run" in text
    assert "<svg" not in text


def test_checklist_status(filled_run: str) -> None:
    status = {i["evidence"]: i["done"] for i in R.checklist_status(R.gather(filled_run))}
    assert status["test_evaluated"] and status["forgetting_checked"]
    assert status["ab_tested"] and status["method_lora"] and status["val_loss_monitored"]
    assert status["epochs_3_5"] and status["lr_in_range"]
    assert status["prompt_baseline_measured"] is False
    assert status["manual_review"] is False  # an 8-row side-by-side sample is under the 20 to read (chk.after.manual)


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no Chromium installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(filled_run: str, tmp_path: Path) -> None:
    from PIL import Image

    html = R.build_report(filled_run, tmp_path / "report.html")
    png = tmp_path / "report.png"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "render_report.py"), str(html), str(png),
                        "--height", "2400"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    img = Image.open(png).convert("L")
    assert img.size == (1200, 2400)
    # not a blank page: plenty of dark pixels (text, plot lines) in the top half
    top = img.crop((0, 0, 1200, 1200))
    dark = sum(1 for v in top.getdata() if v < 128)
    assert dark > 5000
