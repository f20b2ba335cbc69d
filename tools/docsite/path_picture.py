"""The home page's picture of the path through the book: inline SVG whose boxes link to their chapters.

Two drawings of the same boxes: a wide one (two rows) for screens and a narrow one (two columns) that
keeps 13-15 px text on a 390 px phone; CSS shows one of them. Lesson ranges come from the lessons that
exist, so the picture cannot drift from the book.
"""

import html

# (track, title, first and last lesson number, what you hold at that point). Track 1 is the ONNX road,
# track 2 the microcontroller road that branches off after everyday PyTorch.
BOXES = [
    (1, "Start here", 0, 0, "versions, seeds"),
    (1, "Everyday PyTorch", 1, 9, "net, state_dict"),
    (1, "Export to ONNX", 10, 12, "model.onnx"),
    (1, "Inside ONNX", 13, 19, "edit, cut, diff"),
    (2, "Detection", 20, 29, "re-param, QAT"),
    (2, "int8 quantisation", 30, 31, "model.tflite"),
    (2, "TFLM, C array", 32, 33, "arena, model.cc"),
    (2, "Cortex-M4", 34, 39, "firmware in QEMU"),
]
END = ("ONNX Runtime", "server, PC, phone")  # where the ONNX road ends: no lesson of its own
BLUE, ORANGE = ("#e8eaf6", "#3949ab"), ("#fff3e0", "#e65100")
SANS = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
TITLE = (
    "The path through the book: PyTorch, ONNX, detection, int8 quantisation, TensorFlow Lite Micro, "
    "a C array, firmware on a Cortex-M4"
)


def lesson_range(numbers: list[int], low: int, high: int) -> tuple[str, int | None]:
    """('lessons 01–07', 1) for the lessons that exist in [low, high], and the first one to link to."""
    inside = sorted(n for n in numbers if low <= n <= high)
    if not inside:
        return "in preparation", None
    if len(inside) == 1:
        return f"lesson {inside[0]:02d}", inside[0]
    return f"lessons {inside[0]:02d}–{inside[-1]:02d}", inside[0]


class Drawing:
    def __init__(self, width, height, css_class):
        self.out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" viewBox="0 0 {width} {height}" '
            f'font-family="{SANS}" role="img" aria-labelledby="{css_class}-title">',
            f'<title id="{css_class}-title">{html.escape(TITLE)}</title>',
            f'<defs><marker id="{css_class}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
            "</defs>",
        ]
        self.marker = f"{css_class}-arrow"

    def text(self, x, y, s, size, fill="#222", extra=""):
        self.out.append(
            f'<text x="{x}" y="{y}" text-anchor="middle" font-size="{size}" fill="{fill}"{extra}>'
            f"{html.escape(s)}</text>"
        )

    def arrow(self, x1, y1, x2, y2):
        self.out.append(
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" stroke-width="2" '
            f'marker-end="url(#{self.marker})"/>'
        )

    def box(self, x, y, w, h, lines, colours, href=None, dashed=False):
        """A rounded box with a bold title and two lines under it; a link when href is given."""
        fill, stroke = colours
        if href:
            self.out.append(f'<a href="{html.escape(href)}" aria-label="{html.escape(lines[0])}">')
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.out.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="10" fill="{"none" if dashed else fill}" '
            f'stroke="{stroke}" stroke-width="2"{dash}/>'
        )
        title, *rest = lines
        self.text(x + w / 2, y + 24, title, 15, extra=' font-weight="bold"')
        for i, line in enumerate(rest):
            mono = f' font-family="{MONO}"' if i == 1 else ""
            self.text(x + w / 2, y + 45 + 20 * i, line, 13, stroke if i == 1 else "#444", mono)
        if href:
            self.out.append("</a>")

    def svg(self) -> str:
        return "\n".join([*self.out, "</svg>"])


def boxes(lesson_numbers: list[int], lesson_href) -> list[tuple]:
    """(track, lines, colours, href) of every box, links to the first lesson of each range."""
    result = []
    for track, title, low, high, holds in BOXES:
        label, first = lesson_range(lesson_numbers, low, high)
        href = lesson_href(first) if first is not None else None
        result.append((track, [title, label, holds], BLUE if track == 1 else ORANGE, href))
    return result


def wide(items) -> str:
    """Two rows of 160 px boxes: the ONNX road on top, the microcontroller road under it."""
    w, h, col = 160, 78, lambda c: 20 + c * 190
    d = Drawing(960, 250, "path-wide")
    top, bottom = [i for i in items if i[0] == 1], [i for i in items if i[0] == 2]
    for c, (_, lines, colours, href) in enumerate(top):
        d.box(col(c), 20, w, h, lines, colours, href)
    d.box(col(len(top)), 20, w, h, list(END), BLUE, dashed=True)
    for c, (_, lines, colours, href) in enumerate(bottom, start=1):
        d.box(col(c), 150, w, h, lines, colours, href)
    for c in range(len(top)):
        d.arrow(col(c) + w + 2, 59, col(c + 1) - 3, 59)
    for c in range(1, len(bottom)):
        d.arrow(col(c) + w + 2, 189, col(c + 1) - 3, 189)
    d.arrow(col(1) + w / 2, 100, col(1) + w / 2, 147)
    d.out.append(
        f'<text x="{col(1) + w / 2 + 8}' + '" y="129" font-size="12" fill="#555">for a microcontroller</text>'
    )
    return d.svg()


def narrow(items) -> str:
    """Two columns for a phone: the ONNX road on the left, the microcontroller road on the right."""
    w, h, step, x = 165, 74, 92, (8, 187)
    top, bottom = [i for i in items if i[0] == 1], [i for i in items if i[0] == 2]
    rows = max(len(top) + 1, 2 + len(bottom))
    d = Drawing(360, h + 12 + step * (rows - 1), "path-narrow")
    y = lambda r: 6 + r * step  # noqa: E731
    for r, (_, lines, colours, href) in enumerate(top):
        d.box(x[0], y(r), w, h, lines, colours, href)
    d.box(x[0], y(len(top)), w, h, list(END), BLUE, dashed=True)
    for r, (_, lines, colours, href) in enumerate(bottom, start=2):
        d.box(x[1], y(r), w, h, lines, colours, href)
    for r in range(len(top)):
        d.arrow(x[0] + w / 2, y(r) + h + 2, x[0] + w / 2, y(r + 1) - 3)
    for r in range(2, len(bottom) + 1):
        d.arrow(x[1] + w / 2, y(r) + h + 2, x[1] + w / 2, y(r + 1) - 3)
    d.arrow(x[0] + w + 2, y(1) + h / 2, x[1] + w / 2, y(2) - 3)  # the branch after everyday PyTorch
    return d.svg()


def path_picture(lesson_numbers: list[int], lesson_href) -> str:
    """Both drawings in one <figure>; lesson_href(number) gives the link to that lesson's page."""
    items = boxes(lesson_numbers, lesson_href)
    return (
        '<figure class="path-picture" data-search-exclude>\n'
        + wide(items)
        + "\n"
        + narrow(items)
        + "\n<figcaption>Each box is a part of the book (tap it to open its first lesson); every file "
        "format on the way is one you will open and inspect.</figcaption>\n</figure>"
    )
