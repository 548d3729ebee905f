"""Generic figures and the report page: confusion matrices, training curves, overlays,
tables, report.html. Task-specific figures live with their task."""

from perpixel.viz.figures import (
    curve_keys,
    plot_bars,
    plot_confusion,
    plot_curves,
    plot_overlays,
    save_figure,
)
from perpixel.viz.html import format_value, write_html_report, write_run_page
from perpixel.viz.tables import per_class_csv, per_class_table, summary_table

__all__ = [
    "curve_keys",
    "format_value",
    "per_class_csv",
    "per_class_table",
    "plot_bars",
    "plot_confusion",
    "plot_curves",
    "plot_overlays",
    "save_figure",
    "summary_table",
    "write_html_report",
    "write_run_page",
]
