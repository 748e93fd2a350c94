"""`tunewise report SESSION_ID`: the advisor's recommendation as one page, HTML and Markdown, user text escaped,
checked in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tools import report as R

REPO = Path(__file__).resolve().parents[2]
EVIL = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
SECTIONS = ("Recommendation", "What would change the decision", "Measurements", "Learning curve", "Decision path",
            "Plan")


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> str:
    from agent import graph
    from agent.advisor import run_scripted
    from tools.evaluate.learning_curve import fit_curve
    from tools.runlog import RunLog

    monkeypatch.setattr(graph, "detect_device", lambda: {"kind": "cpu", "name": "x86_64", "gpus": 0,
                                                         "gpu_memory_gb": None})
    doc = run_scripted({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "data": "",
                        "test_set": "", "prompt_quality": 0.6, "optimized_prompt_quality": 0.7, "n_examples": 3000,
                        "gpu_memory_gb": 24, "model_params_b": 7})
    sid, rec = doc["session_id"], doc["recommendation"]
    pts = [(750, 0.55), (1500, 0.62), (3000, 0.68)]
    fit = fit_curve([(n, [1.0] * round(q * 300) + [0.0] * (300 - round(q * 300))) for n, q in pts], bar=0.9)
    rec["learning_curve"] = {"points": [{"n": n, "quality": q, "ci95": [q - 0.05, q + 0.05], "train_seconds": 60}
                                        for n, q in pts], "fit": fit.to_dict(), "predictions": fit.predictions,
                             "can_extrapolate": fit.can_extrapolate, "why_not": fit.why_not, "metric": "label_accuracy",
                             "message": "At 3,000 examples the model reaches 68%."}
    rec["pipeline"] = {"evaluate": {"quality": 0.68, "ci95": [0.62, 0.73], "n": 300, "metric": "label_accuracy"},
                       "compare": {"rows": [{"input": EVIL, "expected": "card_arrival", "tuned": EVIL}]}}
    rec["derived"] = {"test_set": {"value": "/data/" + EVIL, "from": "a held-out split of " + EVIL}}
    RunLog().upsert_session(sid, status="done", recommendation=rec)
    return sid


def test_html_session_report_has_every_section_the_chart_and_escapes(session: str, tmp_path: Path) -> None:
    text = R.build_session_report(session, tmp_path / "s.html").read_text()
    for s in SECTIONS:
        assert f"<h2>{s}</h2>" in text
    assert "Fine-tune with LoRA: prompts reach 70% (reported) of your 90% bar" in text
    assert "with under 24 GB of GPU memory" in text and "method.select.lora" in text
    assert text.count("<svg") == 1 and "learning curve on your data" in text
    assert "<script>" not in text and "<img src=x" not in text and "&lt;script&gt;" in text


def test_markdown_session_report_escapes_html_and_writes_the_chart(session: str, tmp_path: Path) -> None:
    out = R.build_session_report(session, tmp_path / "team.md")
    text = out.read_text()
    for s in SECTIONS:
        assert f"## {s}" in text
    assert "<script" not in text and "<img" not in text  # no tag survives: inert for any renderer
    assert "&lt;script&gt;" in text
    png = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert png == ["team_files/learning_curve.png"]
    assert (tmp_path / png[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_md_escape_is_inert() -> None:
    assert R.md_escape("<b>x</b> | *y* [z](u)") == "&lt;b&gt;x&lt;/b&gt; \\| \\*y\\* \\[z\\](u)"


def test_unknown_or_unfinished_session_is_a_clear_error(tmp_path: Path) -> None:
    from tools.errors import InputError
    from tools.runlog import RunLog

    with pytest.raises(InputError, match="no advisor session"):
        R.build_session_report("adv-nope", tmp_path / "x.html")
    RunLog().upsert_session("adv-open", status="asking", answers={"task": "tone"})
    with pytest.raises(InputError, match="no recommendation yet"):
        R.build_session_report("adv-open", tmp_path / "x.html")


def test_cli_report_takes_a_session_or_a_run(session: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    r = CliRunner().invoke(app, ["report", session, "--out", str(tmp_path / "r.md"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"report": str(tmp_path / "r.md"), "format": "markdown", "session_id": session}
    r = CliRunner().invoke(app, ["report", "run-nope", "--out", str(tmp_path / "r.html")])
    assert r.exception is not None and "run-nope" in str(r.exception)  # a run id still means the run report


def _browser() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_browser() is None, reason="no Chromium installed (apt-get install -y chromium)")
def test_session_report_in_headless_chromium(session: str, tmp_path: Path) -> None:
    """The page renders (chart and text pixels), and the user text stays text: no script ran, no image tag."""
    from PIL import Image

    html = R.build_session_report(session, tmp_path / "s.html")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([_browser() or "", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                              "--dump-dom", html.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert "<title>tunewise advice" in dom.stdout and "pwned" not in dom.stdout.split("</title>")[0]
    assert "<img" not in dom.stdout and "&lt;script&gt;" in dom.stdout
    png = tmp_path / "s.png"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "render_report.py"), str(html), str(png),
                        "--height", "2400"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    img = Image.open(png).convert("L")
    dark = sum(1 for v in img.crop((0, 0, 1200, 1600)).getdata() if v < 128)
    assert dark > 5000




@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_session_report_masks_a_key_whatever_the_session_row_carried(session: str, tmp_path: Path, suffix: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # the run log masks keys on write; the report masks again, as a run's report does, for a row written otherwise
    key = "sk-" + "A1b2C3d4E5f6G7h8J9k0"
    gather = R.gather_session

    def with_key(sid: str) -> dict:
        facts = gather(sid)
        facts["rec"]["summary"] = f"Fine-tune (the pasted error said: Bearer {key})"
        return facts

    monkeypatch.setattr(R, "gather_session", with_key)
    text = R.build_session_report(session, tmp_path / f"s{suffix}").read_text()
    assert key not in text and "the pasted error said" in text
