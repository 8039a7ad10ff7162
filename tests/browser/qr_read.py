"""Reading a QR code as a phone camera would: a real decoder (zxing-cpp) on a PNG screenshot of the page,
never the markup. Also measures what a camera needs around and in the code it found: its size in CSS
pixels and the light quiet zone around it, read from the same pixels."""

from __future__ import annotations

import io
from dataclasses import dataclass

import zxingcpp
from PIL import Image

LIGHT = 200  # a pixel at least this bright (0-255, grey) counts as light


@dataclass(frozen=True)
class FoundQr:
    text: str
    modules: int  # per side, without the quiet zone (21 + 4 x (version - 1))
    left: float  # the symbol's edges in screenshot pixels (quiet zone excluded)
    top: float
    right: float
    bottom: float

    @property
    def module_px(self) -> float:
        return (self.right - self.left) / self.modules


def read_qr_codes(png: bytes) -> tuple[Image.Image, list[FoundQr]]:
    """Every QR code zxing-cpp finds in the PNG, with its position."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    found = []
    for code in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode):
        version = int(code.extra["Version"])
        corners = code.position
        xs = [corners.top_left.x, corners.top_right.x, corners.bottom_left.x, corners.bottom_right.x]
        ys = [corners.top_left.y, corners.top_right.y, corners.bottom_left.y, corners.bottom_right.y]
        found.append(FoundQr(code.text, 17 + 4 * version, min(xs), min(ys), max(xs), max(ys)))
    return image, found


def quiet_zone_modules(image: Image.Image, qr: FoundQr, *, wanted: int = 4) -> int:
    """How many whole modules of light pixels surround the symbol on all four sides (counted up to `wanted`,
    and cut short by the screenshot's edge, as a camera's frame would be)."""
    grey = image.convert("L")
    width, height = grey.size
    step = qr.module_px
    pixels = grey.load()
    assert pixels is not None
    for ring in range(wanted):
        # The band `ring` modules out from the symbol, sampled at each module's centre along the four sides.
        offset = (ring + 0.5) * step
        left, right = qr.left - offset, qr.right + offset
        top, bottom = qr.top - offset, qr.bottom + offset
        points = []
        count = qr.modules + 2 * (ring + 1)
        for i in range(count):
            along = (i + 0.5 - (ring + 1)) * step
            x, y = qr.left + along, qr.top + along
            points += [(x, top), (x, bottom), (left, y), (right, y)]
        for x, y in points:
            ix, iy = round(x), round(y)
            if not (0 <= ix < width and 0 <= iy < height) or pixels[ix, iy] < LIGHT:  # type: ignore[operator]
                return ring
    return wanted
