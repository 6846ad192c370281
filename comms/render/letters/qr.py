"""QR codes for letters: small PNG data URLs, one pixel per module, scaled up by CSS without smoothing.

A QR code as an 8-bit grey PNG of one pixel per module is a few hundred bytes and costs WeasyPrint almost
nothing to place, where an SVG with one path segment per module is parsed and drawn for every customer.
The CSS gives the image its printed size and ``image-rendering: pixelated`` (the PDF image then says
/Interpolate false), so the modules stay sharp at any printer resolution. Grey, not 1-bit: WeasyPrint
declares embedded PNG data as 8 bits per component.

The mask pattern is fixed instead of chosen by segno's penalty search: the search is pure Python and took
three quarters of the time of a whole QR code (about 5 ms per code, two codes per letter). Every mask is
valid and decoders read it from the symbol's format information; the penalty only avoids patterns that
look like finder patterns, which random-looking payloads (signed tokens) rarely produce. The tests decode
every code with zbar.
"""

from __future__ import annotations

import base64
import io

import segno
from PIL import Image

# Four modules of quiet zone, as ISO/IEC 18004 asks.
BORDER = 4
MASK = 2


def _png_data_url(qr: segno.QRCode) -> str:
    size = len(qr.matrix) + 2 * BORDER
    pixels = bytearray(b"\xff" * (size * size))
    for y, row in enumerate(qr.matrix, start=BORDER):
        base = y * size + BORDER
        for x, dark in enumerate(row):
            if dark:
                pixels[base + x] = 0
    out = io.BytesIO()
    Image.frombytes("L", (size, size), bytes(pixels)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def qr_png_data_url(text: str, *, error: str = "m", max_version: int = 40) -> str:
    """``data:image/png;base64,...`` of a QR code encoding ``text`` as UTF-8 bytes (no ECI header);
    ``max_version`` caps the symbol size for standards that ask for it (EPC: 13)."""
    qr = segno.make_qr(text, error=error, boost_error=False, mode="byte", encoding="utf-8", mask=MASK)
    if qr.version > max_version:
        raise ValueError(f"payload needs QR version {qr.version}, at most {max_version} allowed")
    return _png_data_url(qr)
