"""The report page: report.html with the summary, per-class table and figures."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from perpixel.viz.figures import DASH, METRICS
from perpixel.viz.tables import _fmt, _per_class_rows, _write_utf8

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;
color:#222}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}th{background:#f3f3f3}
th,td{border:1px solid #ddd;padding:.25em .7em}tr.summary td{background:#fafafa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}table.extra td:first-child{color:#555}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption,.muted{color:#666;font-size:.9em}"""


def format_value(value: object) -> str:
    """A report value as a reader wants it: floats rounded (4 significant digits, seconds to
    0.1), mappings as `key value, key value`, sequences joined by commas."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return DASH
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _info_table(info: Mapping[str, object]) -> str:
    esc = html.escape
    kv = "".join(
        f"<tr><td>{esc(str(k))}</td><td>{esc(format_value(v))}</td></tr>" for k, v in info.items()
    )
    return f'<table class="extra">{kv}</table>'


def _head(title: str) -> list[str]:
    t = html.escape(title)
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{t}</title><style>{CSS}</style></head><body>",
        f"<h1>{t}</h1>",
    ]


def _figures(out_dir: Path, figures: Sequence[tuple[str, str]]) -> list[str]:
    esc = html.escape
    parts = ["<h2>Figures</h2>"] if figures else []
    for caption, fig_path in figures:
        src = esc(_figure_src(out_dir, fig_path), quote=True)
        cap = esc(caption, quote=True)
        parts.append(
            f'<figure><img src="{src}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
        )
    return parts


def write_run_page(
    out_dir: str | Path,
    title: str,
    info: Mapping[str, object],
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[object]]]],
    figures: Sequence[tuple[str, str]] = (),
    notes: Sequence[str] = (),
) -> Path:
    """Write `out_dir/report.html` for any task: the `info` key/values, then each table as
    (heading, header, rows of values), figures as (caption, path relative to `out_dir`), notes."""
    out_dir = Path(out_dir)
    esc = html.escape
    parts = _head(title) + [_info_table(info)]
    for heading, header, rows in tables:
        parts.append(f"<h2>{esc(heading)}</h2>")
        cells = [[esc(format_value(v)) for v in row] for row in rows]
        parts.append(_html_table([esc(h) for h in header], cells))
    parts += _figures(out_dir, figures)
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    return _write_utf8(out_dir / "report.html", "\n".join(parts))


def _html_table(header: list[str], rows: list[list[str]], tr_class: Sequence[str] = ()) -> str:
    """`header` and `rows` hold escaped HTML; cells after the first are right-aligned numbers."""
    out = ["<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>"]
    for i, row in enumerate(rows):
        tr = f' class="{tr_class[i]}"' if i < len(tr_class) and tr_class[i] else ""
        tds = "".join(f'<td class="num">{v}</td>' for v in row[1:])
        out.append(f"<tr{tr}><td>{row[0]}</td>{tds}</tr>")
    return "\n".join(out) + "\n</table>"


def _figure_src(out_dir: Path, fig_path: str | Path) -> str:
    """The `src` of a figure: relative to `out_dir` (an absolute path must lie inside it)."""
    p = Path(fig_path)
    p = p.relative_to(out_dir.resolve()) if p.is_absolute() else p
    return quote(p.as_posix(), safe="/")


def write_html_report(
    out_dir: str | Path,
    title: str,
    results: Mapping[str, Mapping],
    names: list[str],
    figures: Sequence[tuple[str, str]],
    notes: Sequence[str] = (),
    extra: Mapping[str, object] | None = None,
) -> Path:
    """Write `out_dir/report.html`, one self-contained page (inline CSS, no scripts).

    Shows the title, `extra` key/values, a summary table per model, the per-class IoU table
    (best model per class in bold), each figure as (caption, path relative to `out_dir`)
    and the notes. Returns the path of the page.
    """
    out_dir = Path(out_dir)
    esc = html.escape
    parts = _head(title)
    if extra:
        parts.append(_info_table(extra))

    parts.append("<h2>Summary</h2>")
    rows = [[esc(str(m))] + [_fmt(r.get(k)) for k, _ in METRICS] for m, r in results.items()]
    parts.append(_html_table(["model"] + [label for _, label in METRICS], rows))

    parts.append("<h2>Per-class IoU</h2>")
    rows, classes = [], []
    for i, (label, values) in enumerate(_per_class_rows(results, names)):
        finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        best = max(finite) if len(results) > 1 and finite else None
        cells = [f"<b>{_fmt(v)}</b>" if best is not None and v == best else _fmt(v) for v in values]
        rows.append([esc(str(label)), *cells])
        classes.append("summary" if i >= len(names) else "")
    parts.append(_html_table(["class"] + [f"{esc(str(m))} IoU" for m in results], rows, classes))
    parts.append(
        f'<p class="muted">{DASH}: class absent from both ground truth and prediction '
        "(left out of the means).</p>"
    )

    parts += _figures(out_dir, figures)
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    return _write_utf8(out_dir / "report.html", "\n".join(parts))
