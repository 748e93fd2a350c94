"""``tunewise doctor``: is this machine ready? Python, torch, device, bitsandbytes, embedded model, run log."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import typer

from cli.common import JsonOpt, human, print_json


def doctor_report(*, load_model: bool = True) -> dict[str, Any]:
    """Collect the facts. ``load_model`` actually loads the embedded model to prove it works."""
    from tools import models, paths
    from tools.device import detect
    from tools.runlog import RunLog

    report: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        report["torch"] = {"version": torch.__version__, "cuda_build": torch.version.cuda,
                           "threads": torch.get_num_threads()}
    except ImportError as e:  # pragma: no cover - torch is a dependency
        report["torch"] = {"error": str(e)}
    report["device"] = detect().to_dict()
    try:
        report["bitsandbytes"] = {"version": metadata.version("bitsandbytes"), "importable": _bnb_ok()}
    except metadata.PackageNotFoundError:
        report["bitsandbytes"] = {"version": None, "importable": False}

    emb: dict[str, Any] = {"name": models.EMBEDDED_NAME, "gguf": str(models.embedded_gguf_path() or ""),
                           "path": None, "loadable": False}
    try:
        path = models.ensure_embedded()
        emb["path"] = str(path)
        if load_model:
            import time

            t0 = time.perf_counter()
            model, tok = models.load_model(models.resolve(None))
            emb["load_seconds"] = round(time.perf_counter() - t0, 2)
            emb["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
        emb["loadable"] = True
    except Exception as e:  # noqa: BLE001 - doctor reports every failure instead of stopping
        emb["error"] = str(e)
    report["embedded_model"] = emb

    log = RunLog()
    try:
        report["runlog"] = {"path": str(log.path), "schema_version": log.schema_version()}
    except Exception as e:  # noqa: BLE001
        report["runlog"] = {"path": str(log.path), "schema_version": None, "error": str(e)}
    report["home"] = str(paths.home())
    report["cache"] = str(paths.cache_dir())
    report["ok"] = bool(emb["loadable"] and report["runlog"].get("schema_version"))
    return report


def _bnb_ok() -> bool:
    try:
        import bitsandbytes  # noqa: F401

        return True
    except Exception:  # noqa: BLE001 - a broken native library raises all sorts
        return False


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(json_out: bool = JsonOpt) -> None:
        """Check Python, torch, the device, bitsandbytes, the embedded model and the run log."""
        r = doctor_report()
        if json_out:
            print_json(r)
        else:
            from rich.table import Table

            t = Table(title="tunewise doctor", show_header=False)
            dev = r["device"]
            mem = f", {dev['gpu_memory_gb']} GB x {dev['gpus']}" if dev["kind"] == "cuda" else ""
            emb = r["embedded_model"]
            rows = [
                ("Python", r["python"]),
                ("torch", r["torch"].get("version", r["torch"].get("error"))),
                ("device", f"{dev['kind']} ({dev['name']}){mem}, bf16={'yes' if dev['bf16'] else 'no'}, "
                           f"{dev['cpu_count']} CPUs"),
                ("bitsandbytes", f"{r['bitsandbytes']['version']} "
                                 f"({'ok' if r['bitsandbytes']['importable'] else 'not importable'})"),
                ("embedded model", f"{'[green]loadable[/]' if emb['loadable'] else '[red]not loadable[/]'} "
                                   f"{emb.get('path') or emb.get('error', '')}"),
                ("run log", f"{r['runlog']['path']} (schema v{r['runlog']['schema_version']})"),
            ]
            for k, v in rows:
                t.add_row(k, str(v))
            human(False).print(t)
        if not r["ok"]:
            raise typer.Exit(1)
