"""Product tiles as small, self-contained SVGs: a flat colour, one simple shape, the product's initials.

Pure functions (no Django): `product_svg(seed)` returns the SVG text that `shop_images` writes.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.sax.saxutils import escape

from shop.catalogue import ProductSeed

SIZE = 400
ATTRIBUTE_ENTITIES = {'"': "&quot;"}


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _mix(colour: str, other: str, amount: float) -> str:
    """`amount` of `other` blended into `colour` (0 = colour, 1 = other)."""
    a, b = _rgb(colour), _rgb(other)
    return "#" + "".join(f"{round(x + (y - x) * amount):02X}" for x, y in zip(a, b, strict=True))


def _is_light(colour: str) -> bool:
    r, g, b = _rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 150


def _rings(light: str, dark: str) -> str:
    return "".join(
        f'<circle cx="270" cy="150" r="{r}" fill="none" stroke="{light}" stroke-width="18"/>' for r in (40, 80, 120)
    )


def _cup(light: str, dark: str) -> str:
    return (
        f'<ellipse cx="260" cy="235" rx="110" ry="18" fill="{dark}"/>'
        f'<path d="M180 90h160v90a60 60 0 0 1-60 60h-40a60 60 0 0 1-60-60z" fill="{light}"/>'
        f'<path d="M340 115h18a28 28 0 0 1 0 56h-18" fill="none" stroke="{light}" stroke-width="14"/>'
    )


def _card(light: str, dark: str) -> str:
    return (
        f'<rect x="150" y="70" width="200" height="130" rx="18" fill="{light}" transform="rotate(-8 250 135)"/>'
        f'<rect x="180" y="105" width="44" height="34" rx="6" fill="{dark}" transform="rotate(-8 250 135)"/>'
        f'<circle cx="322" cy="92" r="10" fill="{dark}" transform="rotate(-8 250 135)"/>'
    )


def _jar(light: str, dark: str) -> str:
    return (
        f'<rect x="200" y="60" width="120" height="34" rx="8" fill="{dark}"/>'
        f'<rect x="185" y="90" width="150" height="160" rx="26" fill="{light}"/>'
        f'<rect x="205" y="140" width="110" height="56" rx="6" fill="{dark}" opacity="0.55"/>'
    )


def _flower(light: str, dark: str) -> str:
    petals = "".join(
        f'<circle cx="270" cy="150" r="34" fill="{light}" transform="rotate({angle} 270 150) translate(0 -70)"/>'
        for angle in range(0, 360, 45)
    )
    return petals + f'<circle cx="270" cy="150" r="62" fill="{light}"/><circle cx="270" cy="150" r="26" fill="{dark}"/>'


def _disc(light: str, dark: str) -> str:
    return f'<circle cx="270" cy="150" r="110" fill="{light}"/><circle cx="270" cy="150" r="60" fill="{dark}"/>'


def _tram(light: str, dark: str) -> str:
    windows = "".join(
        f'<rect x="{x}" y="{y}" width="34" height="30" rx="5" fill="{dark}"/>'
        for y in (90, 150)
        for x in (176, 222, 268, 314)
    )
    return (
        f'<rect x="160" y="70" width="204" height="160" rx="22" fill="{light}"/>{windows}'
        f'<rect x="160" y="238" width="204" height="8" rx="4" fill="{light}"/>'
    )


def _waves(light: str, dark: str) -> str:
    return "".join(
        f'<path d="M110 {y}q35-30 70 0t70 0t70 0t70 0" fill="none" stroke="{light}" stroke-width="16" '
        f'stroke-linecap="round"/>'
        for y in (100, 150, 200)
    )


def _stripes(light: str, dark: str) -> str:
    return (
        '<g transform="rotate(-20 250 150)">'
        f'<rect x="120" y="70" width="280" height="44" fill="{light}"/>'
        '<rect x="120" y="114" width="280" height="44" fill="#FFFFFF" opacity="0.85"/>'
        f'<rect x="120" y="158" width="280" height="44" fill="{dark}"/>'
        "</g>"
    )


def _neon(light: str, dark: str) -> str:
    return (
        f'<rect x="170" y="60" width="180" height="120" rx="14" fill="none" stroke="{light}" stroke-width="10"/>'
        f'<path d="M205 150v-60l50 60v-60M285 90h35M285 120h28M285 150h35" fill="none" stroke="{light}" '
        'stroke-width="10" stroke-linecap="round" stroke-linejoin="round"/>'
        f'<path d="M260 180v50" stroke="{light}" stroke-width="8"/>'
    )


def _ticket(light: str, dark: str) -> str:
    return (
        f'<path d="M150 80h220v40a24 24 0 0 0 0 48v40H150v-40a24 24 0 0 0 0-48z" fill="{light}"/>'
        f'<path d="M300 90v108" stroke="{dark}" stroke-width="6" stroke-dasharray="10 8"/>'
    )


def _tile(light: str, dark: str) -> str:
    cells = []
    for x in (170, 270):
        for y in (50, 150):
            cells.append(
                f'<rect x="{x}" y="{y}" width="96" height="96" fill="{light}"/>'
                f'<circle cx="{x + 48}" cy="{y + 48}" r="28" fill="{dark}"/>'
                f'<path d="M{x} {y + 48}h96M{x + 48} {y}v96" stroke="{dark}" stroke-width="4"/>'
            )
    return "".join(cells)


def _arch(light: str, dark: str) -> str:
    arches = "".join(f'<path d="M{x} 230v-60a22 22 0 0 1 44 0v60z" fill="{dark}"/>' for x in (190, 248, 306))
    return f'<path d="M170 230V110h180v120z" fill="{light}"/><path d="M200 110l60-50 60 50z" fill="{light}"/>{arches}'


SHAPES: dict[str, Callable[[str, str], str]] = {
    "rings": _rings,
    "cup": _cup,
    "card": _card,
    "jar": _jar,
    "flower": _flower,
    "disc": _disc,
    "tram": _tram,
    "waves": _waves,
    "stripes": _stripes,
    "neon": _neon,
    "ticket": _ticket,
    "tile": _tile,
    "arch": _arch,
}


def product_svg(seed: ProductSeed) -> str:
    """The tile for one product: its colour, its shape in lighter and darker tones, its initials."""
    light, dark = _mix(seed.colour, "#FFFFFF", 0.35), _mix(seed.colour, "#000000", 0.22)
    ink = "#1F1A14" if _is_light(seed.colour) else "#FFFFFF"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}" role="img" '
        f'aria-label="{escape(seed.name, ATTRIBUTE_ENTITIES)}">'
        f'<rect width="{SIZE}" height="{SIZE}" fill="{seed.colour}"/>'
        f"{SHAPES[seed.shape](light, dark)}"
        f'<text x="36" y="356" fill="{ink}" font-family="system-ui, -apple-system, \'Segoe UI\', Helvetica, Arial, '
        f'sans-serif" font-size="96" font-weight="700" letter-spacing="4">{escape(seed.initials)}</text>'
        "</svg>\n"
    )
