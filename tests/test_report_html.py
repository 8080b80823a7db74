"""report.html as a reader gets it, from run folders written by hand (no training: fast).

Two tasks (`split` uniform and quadrant), three seeds a side; the conv baseline logs twelve
epochs, CoordConv one (as the toy recipes do), so its curve is one point. The HTML is parsed
with html.parser: a heading per group titled by what sets it apart, numbers as numbers,
every picture embedded, nothing fetched from elsewhere. With Chromium installed, the page is
also rendered to a screenshot.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cc_bench import report
from cc_bench.config import config_to_dict
from cc_bench.report import plots
from cc_bench.report.tables import fmt_interval, fmt_num
from cc_bench.stats import Interval
from cc_bench.toy.configs import ClassificationConfig

BENCH = "toy.classification"
T0 = 1_700_000_000.0
# What each side trained with (per-conv recipes), as config.json's `resolved` records it.
RECIPES = {"conv": {"epochs": 12, "lr": 0.01}, "coordconv": {"epochs": 1, "lr": 0.005}}
WALL_S = {"conv": 60.0, "coordconv": 4.0}


def write_run(root: Path, conv: str, seed: int, split: str, **meta: Any) -> Path:
    """A finished toy.classification run folder as the runner leaves it."""
    cfg = ClassificationConfig(conv=conv, seed=seed, split=split)
    given = config_to_dict(cfg)
    run_dir = root / "toy" / BENCH / f"{conv}_seed{seed}_{split}"
    (run_dir / "media").mkdir(parents=True)
    epochs = RECIPES[conv]["epochs"]
    acc = 1.0 if conv == "coordconv" else 0.2 + 0.01 * seed + (0.3 if split == "uniform" else 0)
    (run_dir / "config.json").write_text(
        json.dumps(
            {
                "benchmark": BENCH,
                "run_id": run_dir.name,
                "suite": "toy",
                "config": given,
                "resolved": {**given, **RECIPES[conv]},
                "version": "0.1.0",
                "git_commit": "1a2b3c4d5e6f7a8b9c0d",
                "created": "2025-01-01T00:00:00+0000",
                **meta,
            }
        )
    )
    step_s = WALL_S[conv] / epochs
    lines = [
        {"step": e, "time": T0 + e * step_s, "test/acc": acc * e / epochs, "train/loss": 1 / e}
        for e in range(1, epochs + 1)
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    metrics = {
        "test_acc": acc,
        "train_acc": acc,
        "test_loss": 1.0 - acc,
        "train_loss": 1.0 - acc,
        "params": 103_585 if conv == "conv" else 45,
        "wall_s": WALL_S[conv] + seed,
        "time_to_perfect_s": None,
    }
    summary = {"status": "finished", "metrics": metrics, "wall_s": WALL_S[conv] + seed}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    picture = np.zeros((64, 64, 3), dtype=np.uint8)
    picture[8 * seed : 8 * seed + 9, 20:29] = (255, 200, 0) if conv == "conv" else (0, 200, 255)
    Image.fromarray(picture).save(run_dir / "media" / f"test_predictions_{epochs}.png")
    return run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("runs")
    for split in ("uniform", "quadrant"):
        for conv in ("conv", "coordconv"):
            for seed in range(3):
                write_run(root, conv, seed, split)
    out = root / "report"
    report.build_report(report.load_runs(root), out, source=str(root))
    page = (out / "report.html").read_text()
    parser = PageParser()
    parser.feed(page)
    return {"root": root, "out": out, "page": page, "doc": parser}


class PageParser(HTMLParser):
    """Headings, table cells (with their class), images, links and figure rows of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.cells: list[tuple[str, str]] = []  # (class, text) of every <td>
        self.images: list[str] = []
        self.links: list[str] = []
        self.rows: list[int] = []  # figures per side-by-side row
        self.tags: set[str] = set()
        self._text: list[str] | None = None
        self._tag = ""
        self._class = ""
        self._depth_row: int | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        self._depth += tag == "div"
        if tag in ("h1", "h2", "h3", "td"):
            self._text, self._tag, self._class = [], tag, a.get("class") or ""
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag in ("a", "link", "script", "iframe"):
            self.links.append(a.get("href") or a.get("src") or "")
        if tag == "div" and a.get("class") == "row":
            self._depth_row = self._depth
            self.rows.append(0)
        elif tag == "figure" and self._depth_row is not None:
            self.rows[-1] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self._depth_row == self._depth:
                self._depth_row = None
            self._depth -= 1
        if self._text is not None and tag == self._tag:
            text = "".join(self._text).strip()
            if tag == "td":
                self.cells.append((self._class, text))
            else:
                self.headings.append((tag, text))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


# -- numbers and curves ------------------------------------------------------------------------


def test_numbers_read_as_numbers() -> None:
    assert fmt_num(103_585) == "103,585"
    assert fmt_num(103_585.4) == "103,585"
    assert fmt_num(0.987654) == "0.9877"
    assert fmt_num(12.3456) == "12.35"
    assert fmt_num(1.0) == "1" and fmt_num(0.5) == "0.5" and fmt_num(0) == "0"
    assert fmt_num(-0.046875) == "-0.04688"
    assert fmt_num(0.0123, sign=True) == "+0.0123"
    assert fmt_num(2.5e-5) == "2.500e-05"  # tiny numbers keep an exponent
    assert fmt_num(float("nan")) == "—" and fmt_num(None) == "—"
    assert fmt_interval(Interval(0.5, 0.25, 0.75)) == "0.5 [0.25 to 0.75]"
    assert fmt_interval(Interval(45.0, 45.0, 45.0)) == "45 (no spread)"
    assert fmt_interval(Interval(3.0)) == "3"
    assert fmt_interval(Interval(-4488.2, -4488.4, -4488.0)) == "-4,488.2 [-4,488.4 to -4,488]"


def test_time_curves_are_wall_seconds_from_the_start() -> None:
    one = report.RunRecord(BENCH, "r", {"conv": "coordconv"}, "finished", wall_s=4.0)
    one.history = [{"step": 1, "time": T0 + 99.0, "test/acc": 1.0}]
    assert plots.run_curve(one, "test/acc", "time") == ([4.0], [1.0])  # not a point at 0
    two = report.RunRecord(BENCH, "r", {"conv": "conv"}, "finished", wall_s=10.0)
    two.history = [{"step": 1, "time": T0 + 5, "m": 1.0}, {"step": 2, "time": T0 + 9, "m": 2.0}]
    assert plots.run_curve(two, "m", "time") == ([6.0, 10.0], [1.0, 2.0])
    assert plots.run_curve(two, "m", "step") == ([1.0, 2.0], [1.0, 2.0])


def test_a_one_epoch_curve_is_drawn_with_markers(
    built: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    saved: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.append(fig) or path)
    (group, *_) = report.group_runs(report.load_runs(built["root"]))
    assert group.curve_x == "time"
    plots.plot_curves(group, built["out"] / "unused.png")
    ax = next(a for a in saved[0].axes if a.get_title() == "test/acc")
    coord = [line for line in ax.get_lines() if line.get_color() == plots.COLORS["coordconv"]]
    assert len(coord) == 3  # one line per seed: wall seconds differ between seeds
    assert all(line.get_marker() == "o" for line in coord)
    xs = sorted(list(line.get_xdata()) for line in coord)
    assert xs == [[WALL_S["coordconv"] + seed] for seed in range(3)]  # at its wall time
    assert "wall seconds" in ax.get_xlabel()


# -- the page ------------------------------------------------------------------------------


def test_a_heading_per_group_titled_by_what_differs(built: dict[str, Any]) -> None:
    h2 = [text for tag, text in built["doc"].headings if tag == "h2"]
    assert h2 == [
        "Overview",
        "Across tasks",
        f"{BENCH} · split=quadrant",
        f"{BENCH} · split=uniform",
    ]
    assert [t for tag, t in built["doc"].headings if tag == "h3"].count("test_predictions") == 2


def test_the_config_line_shows_what_each_side_trained_with(built: dict[str, Any]) -> None:
    page = built["page"]
    assert "epochs: conv 12, CoordConv 1; lr: conv 0.01, CoordConv 0.005" in page
    assert "epochs=0" not in page and "lr=0.0" not in page


def test_table_numbers_are_formatted(built: dict[str, Any]) -> None:
    cells = built["doc"].cells
    numeric = [text for cls, text in cells if cls == "num"]
    assert "103,585 (no spread)" in numeric and "45 (no spread)" in numeric
    assert len(numeric) > 40
    number = r"[+-]?(\d{1,3}(,\d{3})*(\.\d+)?|\d\.\d{3}e[+-]\d\d)"
    cell = re.compile(rf"^(<0\.001|—|{number}( \[{number} to {number}\]| \(no spread\))?)$")
    for text in numeric:
        assert cell.match(text), text
    assert not any("e+" in text for _, text in cells)  # no 1.036e+05
    verdicts = [text for cls, text in cells if cls == "verdict"]
    assert set(verdicts) <= {"better", "similar", "worse", "—"} and "better" in verdicts


def test_every_picture_is_embedded_and_nothing_is_fetched(built: dict[str, Any]) -> None:
    doc = built["doc"]
    assert len(doc.images) >= 2 + 3 * 2  # aggregate + per group: curves, bars, 2 pictures
    for src in doc.images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            image.verify()
    assert all(link.startswith("#") for link in doc.links)  # the contents' anchors only
    assert not doc.tags & {"script", "link", "iframe"}
    assert "http://" not in built["page"] and "https://" not in built["page"]


def test_pictures_sit_side_by_side(built: dict[str, Any]) -> None:
    assert built["doc"].rows == [2, 2]  # per group: conv beside CoordConv


def test_screenshot_in_chromium(built: dict[str, Any], tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    shot = tmp_path / "report.png"
    html_path = (built["out"] / "report.html").resolve()
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1400,2000",
            html_path.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (2000, 1400)
    assert (pixels < 128).mean() > 0.01  # text and plots, not a blank page
