"""HTML reports: self-contained (every image embedded, no external reference), and rendered by a real browser."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest

from promedical.bench.compare import compare_rows
from promedical.bench.metrics import response_rows, summarise
from promedical.bench.report import render_compare, render_run
from promedical.rubrics.scoring import RewardParams
from tests.helpers_bench import three_responses

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run() -> tuple[dict, list[dict]]:
    rubrics, responses, verdicts = three_responses()
    rows, _ = response_rows(rubrics, responses, verdicts, RewardParams())
    summary = summarise(rows, n_resamples=500)
    summary.update({"policy_label": "policy <b>x</b>", "judge": "test-judge", "audit": None})
    return summary, rows


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_run_report_is_self_contained_and_has_the_plots() -> None:
    summary, rows = _run()
    page = render_run(summary, rows)
    images = _images(page)
    assert len(images) == 4  # axis, tier, veto by category, distributions
    assert all(img.startswith(PNG_MAGIC) and len(img) > 2000 for img in images)
    assert not re.search(r"""(src|href)=["'](https?:|//)""", page)  # nothing fetched from anywhere
    assert "policy &lt;b&gt;x&lt;/b&gt;" in page  # user text escaped
    assert "independence not audited" in page
    assert "safety compliance (fail closed)" in page and "33.3%" in page


def test_compare_report_has_the_forest_plot() -> None:
    summary, rows = _run()
    result = compare_rows(rows, rows, names=("a", "b"), n_resamples=200)
    page = render_compare(result, summary, summary)
    assert len(_images(page)) == 1 and "Paired differences" in page and "Lexicographic" in page


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    summary, rows = _run()
    page = tmp_path / "report.html"
    page.write_text(render_run(summary, rows), encoding="utf-8")
    shot = tmp_path / "report.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
                    f"--screenshot={shot}", page.as_uri()], check=True, timeout=120, capture_output=True)
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    from matplotlib import image

    pixels = image.imread(str(shot))
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1100
    # a blank (all-white) page would mean nothing rendered: plots and tables make the page far from uniform
    assert float(pixels[..., :3].std()) > 0.05
