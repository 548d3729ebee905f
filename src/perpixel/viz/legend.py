"""A class legend drawn with PIL alone (no matplotlib): colour swatch + class name per class,
as a strip to append below a label picture (`perpixel predict`'s NAME_color / NAME_overlay)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from perpixel.data.taxonomy import Taxonomy

VOID_COLOR = (0, 0, 0)  # ignore value and unknown ids: black, as Taxonomy.colorize draws them
VOID_NAME = "void / ignored"
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
MIN_LEGEND_WIDTH = 128  # `with_legend` widens narrower pictures to this, for the names


def legend_entries(ids: np.ndarray, taxonomy: Taxonomy) -> list[tuple[tuple[int, int, int], str]]:
    """(colour, name) of each class id found in `ids` (any shape), in id order, then one
    (VOID_COLOR, "void / ignored") entry when `ids` holds anything outside 0..num_classes-1
    (the ignore value or an unknown id)."""
    found = np.unique(np.asarray(ids).astype(np.int64))
    known = (found >= 0) & (found < taxonomy.num_classes)
    entries = [(taxonomy.colors[int(k)], taxonomy.names[int(k)]) for k in found[known]]
    if not known.all():
        entries.append((VOID_COLOR, VOID_NAME))
    return entries


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: the fixed-size bitmap font
        return ImageFont.load_default()


def legend_strip(ids: np.ndarray, taxonomy: Taxonomy, width: int) -> np.ndarray:
    """A white (h, `width`, 3) uint8 strip naming the classes of `ids` (see `legend_entries`):
    per class a swatch of its colour (outlined in grey) and its name, left to right, wrapped
    onto as many lines as `width` needs. The text grows with `width` (11 to 32 px); a name
    too long for a line on its own is cut short with "...". Without any entry the strip is
    empty (0 rows)."""
    if width < 1:
        raise ValueError(f"legend width must be positive, got {width}")
    entries = legend_entries(ids, taxonomy)
    if not entries:
        return np.zeros((0, width, 3), dtype=np.uint8)
    font = _font(int(np.clip(width // 48, 11, 32)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_width(text: str) -> int:
        return int(np.ceil(probe.textlength(text, font=font)))

    line_h = max(int(probe.textbbox((0, 0), "Ag", font=font)[3]), 8)  # text drawn from y = 0
    side = line_h  # square swatch as tall as the text
    gap, pad, margin = max(side // 3, 3), max(side // 2, 4), max(side // 2, 4)
    usable = max(width - 2 * margin, 1)

    placed: list[tuple[int, int, tuple[int, int, int], str]] = []  # x, line, colour, text
    x, line = 0, 0
    for colour, name in entries:
        text, room = name, usable - side - gap
        if text_width(text) > room:  # a name wider than a line on its own: cut it short
            while text and text_width(text + "...") > room:
                text = text[:-1]
            text = text.rstrip() + "..."
        w = side + gap + text_width(text)
        if x > 0 and x + w > usable:
            x, line = 0, line + 1
        placed.append((x, line, colour, text))
        x += w + 2 * pad

    row_h = line_h + pad
    height = (line + 1) * row_h + pad
    strip = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for x, line, colour, text in placed:
        left, top = margin + x, pad + line * row_h
        draw.rectangle(
            (left, top, left + side - 1, top + side - 1), fill=colour, outline=(128, 128, 128)
        )
        draw.text((left + side + gap, top), text, fill=TEXT, font=font)
    return np.asarray(strip, dtype=np.uint8).copy()


def with_legend(picture: np.ndarray, ids: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """`picture` (H, W, 3) uint8 with `legend_strip(ids, taxonomy, ...)` appended below it.

    The result's top-left H x W block is `picture` unchanged. It is W wide, or
    `MIN_LEGEND_WIDTH` for a narrower picture (padded white on its right) so that class names
    stay readable."""
    picture = np.asarray(picture)
    if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != np.uint8:
        raise ValueError(f"picture must be (H, W, 3) uint8, not {picture.dtype} {picture.shape}")
    h, w = picture.shape[:2]
    width = max(w, MIN_LEGEND_WIDTH)
    strip = legend_strip(ids, taxonomy, width)
    out = np.empty((h + strip.shape[0], width, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    out[:h, :w] = picture
    out[h:] = strip
    return out
