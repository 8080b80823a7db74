"""report.html as a reader gets it, from run folders written by hand (no training: fast).

Two tasks (`split` uniform and quadrant), three seeds a side; the conv baseline logs twelve
epochs, CoordConv one (as the toy recipes do), so its curve is one point. The HTML is parsed
with html.parser: a heading per group titled by what sets it apart, numbers as numbers,
every picture embedded, nothing fetched from elsewhere. With Chromium installed, the page is
also rendered to a screenshot.
"""

from __future__ import annotations

import base64
import html
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
from cc_bench.report.document import Section, Table, to_html
from cc_bench.report.tables import fmt_interval, fmt_num, fmt_p, slug
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
                "resolved": {**config_to_dict(cfg.resolve()), **RECIPES[conv]},
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
    assert fmt_num(2.5e-5) == "0.000025"  # decimals down to 10^-6
    assert fmt_num(2.5e-9) == "2.500e-09"  # an exponent below
    assert fmt_num(float("nan")) == "—" and fmt_num(None) == "—"
    assert fmt_interval(Interval(0.5, 0.25, 0.75)) == "0.5 [0.25 to 0.75]"
    assert fmt_interval(Interval(45.0, 45.0, 45.0)) == "45 (no spread)"
    assert fmt_interval(Interval(3.0)) == "3"
    assert fmt_interval(Interval(-4488.2, -4488.4, -4488.0)) == "-4,488.2 [-4,488.4 to -4,488]"


def test_p_values_never_round_across_the_verdicts_threshold() -> None:
    assert fmt_p(0.0321) == "0.032" and fmt_p(0.0004) == "<0.001" and fmt_p(float("nan")) == "—"
    assert fmt_p(0.04993) == "0.0499"  # not "0.050" beside a verdict that needs p < 0.05
    assert fmt_p(0.04996) == "0.04996"
    assert fmt_p(0.0501) == "0.050"  # 0.050 and not significant: consistent


def test_file_names_from_long_titles_stay_short_and_distinct() -> None:
    assert slug("toy.classification · split=quadrant") == "toy.classification_split=quadrant"
    a, b = (
        slug("toy.classification · " + " ".join(f"f{i}={i + x}" for i in range(40))) for x in (0, 1)
    )
    assert a != b and len(a) <= 89 and len(b) <= 89


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
    assert group.curve_x == "step"  # toy: epochs, the same examples seen on both sides
    plots.plot_curves(group, built["out"] / "unused.png")
    ax = next(a for a in saved[0].axes if a.get_title() == "test/acc")
    coord = [line for line in ax.get_lines() if line.get_color() == plots.COLORS["coordconv"]]
    assert len(coord) == 1  # the median of the three seeds, which share their epochs
    assert coord[0].get_marker() == "o"
    assert list(coord[0].get_xdata()) == [1.0]  # its one epoch, visible as a point
    assert coord[0].get_ydata()[0] == pytest.approx(1.0)
    conv = [line for line in ax.get_lines() if line.get_color() == plots.COLORS["conv"]]
    assert list(conv[0].get_xdata()) == [float(e) for e in range(1, 13)]
    assert ax.get_xlabel().startswith("epochs")


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
    assert "epochs: conv 12, CoordConv 1; batch_size: conv 32, CoordConv 16; lr: conv 0.01" in page
    assert "epochs=0" not in page and "lr=0.0" not in page and "batch_size=0" not in page


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


# Appended to a copy of the page (the report itself has no script): once everything has
# loaded, it writes what Chromium laid out into the DOM, which --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const box = (e) => e.getBoundingClientRect();
  const out = {
    viewport: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    body: box(document.body).right,
    height: document.documentElement.scrollHeight,
    images: [...document.images].map((i) => ({
      decoded: i.complete && i.naturalWidth > 0,
      natural: [i.naturalWidth, i.naturalHeight],
      box: [box(i).left, box(i).top + window.scrollY, box(i).width, box(i).height],
    })),
    tables: [...document.querySelectorAll("table")].map((t) => ({
      rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,
      right: box(t).right,
    })),
    sections: [...document.querySelectorAll("h2")].map((h) => box(h).top + window.scrollY),
  };
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""
WINDOW = (1400, 1000)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium at WINDOW's size with `args`; skips the test where none is installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", size]
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


def probe_layout(page: str, folder: Path) -> dict[str, Any]:
    """Chromium's layout of `page` (see PROBE)."""
    probe = folder / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run: {dom[-500:]!r}"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def layout(built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What Chromium laid out: every image's decoded size and place, tables, page size."""
    return probe_layout(built["page"], tmp_path_factory.mktemp("probe"))


def test_chromium_decodes_every_picture_and_fits_the_page(
    built: dict[str, Any], layout: dict[str, Any]
) -> None:
    images = layout["images"]
    assert len(images) == len(built["doc"].images) >= 8
    for image in images:
        assert image["decoded"], image  # a broken data: URI has no natural size
        left, _, width, height = image["box"]
        assert width >= 100 and height >= 60, image  # drawn, not collapsed to a sliver
        assert left >= 0 and left + width <= layout["viewport"], image
    # Nothing wider than the window: every column of every table is on screen.
    assert layout["scrollWidth"] <= layout["viewport"]
    assert all(t["right"] <= layout["body"] + 0.5 for t in layout["tables"])
    assert layout["tables"] and all(t["rows"] >= 1 for t in layout["tables"])


def test_a_wide_table_wraps_its_intervals_instead_of_running_off_the_page(
    tmp_path: Path,
) -> None:
    # A group's table with the long intervals a loss near zero gets (toy.regression's).
    header = ["metric", "better", "conv mean [95% CI]", "n", "CoordConv mean [95% CI]", "n"]
    header += ["Δ CoordConv − conv [95% CI]", "p (Welch)", "CoordConv is"]
    row = ["time_to_perfect_s", "lower", "0.0001058 [0.00007656 to 0.0001371]", "3"]
    row += ["1.668e-09 [7.999e-10 to 2.236e-09]", "3", "-0.0001058 [-0.0001371 to -0.00007656]"]
    table = Table(header, [[*row, "0.026", "better"]] * 3)
    page = to_html([Section("wide", [table])], "wide")
    shown = probe_layout(page, tmp_path)
    assert shown["scrollWidth"] <= shown["viewport"]
    assert shown["tables"][0]["right"] <= shown["body"] + 0.5  # within the text's column


def test_chromium_page_height_fits_its_sections(
    built: dict[str, Any], layout: dict[str, Any]
) -> None:
    tops = layout["sections"]
    assert len(tops) == 4 and tops == sorted(tops)  # overview, across tasks, two groups
    # Each group's section holds at least its figures, one above the other or side by side.
    for start, end in zip(tops[2:], [*tops[3:], layout["height"]], strict=True):
        inside = [i["box"] for i in layout["images"] if start < i["box"][1] < end]
        assert len(inside) == 4  # curves, final metrics, conv's and CoordConv's picture
        assert end - start >= sum(b[3] for b in inside[:2]) + max(b[3] for b in inside[2:])
    assert layout["height"] < 40 * WINDOW[1]  # no runaway layout


def test_screenshot_shows_each_picture_where_the_page_puts_it(
    built: dict[str, Any], layout: dict[str, Any], tmp_path: Path
) -> None:
    """The pixels Chromium paints in the first picture's box are that picture's own."""
    page = tmp_path / "report.html"
    page.write_text(built["page"])
    first = layout["images"][0]
    left, top, width, height = (round(v) for v in first["box"])
    shot = tmp_path / "shot.png"
    # A window tall enough that the first picture is on screen.
    size = f"--window-size={WINDOW[0]},{top + height + 50}"
    chromium(size, f"--screenshot={shot}", page.as_uri())
    with Image.open(shot) as image:
        painted = np.asarray(image.convert("L"), dtype=float)
    src = built["doc"].images[0]
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
        expected = np.asarray(
            image.convert("L").resize((width, height), Image.Resampling.BILINEAR), dtype=float
        )
    region = painted[top : top + height, left : left + width]
    assert region.shape == expected.shape
    assert expected.std() > 20  # the plot has lines and text to compare
    assert np.abs(region - expected).mean() < 12  # that plot, in that place
    shifted = painted[top : top + height, left + width // 3 : left + width // 3 + width]
    if shifted.shape == expected.shape:
        assert np.abs(shifted - expected).mean() > np.abs(region - expected).mean() + 5
