"""Digits drawn as people draw them: pen strokes for a canvas, from a few handwriting styles
per digit and a "person" who draws them with their own size, slant, tilt, pen width and
shaky hand. Used to stand in for people's drawings on the real canvas (the browser test and
benchmarks/bench_drawings.py move Chromium's mouse along these strokes) and, rendered with
Pillow, in quick tests.

How a drawing is made (all in canvas pixels, 280 x 280 by default):
  1. A style of the digit: one to three strokes through control points in a unit box
     (x right, y down), e.g. a "7" with or without a crossbar, an open or a closed "4".
     Smooth pieces go through their points on a Catmull-Rom spline; straight pieces keep
     their corners.
  2. The person's hand: every control point moves by a little noise (wobble), the box is
     scaled to the person's size (45-90 % of the canvas height, +-10 % per drawing) and
     aspect, slanted (shear: x += slant * (0.5 - y)), tilted (rotation) and placed
     anywhere on the canvas that keeps the whole stroke (pen width included) inside it.
  3. The person's pen width (the page's slider, 10 to 36 px; 24 is the default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]
# A piece of a stroke: ("smooth", points) goes through the points on a spline; ("line",
# points) joins them straight, corners kept. A stroke is pieces drawn without lifting the pen.
Piece = tuple[str, list[Point]]
Stroke = list[Piece]


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float,
         count: int = 16) -> list[Point]:
    """Points on an ellipse from angle `start` to `end` in degrees (0 = right, 90 = down)."""
    angles = np.radians(np.linspace(start, end, count))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Each digit: its styles; each style: its strokes, in the order they are drawn.
STYLES: dict[str, list[list[Stroke]]] = {
    "0": [
        [[("smooth", _arc(0.5, 0.5, 0.5, 0.5, -90, -455, 24))]],  # from the top, leftwards
        [[("smooth", _arc(0.5, 0.5, 0.5, 0.5, -70, 280, 24))]],  # from the top, rightwards
    ],
    "1": [
        [[("line", [(0.5, 0.0), (0.5, 1.0)])]],
        [[("line", [(0.15, 0.22), (0.55, 0.0), (0.55, 1.0)])]],
        [[("line", [(0.15, 0.22), (0.55, 0.0), (0.55, 1.0)])],
         [("line", [(0.15, 1.0), (0.95, 1.0)])]],
    ],
    "2": [
        [[("smooth", [(0.05, 0.25), (0.3, 0.02), (0.7, 0.02), (0.92, 0.25), (0.8, 0.5),
                      (0.4, 0.78), (0.03, 1.0)]), ("line", [(0.03, 1.0), (1.0, 0.98)])]],
        [[("smooth", [(0.1, 0.2), (0.5, 0.0), (0.9, 0.2), (0.88, 0.42)]),
          ("line", [(0.88, 0.42), (0.0, 1.0), (1.0, 1.0)])]],
    ],
    "3": [
        [[("smooth", [(0.08, 0.12), (0.5, 0.0), (0.9, 0.15), (0.85, 0.38), (0.45, 0.5)]),
          ("smooth", [(0.45, 0.5), (0.95, 0.65), (0.9, 0.9), (0.5, 1.0), (0.05, 0.88)])]],
        [[("line", [(0.08, 0.0), (0.92, 0.0), (0.45, 0.42)]),
          ("smooth", [(0.45, 0.42), (0.92, 0.6), (0.88, 0.9), (0.45, 1.0), (0.05, 0.87)])]],
    ],
    "4": [
        [[("line", [(0.62, 0.0), (0.0, 0.68), (1.0, 0.68)])],
         [("line", [(0.72, 0.3), (0.72, 1.0)])]],
        [[("line", [(0.12, 0.0), (0.05, 0.6), (0.98, 0.6)])],
         [("line", [(0.75, 0.0), (0.75, 1.0)])]],
    ],
    "5": [
        [[("line", [(0.2, 0.0), (0.12, 0.45)]),
          ("smooth", [(0.12, 0.45), (0.5, 0.36), (0.9, 0.55), (0.9, 0.84), (0.5, 1.0),
                      (0.05, 0.88)])],
         [("line", [(0.2, 0.0), (0.92, 0.0)])]],
        [[("line", [(0.92, 0.0), (0.2, 0.0), (0.12, 0.45)]),
          ("smooth", [(0.12, 0.45), (0.5, 0.36), (0.92, 0.58), (0.88, 0.86), (0.48, 1.0),
                      (0.05, 0.86)])]],
    ],
    "6": [
        [[("smooth", [(0.8, 0.0), (0.4, 0.18), (0.1, 0.58), (0.15, 0.92), (0.55, 1.0),
                      (0.9, 0.8), (0.82, 0.52), (0.45, 0.45), (0.12, 0.65)])]],
        [[("smooth", [(0.7, 0.0), (0.25, 0.3), (0.05, 0.7), (0.3, 1.0), (0.75, 0.95),
                      (0.9, 0.7), (0.6, 0.5), (0.2, 0.6)])]],
    ],
    "7": [
        [[("line", [(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)])]],
        [[("line", [(0.0, 0.0), (1.0, 0.0), (0.38, 1.0)])],
         [("line", [(0.3, 0.52), (0.88, 0.52)])]],
        [[("line", [(0.0, 0.18), (0.02, 0.0), (1.0, 0.0)]),
          ("smooth", [(1.0, 0.0), (0.65, 0.45), (0.45, 1.0)])]],
    ],
    "8": [
        [[("smooth", [(0.82, 0.12), (0.5, 0.0), (0.15, 0.15), (0.25, 0.38), (0.75, 0.6),
                      (0.92, 0.85), (0.5, 1.0), (0.08, 0.85), (0.25, 0.6), (0.75, 0.38),
                      (0.86, 0.14), (0.55, 0.0)])]],
        [[("smooth", _arc(0.5, 0.24, 0.36, 0.24, 90, 450, 20))],
         [("smooth", _arc(0.5, 0.73, 0.47, 0.27, -90, 270, 20))]],
    ],
    "9": [
        [[("smooth", _arc(0.45, 0.3, 0.42, 0.3, 0, -360, 20)),
          ("line", [(0.87, 0.3), (0.82, 1.0)])]],
        [[("smooth", _arc(0.45, 0.3, 0.42, 0.3, 0, -360, 20)),
          ("smooth", [(0.87, 0.3), (0.85, 0.7), (0.6, 1.0), (0.25, 0.95)])]],
    ],
}
DIGITS = list(STYLES)
PEN_WIDTHS = (10, 14, 18, 24, 24, 24, 30, 36)  # the slider's default, 24, is the commonest


@dataclass(frozen=True)
class Person:
    """How one person draws: the same hand for all their digits."""

    seed: int
    size: float  # digit height, a share of the canvas side
    aspect: float  # width / height of their digits (a "1" is narrower by itself)
    slant: float  # shear: the top leans right by this share of the height
    tilt: float  # degrees, clockwise
    pen: int  # pen width, canvas pixels
    wobble: float  # how shaky: noise on each control point, a share of the height
    styles: dict[str, int] = field(default_factory=dict)  # digit -> style index


def people(count: int, seed: int = 0) -> list[Person]:
    """`count` different people; the same seed gives the same people."""
    rng = np.random.default_rng(seed)
    found = []
    for index in range(count):
        found.append(Person(
            seed=seed * 1000 + index,
            size=float(rng.uniform(0.45, 0.9)),
            aspect=float(rng.uniform(0.55, 0.85)),
            slant=float(rng.uniform(-0.1, 0.35)),
            tilt=float(rng.normal(0, 5)),
            pen=int(rng.choice(PEN_WIDTHS)),
            wobble=float(rng.uniform(0.005, 0.03)),
            styles={d: int(rng.integers(len(STYLES[d]))) for d in DIGITS},
        ))
    return found


def _catmull_rom(points: list[Point], per_segment: int = 8) -> list[Point]:
    p = np.asarray(points, dtype=float)
    if len(p) < 3:
        return [tuple(q) for q in p]
    p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        for t in np.linspace(0, 1, per_segment, endpoint=False):
            out.append(tuple(0.5 * ((2 * p1) + (-p0 + p2) * t
                                    + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t * t
                                    + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)))
    out.append(tuple(p[-2]))
    return out


def _densify(points: list[Point], step: float = 0.04) -> list[Point]:
    out = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        out += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1)]
    return out


def strokes(digit: str, person: Person, rng: np.random.Generator,
            canvas: int = 280) -> list[list[Point]]:
    """The strokes of one drawing of `digit` by `person`, as canvas pixel paths."""
    style = STYLES[digit][person.styles.get(digit, 0) % len(STYLES[digit])]
    height = person.size * canvas * rng.uniform(0.9, 1.1)
    width = height * person.aspect * (0.45 if digit == "1" else 1.0)
    tilt = math.radians(person.tilt + rng.normal(0, 3))
    paths = []
    for stroke in style:
        unit = []
        for kind, points in stroke:
            noisy = [(x + rng.normal(0, person.wobble), y + rng.normal(0, person.wobble))
                     for x, y in points]
            unit += _catmull_rom(noisy) if kind == "smooth" else _densify(noisy)
        path = []
        for x, y in unit:
            x = (x - 0.5 + person.slant * (0.5 - y)) * width
            y = (y - 0.5) * height
            path.append((x * math.cos(tilt) - y * math.sin(tilt),
                         x * math.sin(tilt) + y * math.cos(tilt)))
        paths.append(path)
    xs = [x for path in paths for x, _ in path]
    ys = [y for path in paths for _, y in path]
    margin = person.pen / 2 + 3
    # Anywhere on the canvas that keeps the drawing inside; drawings that do not fit shrink.
    span = max(max(xs) - min(xs), max(ys) - min(ys))
    shrink = min(1.0, (canvas - 2 * margin) / span)
    xs, ys = [x * shrink for x in xs], [y * shrink for y in ys]
    low_x, low_y = margin - min(xs), margin - min(ys)
    dx = rng.uniform(low_x, max(low_x, canvas - margin - max(xs)))
    dy = rng.uniform(low_y, max(low_y, canvas - margin - max(ys)))
    return [[(x * shrink + dx, y * shrink + dy) for x, y in path] for path in paths]


def render(paths: list[list[Point]], pen: int, canvas: int = 280) -> Image.Image:
    """The drawing as the canvas shows it (white round-capped strokes on black), drawn by
    Pillow: close to the browser's, for tests that need no browser."""
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    for path in paths:
        draw.line(path, fill=255, width=pen, joint="curve")
        for x, y in (path[0], path[-1]):
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=255)
    return image


def draw_on_canvas(page, canvas, paths: list[list[Point]], steps: int = 2) -> None:
    """Move a real mouse along `paths` over the canvas element (a Playwright locator) of
    the page: down at each stroke's start, up at its end."""
    canvas.scroll_into_view_if_needed()  # the mouse only draws where the page is in view
    box = canvas.bounding_box()
    scale = box["width"] / 280
    for index, path in enumerate(paths):
        x, y = path[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=4)
        if index == 0:
            # A hand arriving over the canvas pauses before pressing. (The canvas's toolbar
            # slides up out of the way ~0.2 s after the pointer enters; until then it
            # covers the canvas's top right corner, where a stroke begun at once is lost.)
            page.wait_for_timeout(300)
        page.mouse.down()
        for x, y in path[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=steps)
        page.mouse.up()
