"""The trial report in a real browser: Debian's headless Chromium renders it, screenshots it
and dumps its DOM; every image is an embedded PNG that decodes, and nothing overflows the
page's column.

The screenshot is kept (``tests/artifacts/report.png``, or ``$RJTRIAL_ARTIFACTS/report.png``)
for a person to look at. Without Chromium the test is skipped, except under CI (``CI=true``),
where it fails: ``scripts/chromium.sh`` installs it.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from test_report import ROOT, simulated_report

WIDTH, HEIGHT = 1280, 9000
COLUMN = 1080  # the page's max-width (main), centred
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        message = "Debian's chromium is not installed (bash scripts/chromium.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def written_report(tmp_path_factory) -> Path:
    html, _ = simulated_report(tmp_path_factory.getbasetemp())  # with victims and costs: every section
    artifacts = Path(os.environ.get("RJTRIAL_ARTIFACTS") or ROOT / "tests" / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    target = artifacts / "report.html"
    shutil.copyfile(html, target)
    return target


def _run(browser: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *arguments], capture_output=True, timeout=180)


def test_screenshot_is_whole_and_nothing_overflows(written_report, tmp_path):
    from PIL import Image

    browser = chromium()
    shot = written_report.with_name("report.png")
    shot.unlink(missing_ok=True)
    done = _run(
        browser,
        tmp_path / "profile",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={shot}",
        written_report.resolve().as_uri(),
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr.decode(errors="replace")[-2000:]
    grey = np.asarray(Image.open(shot).convert("L"))
    assert grey.shape == (HEIGHT, WIDTH)
    inked_rows = np.flatnonzero((grey < 245).any(axis=1))
    assert inked_rows.size and inked_rows.max() < HEIGHT - 100, "the page is longer than the screenshot"
    assert inked_rows.max() > 3000, "the page is too short to hold the report"
    margin = (WIDTH - COLUMN) // 2 - 4
    assert (grey[:, :margin] >= 250).all(), "something is drawn left of the page's column"
    assert (grey[:, WIDTH - margin :] >= 250).all(), "something overflows right of the page's column"


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def test_every_image_in_the_rendered_dom_is_a_valid_png(written_report, tmp_path):
    from PIL import Image

    browser = chromium()
    done = _run(browser, tmp_path / "profile", "--dump-dom", written_report.resolve().as_uri())
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    parser = _Images()
    parser.feed(done.stdout.decode("utf-8"))
    assert len(parser.images) == 3  # CONSORT, Kaplan–Meier, forest
    for image in parser.images:
        src = image.get("src", "")
        assert src.startswith("data:image/png;base64,"), src[:60]
        picture = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        picture.verify()
        assert picture.size[0] > 500 and picture.size[1] > 300, (image.get("alt"), picture.size)
        assert image.get("alt")
