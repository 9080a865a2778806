"""Screenshot HTML emails in headless Chromium, at desktop (600 px) and phone (375 px) widths.

    python -m sim.screenshot                      # render the samples into out/, screenshot them
    python -m sim.screenshot out/digest.html ...  # screenshot existing HTML files
    python -m sim.screenshot --out out/screens --widths 600,375 --scale 2

Each page is measured first (Chromium ``--dump-dom`` of a probe page that loads it in an iframe of the
target width and writes its height into the title; the email itself never carries JavaScript), then
captured at exactly that height, so the PNG holds the whole email. Plain-text files (``.txt``) are
wrapped in a minimal ``<pre>`` preview page first, roughly how a mail app shows a text/plain message.

Local-only tooling: needs ``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WIDTHS = (600, 375)
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# Headless Chromium lays out --dump-dom pages at no less than 500 px, so the page is measured inside an
# iframe of exactly the target width (file:// access between the two needs --allow-file-access-from-files).
PROBE_PAGE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="{src}" style="border:0;width:{width}px;height:400px"></iframe>
<script>document.getElementById('f').addEventListener('load', function () {{
  var doc = this.contentDocument, body = doc.body ? doc.body.scrollHeight : 0;
  document.title = 'EWH:' + Math.ceil(Math.max(doc.documentElement.scrollHeight, body));
}});</script></body></html>
"""


def find_chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        path = shutil.which(candidate)
        if path:
            return path
    raise SystemExit("chromium not found: install it with `apt-get install -y chromium`")


def _chromium(binary: str, profile: str, width: int, height: int, *extra: str, scale: float = 1) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--mute-audio",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        f"--force-device-scale-factor={scale}",
        f"--window-size={width},{height}",
        *extra,
    ]


def measure_height(binary: str, profile: str, page: Path, width: int) -> int:
    """The document height of ``page`` laid out at ``width`` CSS pixels (the email stays script-free)."""
    with tempfile.TemporaryDirectory(prefix="ew-probe-") as probe_dir:
        probe = Path(probe_dir) / "probe.html"
        probe.write_text(PROBE_PAGE.format(src=page.resolve().as_uri(), width=width), encoding="utf-8")
        result = subprocess.run(
            [
                *_chromium(binary, profile, max(width, 500) + 40, 800),
                "--allow-file-access-from-files",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    match = re.search(r"EWH:(\d+)", result.stdout)
    if not match:
        raise RuntimeError(f"could not measure {page} at {width}px: {result.stderr.strip()[-400:]}")
    return max(200, int(match.group(1)))


def screenshot(binary: str, page: Path, width: int, png: Path, scale: float = 1) -> Path:
    """Capture the whole of ``page`` at ``width`` px into ``png``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ew-chromium-") as profile:
        height = measure_height(binary, profile, page, width)
        result = subprocess.run(
            [
                *_chromium(binary, profile, width, height, scale=scale),
                f"--screenshot={png.resolve()}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if result.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium failed on {page}: {result.stderr.strip()[-400:]}")
    return png


def text_preview(text_file: Path, out_dir: Path) -> Path:
    """Wrap a text/plain body in a phone-mail-app-like preview page."""
    body = html.escape(text_file.read_text(encoding="utf-8"))
    page = out_dir / f"{text_file.name}.html"
    page.write_text(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(text_file.name)}</title></head>"
        "<body style='margin:0;background:#fff;'>"
        "<pre style='margin:0;padding:16px;white-space:pre-wrap;overflow-wrap:anywhere;"
        "font-family:Menlo,Consolas,DejaVu Sans Mono,monospace;font-size:13px;line-height:1.45;color:#111;'>"
        f"{body}</pre></body></html>\n",
        encoding="utf-8",
    )
    return page


def render_samples(out_dir: Path) -> list[Path]:
    """Render the sample digest (HTML + text) and alert (text + subject) into ``out_dir``."""
    try:
        from emberwatch import render
    except ImportError:  # running from a checkout without `pip install -e .`
        sys.path.insert(0, str(REPO / "layers" / "emberwatch"))
        from emberwatch import render

    out_dir.mkdir(parents=True, exist_ok=True)
    digest = render.sample_digest_context()
    alert = render.sample_alert_context()
    files = {
        "digest.html": render.render("digest.html.j2", digest=digest),
        "digest.txt": render.render("digest.txt.j2", digest=digest),
        "alert.txt": render.render("alert.txt.j2", alert=alert),
        "alert_subject.txt": render.render("alert_subject.txt.j2", alert=alert),
    }
    for name, content in files.items():
        (out_dir / name).write_text(content, encoding="utf-8")
        print(f"wrote {out_dir / name}")
    return [out_dir / "digest.html", out_dir / "digest.txt", out_dir / "alert.txt"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="*", type=Path, help="HTML (or .txt) files; default: the rendered samples"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/screens"), help="where PNGs go (default out/screens)"
    )
    parser.add_argument(
        "--samples-dir", type=Path, default=Path("out"), help="where samples render (default out)"
    )
    parser.add_argument(
        "--widths", default=",".join(map(str, DEFAULT_WIDTHS)), help="comma-separated CSS widths"
    )
    parser.add_argument(
        "--scale", type=float, default=1, help="device scale factor (2 for retina-sharp PNGs)"
    )
    args = parser.parse_args(argv)

    binary = find_chromium()
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    files = args.files or render_samples(args.samples_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    preview_dir = Path(tempfile.mkdtemp(prefix="ew-previews-"))
    try:
        for source in files:
            if not source.exists():
                print(f"missing: {source}", file=sys.stderr)
                return 2
            page = text_preview(source, preview_dir) if source.suffix == ".txt" else source
            stem = source.name.replace(".", "_")
            for width in widths:
                png = screenshot(binary, page, width, args.out / f"{stem}-{width}.png", scale=args.scale)
                print(f"wrote {png}")
    finally:
        shutil.rmtree(preview_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
