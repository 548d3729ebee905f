"""Figures and reports: confusion matrices, training curves, overlays, tables, HTML."""

from perpixel.viz.report import (
    per_class_csv,
    per_class_table,
    plot_confusion,
    plot_curves,
    plot_overlays,
    summary_table,
    write_html_report,
)

__all__ = [
    "per_class_csv",
    "per_class_table",
    "plot_confusion",
    "plot_curves",
    "plot_overlays",
    "summary_table",
    "write_html_report",
]
