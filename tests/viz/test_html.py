"""Report values print as a reader wants them: numbers rounded, mappings as `key value`."""

import math

from perpixel.viz import format_value, write_html_report, write_run_page


def test_format_value():
    assert format_value(0.123456789) == "0.1235"
    assert format_value(1234.5678) == "1234.6"
    assert format_value({"unet": 12.345678, "linear": 1.5}) == "unet 12.35, linear 1.5"
    assert format_value([0.5, "a"]) == "0.5, a"
    assert format_value(math.nan) == "—" and format_value(None) == "None"
    assert format_value(3) == "3" and format_value(True) == "True"


def test_report_info_prints_numbers_not_dicts(tmp_path):
    results = {"m": {"miou": 0.5, "confusion_matrix": [[1]], "per_class_iou": {"a": 0.5}}}
    page = write_html_report(
        tmp_path, "t", results, ["a"], [], extra={"train_seconds": {"unet": 12.3456}}
    )
    text = page.read_text()
    assert "unet 12.35" in text and "{" not in text.split("<body>")[1]


def test_run_page(tmp_path):
    page = write_run_page(
        tmp_path,
        "Training run x",
        {"date": "2026-11-21"},
        [("Validation", ["metric", "best"], [["val/miou", 0.41234]])],
    )
    text = page.read_text()
    assert "<h1>Training run x</h1>" in text and "0.4123" in text and "val/miou" in text
