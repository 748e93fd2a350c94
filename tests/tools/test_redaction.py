"""Secrets never stored: keys, and anything that looks like one, are masked in every error, log
line, run-log field and report. The end-to-end test uses a local OpenAI-compatible stub that echoes the key
in its error text, as real servers do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tools import redaction
from tools.errors import InputError
from tools.redaction import MASK, redact
from tools.runlog import RunLog

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, secret", [
    ("Incorrect API key provided: sk-proj-abc123DEF456ghi. See https://platform", "sk-proj-abc123DEF456ghi"),
    ("401: Authorization: Bearer eyJhbGciOi.J9x7Qz12", "eyJhbGciOi.J9x7Qz12"),
    ("GET https://api.example.com/v1/models?key=AIzaSy12345abc failed", "AIzaSy12345abc"),
    ('config {"api_key=hunter2hunter2"}', "hunter2hunter2"),
    ("password: correct-horse-7", "correct-horse-7"),
    ("token=hf_AbCdEfGhIjKlMnOpQrSt", "hf_AbCdEfGhIjKlMnOpQrSt"),
])
def test_things_that_look_like_keys_are_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and MASK in out


@pytest.mark.parametrize("text", ["max_tokens: 1024", '{"key": "billing"}', "Bearer authentication failed",
                                  "run:train-20261203-120501-3fa2b1", "the monkey=banana label", "tokens 512"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_the_configured_key_is_masked_whatever_it_looks_like(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEWISE_CHAT_API_KEY", "plain-local-98765")
    assert redact("server said: plain-local-98765 is not valid") == f"server said: {MASK} is not valid"
    monkeypatch.setenv("OPENAI_API_KEY", "not-needed")  # a placeholder is not a secret
    assert redact("api said not-needed") == "api said not-needed"
    redaction.register_secret("given-on-the-command-line-1")
    assert "given-on-the-command-line-1" not in redact("x given-on-the-command-line-1 y")


def test_errors_and_run_log_fields_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "zz-plain-key-424242")
    e = InputError("the server rejected zz-plain-key-424242", where="https://h/v1?key=zz-plain-key-424242",
                   fix="check OPENAI_API_KEY (now zz-plain-key-424242)")
    assert "zz-plain-key-424242" not in e.render() + str(e.to_dict())
    log = RunLog()
    rid = log.start_run("prompt_eval", config={"base_url": "http://h/v1", "note": "Bearer sk-abcdef12345678"})
    log.update_run(rid, status="failed", error="raw: zz-plain-key-424242", summary={"e": "sk-abcdef12345678"})
    row = log.query("SELECT config, error, summary FROM runs WHERE run_id = ?", [rid])[0]
    assert "zz-plain-key-424242" not in json.dumps(row) and "sk-abcdef12345678" not in json.dumps(row)


# ------------------------------------------------------------------------------------------ end to end

KEY = "zz-live-Key-7f3a9c1e5b"  # matches no pattern: only "the configured key itself" catches it


class _EchoKeyServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that rejects every request and echoes the key it was sent."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        sent = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {sent}. Header was "
                                                f"'Authorization: Bearer {sent}'.",
                                     "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoKeyServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _all_run_log_text(path: Path) -> str:
    """Every string stored in every table of the run log (compression would hide a grep of the file)."""
    log = RunLog(path)
    out = []
    for t in log.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"):
        for row in log.query(f'SELECT * FROM "{t["table_name"]}"'):
            out.append(json.dumps(row, default=str))
    return "\n".join(out)


def test_a_key_echoed_by_the_server_never_reaches_the_run_log_or_the_log_file(
        echo_server: str, tmp_path: Path, tunewise_home: Path) -> None:
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n"
                            for p, c in [("my card is lost", "lost_card"), ("refund please", "refund")]))
    env = {**os.environ, "OPENAI_API_KEY": KEY, "TUNEWISE_HOME": str(tunewise_home), "NO_PROXY": "127.0.0.1"}
    r = subprocess.run([sys.executable, "-m", "cli", "prompt-eval", "--test", str(test), "--model", "openai:stub",
                        "--base-url", echo_server, "--json"], cwd=REPO, capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2, r.stderr  # a user error (the endpoint refused), not a crash
    doc = json.loads(r.stdout)
    assert "Incorrect API key provided" in doc["error"]["what"] and MASK in doc["error"]["what"]
    assert KEY not in r.stdout + r.stderr

    stored = _all_run_log_text(tunewise_home / "runlog.duckdb")
    assert "Incorrect API key provided" in stored  # the error was recorded ...
    assert KEY not in stored  # ... without the key

    # the advisor's chat model against the same server: failures go to the log file, masked
    from agent import llm
    from agent.advisor import Advisor

    model = llm.chat_model(echo_server, "stub", KEY, timeout=10)
    adv = Advisor(chat_model=model)
    adv.start({"task": "classification", "goals": ["quality"], "quality_target": 0.9, "test_set": "",
               "prompt_quality": 0.5, "optimized_prompt_quality": 0.6})
    assert adv.why("why?")  # the plain answer, since the model failed
    logged = (tunewise_home / "tunewise.log").read_text()
    assert "AuthenticationError" in logged and KEY not in logged
    assert KEY not in _all_run_log_text(tunewise_home / "runlog.duckdb")


def test_a_report_carries_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import report

    monkeypatch.setenv("OPENAI_API_KEY", "zz-report-key-5150")
    log = RunLog()
    rid = log.start_run("train", config={"model": "tiny"}, method="lora", model="tiny")
    log.update_run(rid, status="failed", error="endpoint said zz-report-key-5150 is wrong")
    real_gather = report.gather
    # a row that reached the report some other way than the run log is masked at the write too
    def gather(run_id: str) -> dict[str, Any]:
        facts = real_gather(run_id)
        facts["run"] = {**facts["run"], "model": "tiny zz-report-key-5150"}
        return facts

    monkeypatch.setattr(report, "gather", gather)
    for name in ("r.html", "r.md"):
        text = report.build_report(rid, tmp_path / name).read_text()
        assert "tiny [REDACTED]" in text and "zz-report-key-5150" not in text
