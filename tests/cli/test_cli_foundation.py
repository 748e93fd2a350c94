from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tw(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_help_lists_commands() -> None:
    r = tw("--help")
    for cmd in ("doctor", "runs"):
        assert cmd in r.stdout


@pytest.mark.real_model
def test_doctor_json_is_one_document_and_model_loadable(real_model_dir: Path) -> None:
    r = tw("doctor", "--json")
    doc = json.loads(r.stdout)  # fails if anything else was printed on stdout
    assert doc["embedded_model"]["loadable"] is True
    assert doc["embedded_model"]["name"] == "smollm2-135m-instruct"
    assert Path(doc["embedded_model"]["path"]) == real_model_dir
    assert doc["runlog"]["schema_version"] >= 1
    assert doc["device"]["kind"] in ("cpu", "cuda")


def test_runs_list_show_sql_json(tunewise_home: Path) -> None:
    from tools.runlog import RunLog

    rid = RunLog().start_run("train", config={"lr": 0.001}, method="lora")
    listed = json.loads(tw("runs", "list", "--json").stdout)
    assert [r["run_id"] for r in listed["runs"]] == [rid]
    shown = json.loads(tw("runs", "show", rid, "--json").stdout)
    assert shown["run"]["config"] == {"lr": 0.001}
    rows = json.loads(tw("runs", "sql", "SELECT count(*) AS n FROM runs", "--json").stdout)
    assert rows == {"rows": [{"n": 1}]}


def test_errors_are_messages_not_tracebacks() -> None:
    r = tw("runs", "show", "no-such-run", "--json", check=False)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert json.loads(r.stdout)["error"]["what"].startswith("no run with id")
    r = tw("runs", "sql", "SELEKT 1", check=False)
    assert r.returncode == 2 and "the query failed" in r.stderr and "Traceback" not in r.stderr


def test_typer_abort_and_exit_are_not_internal_errors(capsys) -> None:
    """End of input at a prompt raises typer's own Abort; it must read as 'aborted', not as a bug."""
    import typer

    from cli.common import run_guarded

    def make(exc: Exception) -> typer.Typer:
        app = typer.Typer()

        @app.command()
        def go() -> None:
            raise exc

        return app

    assert run_guarded(make(typer.Abort()), []) == 130
    assert "aborted" in capsys.readouterr().err
    assert run_guarded(make(typer.Exit(3)), []) == 3
    assert "internal error" not in capsys.readouterr().err


def test_a_missing_option_is_a_usage_error_not_a_bug(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """typer 0.2x vendors click (typer._click): its MissingParameter once read as 'internal error ... a bug'."""
    from cli import app
    from cli.common import run_guarded

    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n')
    assert run_guarded(app, ["data", "split", str(data)]) == 2
    err = capsys.readouterr().err
    assert "--out-dir" in err and "internal error" not in err
    assert not (Path(os.environ["TUNEWISE_HOME"]) / "tunewise.log").exists()
