"""Tiny server-rendered SVG charts for the dashboard.

The markup is built only from numbers (checked to be ints, so a string can never reach
an attribute) and from labels that ``Markup.format`` escapes; that is what makes returning
:class:`~markupsafe.Markup` safe. Inline ``<svg>`` needs no script and no
``style`` attribute, so it passes the dashboard's CSP; colours come from admin.css.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

__all__ = ["bars", "sparkline"]


def _numbers(values: Sequence[int]) -> list[int]:
    """The values as non-negative ints; anything that is not an int-like number raises."""
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"chart values must be ints, not {type(value).__name__}")
        out.append(max(0, int(value)))
    return out


def _svg(kind: str, label: str, width: int, height: int, body: list[Markup]) -> Markup:
    # Markup.format escapes every argument that is not itself Markup.
    return Markup(
        '<svg class="chart {kind}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"'
        ' aria-label="{label}"><title>{label}</title>{body}</svg>'
    ).format(kind=kind, w=int(width), h=int(height), label=label, body=Markup("").join(body))


def bars(
    values: Sequence[int],
    *,
    label: str,
    labels: Sequence[str] | None = None,
    width: int = 240,
    height: int = 48,
) -> Markup:
    """A bar chart, one bar per value; ``labels`` (one per bar) become tooltips."""
    numbers = _numbers(values)
    if labels is not None and len(labels) != len(numbers):
        raise ValueError("one label per value")
    top = max(numbers, default=0) or 1
    slot = width / max(len(numbers), 1)
    gap = min(2.0, slot / 4)
    body = [
        Markup('<line class="axis" x1="0" y1="{y}" x2="{w}" y2="{y}"/>').format(
            y=f"{height - 0.5:.2f}", w=int(width)
        )
    ]
    for i, n in enumerate(numbers):
        h = (height - 2) * n / top
        body.append(
            Markup(
                '<rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}"><title>{tip}</title>'
                "</rect>"
            ).format(
                x=f"{i * slot + gap / 2:.2f}",
                y=f"{height - 1 - h:.2f}",
                w=f"{slot - gap:.2f}",
                h=f"{h:.2f}",
                tip=f"{labels[i]}: {n}" if labels is not None else str(n),
            )
        )
    return _svg("bars", label, width, height, body)


def sparkline(values: Sequence[int], *, label: str, width: int = 240, height: int = 48) -> Markup:
    """A line through the values, with the last point marked."""
    numbers = _numbers(values)
    top = max(numbers, default=0) or 1
    pad = 3
    step = (width - 2 * pad) / max(len(numbers) - 1, 1)
    points = [
        (pad + i * step, pad + (height - 2 * pad) * (1 - n / top)) for i, n in enumerate(numbers)
    ]
    body = []
    if points:
        x, y = points[-1]
        body.append(
            Markup('<polyline class="line" points="{p}"/>').format(
                p=" ".join(f"{px:.2f},{py:.2f}" for px, py in points)
            )
        )
        body.append(
            Markup('<circle class="dot" cx="{x}" cy="{y}" r="2.5"/>').format(
                x=f"{x:.2f}", y=f"{y:.2f}"
            )
        )
    return _svg("sparkline", label, width, height, body)
