"""Digits drawn by code, as a person would draw them on the drawing pad: polylines of canvas points.

Each digit is a list of strokes in a unit box (x to the right, y down, the digit about 0.6 wide and 1 tall); arcs
are sampled every few degrees as a pointer reports them. :func:`place` puts a digit anywhere on a canvas.
"""

from __future__ import annotations

import functools
import struct
import zlib

import numpy as np


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, steps: int = 24) -> list:
    """Points of an elliptic arc from ``start`` to ``end`` degrees (0 = right, 90 = down: screen coordinates)."""
    angles = np.radians(np.linspace(start, end, steps))
    return [[cx + rx * np.cos(a), cy + ry * np.sin(a)] for a in angles]


DIGITS: dict[int, list[list]] = {
    0: [arc(0.5, 0.5, 0.3, 0.48, -90, 270, 40)],
    1: [[[0.45, 0.12], [0.55, 0.0], [0.52, 0.5], [0.5, 1.0]]],
    2: [arc(0.5, 0.28, 0.3, 0.26, 190, 370, 20) + [[0.72, 0.5], [0.2, 1.0], [0.85, 1.0]]],
    3: [arc(0.48, 0.26, 0.3, 0.25, 200, 450, 24) + arc(0.48, 0.74, 0.34, 0.26, -90, 160, 24)],
    4: [[[0.55, 0.0], [0.15, 0.65], [0.85, 0.65]], [[0.62, 0.3], [0.62, 1.0]]],
    5: [[[0.8, 0.0], [0.28, 0.0], [0.22, 0.45]] + arc(0.5, 0.7, 0.32, 0.3, -120, 150, 24)],
    6: [[[0.7, 0.0], [0.45, 0.2], [0.25, 0.55]] + arc(0.5, 0.72, 0.27, 0.28, 180, 540, 30)],
    7: [[[0.15, 0.05], [0.85, 0.05], [0.55, 0.5], [0.4, 1.0]]],
    8: [arc(0.5, 0.25, 0.24, 0.24, 90, 450, 30) + arc(0.5, 0.74, 0.3, 0.26, -90, 270, 30)],
    9: [arc(0.48, 0.3, 0.27, 0.28, 0, 360, 30) + [[0.75, 0.3], [0.7, 0.65], [0.62, 1.0]]],
}


def place(digit: int, left: float, top: float, height: float) -> list[list[list[float]]]:
    """The strokes of ``digit`` scaled to ``height`` canvas pixels with its unit box's top-left at (left, top)."""
    return [[[left + x * height, top + y * height] for x, y in stroke] for stroke in DIGITS[digit]]


@functools.cache
def huge_png(side: int = 50_000) -> bytes:
    """A real, valid 1-bit PNG of side x side white pixels (~400 kB at 50,000: 2.5 gigapixels decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(4)
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    body = b"".join(packer.compress(row * 1000) for _ in range(side // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
