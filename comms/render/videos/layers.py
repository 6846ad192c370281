"""Layers as pictures: text, images, logos and QR codes drawn into RGBA sprites placed on the frame.

Text is shaped by raqm (Hebrew right-to-left with its bidi runs, ligatures), wrapped at spaces (never at the
non-breaking spaces CLDR puts inside amounts) or between CJK characters (not before closing punctuation),
and shrunk step by step until it fits its box; a line is as tall as the face's ascent plus descent, so
descenders are never clipped. Every sprite is cropped to its ink and placed on even pixels, so the 4:2:0
chroma planes line up. A QR code is drawn module by module with whole-pixel modules and a light quiet zone
(no 1-bit PNG on the way: moviepy and friends read those as booleans).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFilter

from .fonts import Fonts, truetype
from .spec import Layer, rgba

REFERENCE_SHORT_SIDE = 720
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
_NO_LINE_START = set("，。、！？；：）」』】》〉,.!?;:)]}…・ー％%")
_TOKEN = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f]|[^ \u2e80-\u9fff"
                    r"\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+| +")


@dataclass
class Sprite:
    """An RGBA picture (uint8, h x w x 4, even sizes) at an even position (x, y) of the frame."""

    rgba: np.ndarray
    x: int
    y: int
    font_size: int = 0  # text: the size it was drawn at, after shrinking to fit

    @property
    def w(self) -> int:
        return self.rgba.shape[1]

    @property
    def h(self) -> int:
        return self.rgba.shape[0]


def _even(v: float) -> int:
    return int(round(v / 2.0)) * 2


def box_pixels(layer: Layer, fmt: str, size: tuple[int, int], rtl: bool, mirror: bool) -> tuple[int, int, int, int]:
    x, y, w, h = layer.box_for(fmt)
    if rtl and mirror:
        x = 1.0 - x - w
    W, H = size
    return _even(x * W), _even(y * H), max(2, _even(w * W)), max(2, _even(h * H))


def _to_sprite(img: Image.Image, bx: int, by: int) -> Sprite | None:
    """Crop a box-sized RGBA image to its ink, pad to even sizes, return it at its place on the frame."""
    bbox = img.getchannel("A").getbbox()
    if bbox is None:
        return None
    l, t, r, b = bbox
    l, t = l - (l % 2), t - (t % 2)
    r, b = r + (r - l) % 2, b + (b - t) % 2
    arr = np.zeros((b - t, r - l, 4), np.uint8)
    crop = np.asarray(img.crop((l, t, min(r, img.width), min(b, img.height))))
    arr[:crop.shape[0], :crop.shape[1]] = crop
    return Sprite(arr, bx + l, by + t)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        if out and tok[0] in _NO_LINE_START and not out[-1].isspace():
            out[-1] += tok  # keep closing punctuation on the line it closes
        else:
            out.append(tok)
    return out


def wrap(text: str, measure, width: float) -> list[str]:
    """Greedy line breaking at spaces and between CJK characters; a word wider than the line is split."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for tok in _tokens(paragraph):
            candidate = line + tok
            if not line or measure(candidate.rstrip()) <= width:
                line = candidate if line or not tok.isspace() else ""
                continue
            lines.append(line.rstrip())
            line = "" if tok.isspace() else tok
        lines.append(line.rstrip())
    out: list[str] = []
    for line in lines:  # split what still does not fit (a very long name), character by character
        while line and measure(line) > width:
            cut = next((i for i in range(len(line) - 1, 0, -1) if measure(line[:i]) <= width), 1)
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def draw_text(text: str, layer: Layer, box: tuple[int, int, int, int], scale: float, fonts: Fonts, lang: str,
              rtl: bool) -> Sprite | None:
    """The text in its box: shaped, wrapped, shrunk to fit, aligned, cropped to the ink."""
    text = text.strip()
    if not text:
        return None
    bx, by, bw, bh = box
    face = fonts.pick(text, lang, layer.font)
    direction = "rtl" if rtl else "ltr"
    raqm_lang = lang.split("-")[0] or None
    size = max(6, int(layer.size * scale))
    floor = max(6, int(size * 0.35))
    pad = max(2, size // 10)
    while True:
        font = truetype(face.path, face.index, size)

        def measure(s: str, font=font) -> float:
            return font.getlength(s, direction=direction, language=raqm_lang) if s else 0.0

        lines = wrap(text, measure, bw - 2 * pad)
        ascent, descent = font.getmetrics()
        line_h = math.ceil((ascent + descent) * layer.line_spacing)
        height = line_h * (len(lines) - 1) + ascent + descent + 2 * pad
        if height <= bh or size <= floor:
            break
        size = max(floor, int(size * 0.9))
    if height > bh:  # still too tall at the smallest size: keep what fits, mark the cut
        keep = max(1, (bh - ascent - descent - 2 * pad) // line_h + 1)
        lines = lines[:keep]
        lines[-1] = lines[-1].rstrip()[:-1] + "…" if len(lines[-1]) > 1 else lines[-1]
        height = line_h * (len(lines) - 1) + ascent + descent + 2 * pad
    img = Image.new("RGBA", (bw, max(bh, height)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    top = {"top": 0, "middle": (bh - height) // 2, "bottom": bh - height}[layer.valign] + pad
    align = layer.align
    if rtl and align != "center":
        align = "end" if align == "start" else "start"
    x, anchor = {"start": (pad, "la"), "center": (bw // 2, "ma"), "end": (bw - pad, "ra")}[align]
    color = rgba(layer.color)
    if layer.shadow:
        shadow = Image.new("RGBA", img.size, (0, 0, 0, 0))
        sdraw = ImageDraw.Draw(shadow)
        off = max(1, size // 24)
        for i, line in enumerate(lines):
            sdraw.text((x + off, max(0, top) + i * line_h + off), line, font=font, fill=(0, 0, 0, 150),
                       anchor=anchor, direction=direction, language=raqm_lang)
        img = Image.alpha_composite(img, shadow.filter(ImageFilter.GaussianBlur(max(1, size // 16))))
        draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((x, max(0, top) + i * line_h), line, font=font, fill=color, anchor=anchor, direction=direction,
                  language=raqm_lang)
    sprite = _to_sprite(img, bx, by + min(0, top))
    if sprite is not None:
        sprite.font_size = size
    return sprite


@lru_cache(maxsize=32)
def _image(path: Path, mtime_ns: int, bw: int, bh: int, align: str, valign: str) -> Image.Image:
    with Image.open(path) as src:
        pic = src.convert("RGBA")
    ratio = min(bw / pic.width, bh / pic.height)
    pic = pic.resize((max(1, round(pic.width * ratio)), max(1, round(pic.height * ratio))), Image.LANCZOS)
    canvas = Image.new("RGBA", (bw, bh), (0, 0, 0, 0))
    x = {"start": 0, "center": (bw - pic.width) // 2, "end": bw - pic.width}[align]
    y = {"top": 0, "middle": (bh - pic.height) // 2, "bottom": bh - pic.height}[valign]
    canvas.paste(pic, (x, y))
    return canvas


def draw_image(path: Path, layer: Layer, box: tuple[int, int, int, int], rtl: bool) -> Sprite | None:
    """An image or logo from media/, fitted inside its box (aspect kept), aligned like text."""
    bx, by, bw, bh = box
    align = layer.align
    if rtl and align != "center":
        align = "end" if align == "start" else "start"
    return _to_sprite(_image(path, path.stat().st_mtime_ns, bw, bh, align, layer.valign), bx, by)


def draw_qr(data: str, layer: Layer, box: tuple[int, int, int, int], rtl: bool) -> Sprite | None:
    """The QR code of ``data`` (error correction M), as large as whole-pixel modules allow in the box."""
    data = data.strip()
    if not data:
        return None
    bx, by, bw, bh = box
    matrix = np.array(segno.make(data, error="m", micro=False, boost_error=False).matrix, dtype=bool)
    quiet = 4
    n = matrix.shape[0] + 2 * quiet
    module = max(1, min(bw, bh) // n)
    side = n * module
    side += side % 2
    dark, light = np.array(rgba(layer.dark), np.uint8), np.array(rgba(layer.light), np.uint8)
    img = np.empty((side, side, 4), np.uint8)
    img[:] = light
    big = np.repeat(np.repeat(matrix, module, axis=0), module, axis=1)
    q = quiet * module
    img[q:q + big.shape[0], q:q + big.shape[1]][big] = dark
    align = layer.align
    if rtl and align != "center":
        align = "end" if align == "start" else "start"
    x = {"start": 0, "center": (bw - side) // 2, "end": bw - side}[align]
    y = {"top": 0, "middle": (bh - side) // 2, "bottom": bh - side}[layer.valign]
    return Sprite(img, bx + _even(max(x, 0)), by + _even(max(y, 0)))
