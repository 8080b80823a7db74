"""The document: sections of blocks (text, tables, figures), rendered as Markdown and HTML.

The HTML page is self-contained (inline CSS, every image a `data:` URI, no script, no link
out), so it can be mailed or attached as one file.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cc_bench.report.groups import Group


@dataclass(frozen=True)
class Text:
    """A paragraph; `backticks` mark code."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of strings."""

    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    """A PNG in the report folder."""

    path: Path
    caption: str


@dataclass(frozen=True)
class FigureRow:
    """Pictures side by side (conv beside CoordConv), each with its caption, under a title."""

    title: str
    figures: list[Figure]


Block = Text | Table | Figure | FigureRow


@dataclass
class Section:
    """A titled part of the report; a group's section also carries the group (for W&B panels)."""

    title: str
    blocks: list[Block]
    group: Group | None = None


# -- Markdown --------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """A table in Markdown (GitHub's pipe tables)."""
    lines = [
        "| " + " | ".join(map(_md_cell, table.header)) + " |",
        "|" + "---|" * len(table.header),
        *("| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows),
    ]
    return "\n".join(lines)


def _md_figure(figure: Figure, out_dir: Path) -> str:
    return f"![{figure.caption}]({figure.path.relative_to(out_dir).as_posix()})"


# What marks a file as a report this command wrote, so that it rewrites its own files and
# no one else's.
MARK_MD = "<!-- written by `cc-bench report`: rewritten on every report into this folder -->"
MARK_HTML = '<meta name="generator" content="cc-bench report">'


def written_by_report(path: Path) -> bool:
    """Whether the file at `path` is a report this command wrote (older reports, before the
    mark, by the method note every report ends its overview with)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return MARK_MD in text[:500] or MARK_HTML in text[:500] or "Method. Per group:" in text


def to_markdown(sections: Sequence[Section], title: str, out_dir: Path) -> str:
    """The report as Markdown, images linked relative to `out_dir`."""
    parts = [MARK_MD, f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        for block in section.blocks:
            if isinstance(block, Text):
                parts.append(block.text)
            elif isinstance(block, Table):
                parts.append(markdown_table(block))
            elif isinstance(block, FigureRow):
                parts.append(f"**{block.title}**")
                parts.append(
                    markdown_table(
                        Table(
                            [f.caption for f in block.figures],
                            [[_md_figure(f, out_dir) for f in block.figures]],
                        )
                    )
                )
            else:
                parts.append(_md_figure(block, out_dir))
    return "\n\n".join(parts) + "\n"


# -- HTML ------------------------------------------------------------------------------------


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2.2em; }
h3 { font-size: 1em; margin: 1.4em 0 0.4em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num span { white-space: nowrap; }
tr.v-better td.verdict { background: #e3f4e3; } tr.v-worse td.verdict { background: #fbe3e3; }
code { background: #f3f3f3; padding: 0 0.2em; }
figure { margin: 1em 0; } img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.row { display: flex; gap: 1.5em; flex-wrap: wrap; align-items: flex-start; }
.row figure { margin: 0.3em 0; }
.row img { image-rendering: pixelated; min-width: 160px; max-width: 560px; }
nav ol { columns: 2; font-size: 0.9em; }
p.note { background: #fff6dd; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
"""

# A cell that reads as a number (or an interval of numbers, or —) is aligned right.
_NUMERIC = re.compile(r"^[+\-<]?[\d,.]+(e[+-]\d+)?( \[[^\]]*\]| \(no spread\))?$|^—$")


def _html_text(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_figure(figure: Figure) -> str:
    alt = html.escape(figure.caption.replace("`", ""))
    return (
        f'<figure><img alt="{alt}" src="{_data_uri(figure.path)}">'
        f"<figcaption>{_html_text(figure.caption)}</figcaption></figure>"
    )


def _html_num(cell: str) -> str:
    """A number cell: the estimate and its interval each kept whole, wrapping between them
    when the table would be wider than the page."""
    value, space, interval = cell.partition(" ")
    parts = [value, interval] if space else [value]
    return " ".join(f"<span>{_html_text(p)}</span>" for p in parts)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    verdict = table.header.index("CoordConv is") if "CoordConv is" in table.header else None
    rows = []
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            cls = "verdict" if i == verdict else "num" if _NUMERIC.match(cell) else ""
            attr = f' class="{cls}"' if cls else ""
            text = _html_num(cell) if cls == "num" else _html_text(cell)
            cells.append(f"<td{attr}>{text}</td>")
        tr = f' class="v-{row[verdict]}"' if verdict is not None else ""
        rows.append(f"<tr{tr}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        attr = ' class="note"' if block.text.startswith("Note:") else ""
        return f"<p{attr}>{_html_text(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, FigureRow):
        figures = "".join(_html_figure(f) for f in block.figures)
        return f'<h3>{html.escape(block.title)}</h3><div class="row">{figures}</div>'
    return _html_figure(block)


def anchor(title: str) -> str:
    """The HTML id of a section's heading."""
    return "s-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def to_html(sections: Sequence[Section], title: str) -> str:
    """The report as one self-contained HTML page: inline CSS, images as data URIs."""
    toc = "".join(
        f'<li><a href="#{anchor(s.title)}">{html.escape(s.title)}</a></li>' for s in sections
    )
    body = [f"<h1>{html.escape(title)}</h1>", f"<nav><ol>{toc}</ol></nav>"]
    for section in sections:
        body.append(f'<h2 id="{anchor(section.title)}">{html.escape(section.title)}</h2>')
        body.extend(_html_block(b) for b in section.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        + MARK_HTML
        + f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
