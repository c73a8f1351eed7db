"""The simulated screen's view tree: what is drawn, what is tappable, what the UI dump shows.

A world rebuilds its view tree from its (plain-data) state whenever the state changes, so the
tree itself never needs to be saved in a snapshot. Every node carries the attributes the AOSP
``uiautomator dump`` reports, plus drawing hints (``style``) and an optional tap handler. The
XML writers here reproduce the exact formats real devices produce, so clients that parse them
(adbutils, uiautomator2, the project's device layer) see no difference.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

Bounds = tuple[int, int, int, int]  # left, top, right, bottom (pixels, right/bottom exclusive)
TapHandler = Callable[[int, int], Any]


@dataclass
class Node:
    """One widget on screen, with the attributes of an AOSP accessibility node."""

    cls: str = "android.widget.FrameLayout"
    bounds: Bounds = (0, 0, 0, 0)
    text: str = ""
    resource_id: str = ""
    content_desc: str = ""
    package: str = ""
    clickable: bool = False
    long_clickable: bool = False
    focusable: bool = False
    focused: bool = False
    scrollable: bool = False
    enabled: bool = True
    checkable: bool = False
    checked: bool = False
    password: bool = False
    selected: bool = False
    hint: str = ""
    children: list[Node] = field(default_factory=list)
    # Drawing hints: bg, fg, border, radius, font_size, bold, align ("left"|"center"), icon, image.
    style: dict[str, Any] = field(default_factory=dict)
    # Called with the tap's pixel position when this node is the deepest clickable one hit.
    on_tap: TapHandler | None = None
    # Called with (x1, y1, x2, y2) for swipes that start inside a scrollable node.
    on_scroll: Callable[[int, int, int, int], Any] | None = None

    def add(self, *children: Node) -> Node:
        self.children.extend(children)
        return self

    def walk(self) -> Iterator[Node]:
        """Depth-first, pre-order: the order of the UI dump."""
        yield self
        for child in self.children:
            yield from child.walk()

    def contains(self, x: int, y: int) -> bool:
        left, top, right, bottom = self.bounds
        return left <= x < right and top <= y < bottom

    def center(self) -> tuple[int, int]:
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2


def hit_test(root: Node, x: int, y: int, attr: str = "on_tap") -> Node | None:
    """The topmost node under (x, y) that has a handler ``attr``.

    Later siblings are drawn over earlier ones (as on Android), so they are searched first;
    a node that covers the point but has no handler blocks nothing: the search goes on into
    its children and then into what lies beneath.
    """

    def visit(node: Node) -> Node | None:
        if not node.contains(x, y) or not node.enabled:
            return None
        for child in reversed(node.children):
            found = visit(child)
            if found is not None:
                return found
        if getattr(node, attr) is not None:
            return node
        if node.style.get("opaque"):
            # A sheet or dialog swallows taps on its empty parts, like a real modal.
            return node
        return None

    return visit(root)


# ----------------------------------------------------------------------------- UI dump (XML)

_XML_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "\n": "&#10;",
    "\r": "&#13;",
    "\t": "&#9;",
}


# What AOSP's AccessibilityNodeInfoDumper.stripInvalidXMLChars turns into "." (C0 controls but
# tab, LF and CR; DEL and the C1 controls but NEL; U+FDD0-U+FDDF), plus what XML 1.0 forbids
# besides (NUL, U+FFFE, U+FFFF, lone surrogates) so that every dump parses. Text reaches a
# field from the clipboard as it is: a policy typed "Indonesiaage \uffff" (qgs11, 2026-11-24)
# and the raw U+FFFF made the dump unparseable on every retry.
_DUMP_STRIPPED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufdd0-\ufddf\ufffe\uffff\ud800-\udfff]"
)


def _esc(value: str) -> str:
    value = _DUMP_STRIPPED.sub(".", value)
    return "".join(_XML_ESCAPES.get(ch, ch) for ch in value)


def _b(flag: bool) -> str:
    return "true" if flag else "false"


def _bounds(b: Bounds) -> str:
    return f"[{b[0]},{b[1]}][{b[2]},{b[3]}]"


def _attrs(node: Node, index: int, extended: bool, drawing_order: int) -> str:
    parts = [
        f'index="{index}"',
        f'text="{_esc(node.text)}"',
        f'resource-id="{_esc(node.resource_id)}"',
        f'class="{_esc(node.cls)}"',
        f'package="{_esc(node.package)}"',
        f'content-desc="{_esc(node.content_desc)}"',
        f'checkable="{_b(node.checkable)}"',
        f'checked="{_b(node.checked)}"',
        f'clickable="{_b(node.clickable)}"',
        f'enabled="{_b(node.enabled)}"',
        f'focusable="{_b(node.focusable)}"',
        f'focused="{_b(node.focused)}"',
        f'scrollable="{_b(node.scrollable)}"',
        f'long-clickable="{_b(node.long_clickable)}"',
        f'password="{_b(node.password)}"',
        f'selected="{_b(node.selected)}"',
    ]
    if extended:
        parts.append('visible-to-user="true"')
    parts.append(f'bounds="{_bounds(node.bounds)}"')
    if extended:
        parts.append(f'drawing-order="{drawing_order}"')
        parts.append(f'hint="{_esc(node.hint)}"')
        parts.append('display-id="0"')
    return " ".join(parts)


def dump_xml(root: Node, rotation: int = 0) -> str:
    """The AOSP ``uiautomator dump`` format: one line, no trailing newline.

    The root node passed in is the window's decor view; it is written as ``index="0"``.
    """
    out: list[str] = [
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>",
        f'<hierarchy rotation="{rotation}">',
    ]

    def visit(node: Node, index: int) -> None:
        attrs = _attrs(node, index, extended=False, drawing_order=0)
        if node.children:
            out.append(f"<node {attrs}>")
            for i, child in enumerate(node.children):
                visit(child, i)
            out.append("</node>")
        else:
            out.append(f"<node {attrs} />")

    visit(root, 0)
    out.append("</hierarchy>")
    return "".join(out)


def dump_xml_pretty(root: Node, rotation: int = 0) -> str:
    """The uiautomator2 server's ``dumpWindowHierarchy`` variant: indented, CRLF, extra attributes."""
    out: list[str] = [
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>",
        f'<hierarchy rotation="{rotation}">',
    ]

    def visit(node: Node, index: int, depth: int) -> None:
        pad = "  " * depth
        attrs = _attrs(node, index, extended=True, drawing_order=index + 1)
        if node.children:
            out.append(f"{pad}<node {attrs}>")
            for i, child in enumerate(node.children):
                visit(child, i, depth + 1)
            out.append(f"{pad}</node>")
        else:
            out.append(f"{pad}<node {attrs} />")

    visit(root, 0, 1)
    out.append("</hierarchy>")
    return "\r\n".join(out)


# ----------------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=64)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font (identical on every machine, so renders are reproducible)."""
    del bold  # the bundled font has one weight; bold is drawn with a stroke instead
    return ImageFont.load_default(size=size)


def text_width(text: str, size: int) -> int:
    return int(font(size).getlength(text))


def wrap_text(text: str, size: int, max_width: int, max_lines: int = 3) -> list[str]:
    """Greedy word wrap, ellipsised after ``max_lines``."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if text_width(candidate, size) <= max_width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and text_width(last + "…", size) > max_width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


def _draw_icon(draw: ImageDraw.ImageDraw, node: Node, icon: dict[str, Any]) -> None:
    left, top, right, bottom = node.bounds
    size = min(right - left, bottom - top)
    cx, cy = (left + right) // 2, (top + bottom) // 2
    r = int(size * icon.get("scale", 0.42))
    color = icon.get("color", (66, 133, 244))
    shape = icon.get("shape", "circle")
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif shape == "square":
        draw.rounded_rectangle((cx - r, cy - r, cx + r, cy + r), radius=r // 3, fill=color)
    glyph = icon.get("glyph", "")
    if glyph:
        fsize = max(8, int(r * 1.1))
        draw.text(
            (cx, cy),
            glyph,
            fill=icon.get("glyph_color", (255, 255, 255)),
            font=font(fsize),
            anchor="mm",
        )


def render(
    root: Node,
    size: tuple[int, int],
    background: tuple[int, int, int] = (255, 255, 255),
    mode: str = "RGB",
) -> Image.Image:
    """Draw the view tree into an image of ``size`` (width, height).

    ``mode="RGBA"`` renders straight into the pixel format ``screencap`` sends, saving a
    full-frame conversion per screenshot (drawing costs the same in both modes).
    """
    image = Image.new(mode, size, background)
    draw = ImageDraw.Draw(image)
    for node in root.walk():
        style = node.style
        if not style:
            continue
        left, top, right, bottom = node.bounds
        if right <= left or bottom <= top:
            continue
        box = (left, top, right - 1, bottom - 1)
        bg = style.get("bg")
        border = style.get("border")
        radius = style.get("radius", 0)
        if bg is not None or border is not None:
            if radius:
                draw.rounded_rectangle(
                    box, radius=radius, fill=bg, outline=border, width=style.get("border_width", 2)
                )
            else:
                draw.rectangle(box, fill=bg, outline=border, width=style.get("border_width", 2))
        image_spec = style.get("image")
        if image_spec is not None:
            _draw_placeholder_image(draw, node, image_spec)
        icon = style.get("icon")
        if icon:
            _draw_icon(draw, node, icon)
        label = style.get("label", node.text if node.text else "")
        if not label and node.hint and style.get("show_hint", True):
            label = node.hint
            fg = style.get("hint_fg", (128, 128, 128))
        else:
            fg = style.get("fg", (32, 33, 36))
        if label:
            _draw_label(draw, node, label, fg)
    return image


def _draw_placeholder_image(draw: ImageDraw.ImageDraw, node: Node, spec: dict[str, Any]) -> None:
    """A deterministic 'photo': a two-tone gradient-like block seeded by the spec's colours."""
    left, top, right, bottom = node.bounds
    c1 = spec.get("c1", (200, 200, 200))
    c2 = spec.get("c2", (150, 150, 150))
    h = bottom - top
    bands = 6
    for i in range(bands):
        t = i / (bands - 1)
        color = tuple(int(a + (b - a) * t) for a, b in zip(c1, c2, strict=True))
        y0 = top + h * i // bands
        y1 = top + h * (i + 1) // bands - 1
        draw.rectangle((left, y0, right - 1, y1), fill=color)


def _draw_label(draw: ImageDraw.ImageDraw, node: Node, label: str, fg: Any) -> None:
    style = node.style
    left, top, right, bottom = node.bounds
    size = int(style.get("font_size", 40))
    pad = int(style.get("pad", 24))
    align = style.get("align", "left")
    max_lines = int(style.get("max_lines", 1))
    width = max(1, right - left - 2 * pad)
    lines = wrap_text(label, size, width, max_lines) if max_lines > 1 else [label]
    if max_lines == 1:
        line = lines[0]
        if text_width(line, size) > width:
            while line and text_width(line + "…", size) > width:
                line = line[:-1]
            lines = [line + "…"]
    line_h = int(size * 1.25)
    total_h = line_h * len(lines)
    y = top + max(0, (bottom - top - total_h) // 2)
    stroke = 1 if style.get("bold") else 0
    fnt = font(size)
    for line in lines:
        if align == "center":
            x = (left + right) // 2
            draw.text(
                (x, y + line_h // 2),
                line,
                fill=fg,
                font=fnt,
                anchor="mm",
                stroke_width=stroke,
                stroke_fill=fg,
            )
        else:
            draw.text(
                (left + pad, y + line_h // 2),
                line,
                fill=fg,
                font=fnt,
                anchor="lm",
                stroke_width=stroke,
                stroke_fill=fg,
            )
        y += line_h
