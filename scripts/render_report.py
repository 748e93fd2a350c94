"""Render a tunewise HTML report to a PNG with headless Chromium, to check it by eye (or in a test).

    python scripts/render_report.py report.html report.png [--width 1200 --height 3000]

Exits 3 when no Chromium is installed (``apt-get install -y chromium``), so a test can skip cleanly.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def render(html: Path, png: Path, *, width: int = 1200, height: int = 3000, timeout_s: float = 90) -> Path:
    """Screenshot ``html`` into ``png``; raises RuntimeError when Chromium is missing or fails."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found; install it with `apt-get install -y chromium`")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tunewise-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
               f"--screenshot={png}", f"--window-size={width},{height}", html.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0 or not png.exists() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium failed ({r.returncode}): {r.stderr[-800:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=3000)
    args = ap.parse_args(argv)
    if find_browser() is None:
        print("no Chromium found; install it with `apt-get install -y chromium`", file=sys.stderr)
        return 3
    out = render(args.html, args.png, width=args.width, height=args.height)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
