"""Report building blocks: sections, escaped HTML tables, Markdown tables, the page itself.

The HTML page is self-contained: styles inline, plots as ``data:image/png;base64`` URIs, no
script and nothing fetched (the favicon is an empty data URI so a browser does not ask for one).
Every piece of text that comes from data (data set names, criterion specs, error messages,
file names) goes through ``html.escape`` here, in ``cell`` and ``para``; section builders pass
plain text and never format HTML from data themselves. The Markdown form escapes the same text
with :func:`md` (``<``, ``>`` and ``&``: Markdown renderers pass raw HTML through, so a study
named ``<img src=x onerror=...>`` must not become markup in report.md either); the Markdown
markup the blocks add themselves (``**``, ``###``, table pipes) is left as it is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
summary { cursor: pointer; } summary h2 { display: inline-block; margin-bottom: .3em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
tr.best td { background: #e3f4e3; font-weight: 600; } tr.tie td { background: #f4f8e8; }
.note { color: #666; font-size: .9em; } .pass { color: #17752b; font-weight: 600; }
.fail { color: #b3261e; font-weight: 600; } .weak { color: #9a6700; font-weight: 600; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
nav ul { columns: 2; }
"""


@dataclass
class Part:
    """One block of a section, in both output forms."""

    html: str
    markdown: str


@dataclass
class Section:
    anchor: str
    title: str
    parts: list[Part] = field(default_factory=list)
    folded: bool = False  # in HTML, a closed <details> under its heading (the detail below the answer)

    def add(self, part: Part | None) -> None:
        if part is not None:
            self.parts.append(part)

    def __bool__(self) -> bool:
        return bool(self.parts)


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def md(text: Any) -> str:
    """Text for report.md: HTML's special characters escaped (entities render as the characters)."""
    return html.escape(str(text), quote=False)


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}g}"
    return str(value)


def para(text: str, css: str = "") -> Part:
    cls = f' class="{css}"' if css else ""
    return Part(f"<p{cls}>{esc(text)}</p>", md(text))


def heading(text: str) -> Part:
    return Part(f"<h3>{esc(text)}</h3>", f"### {md(text)}")


def status_line(label: str, outcome: str, text: str) -> Part:
    """A cross-check result: outcome is pass, fail, weak or skip."""
    css = {"pass": "pass", "fail": "fail", "weak": "weak"}.get(outcome, "note")
    return Part(
        f'<p><span class="{css}">{esc(label)}</span> {esc(text)}</p>', f"- **{md(label)}** {md(text)}"
    )


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] | None = None
) -> Part:
    classes = list(row_classes or [""] * len(rows))
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(row_html(row, css) for row, css in zip(rows, classes, strict=True))
    markdown = "| " + " | ".join(md_cell(h) for h in header) + " |\n|" + "---|" * len(header) + "\n"
    markdown += "\n".join("| " + " | ".join(md_cell(fmt(v)) for v in row) + " |" for row in rows)
    return Part(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", markdown)


def md_cell(text: Any) -> str:
    """A Markdown table cell: escaped, pipes and line breaks kept from splitting the row."""
    return md(" ".join(str(text).split())).replace("|", "\\|")


def row_html(row: Sequence[Any], css: str) -> str:
    cls = f' class="{esc(css)}"' if css else ""
    return f"<tr{cls}>" + "".join(f"<td>{esc(fmt(v))}</td>" for v in row) + "</tr>"


def image(data_uri: str, alt: str) -> Part:
    if not data_uri.startswith("data:image/png;base64,"):
        raise ValueError("report images must be embedded PNG data URIs")
    return Part(f'<img src="{data_uri}" alt="{esc(alt)}">', f"*(figure in report.html: {md(alt)})*")


def section_html(section: Section) -> str:
    """A section: its heading and parts, the parts folded into <details> when ``folded``."""
    inner = "".join(p.html for p in section.parts)
    if section.folded:
        return (
            f'<section id="{esc(section.anchor)}"><details><summary><h2>{esc(section.title)}</h2>'
            f"</summary>{inner}</details></section>"
        )
    return f'<section id="{esc(section.anchor)}"><h2>{esc(section.title)}</h2>{inner}</section>'


def render_html(title: str, intro: Sequence[Part], sections: Sequence[Section]) -> str:
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(section_html(s) for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1>"
        + "".join(p.html for p in intro)
        + f"<nav><ul>{toc}</ul></nav>{body}</body></html>\n"
    )


def render_markdown(title: str, intro: Sequence[Part], sections: Sequence[Section]) -> str:
    lines = [f"# {md(title)}", ""]
    lines += [p.markdown + "\n" for p in intro]
    for s in sections:
        lines += [f"## {md(s.title)}", ""]
        lines += [p.markdown + "\n" for p in s.parts]
    return "\n".join(lines).rstrip() + "\n"
