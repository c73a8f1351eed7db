"""What an agent sees after a step: the screenshot, the UI element list and the activity.

The UI list comes from ``uiautomator dump`` (the AOSP one-line format) or from uiautomator2's
``dumpWindowHierarchy`` (the pretty, CRLF variant with extra attributes); both parse to the same
:class:`UIElement` records, in dump (depth-first, pre-order) order, so an element's position in
the list is stable for a given screen. Nothing here touches a device: the parser is a pure
function so offline data loaders and tests can use it on stored dumps.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["UIElement", "UIDumpParseError", "Observation", "parse_ui_xml"]

Bounds = tuple[int, int, int, int]

_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")
_BOOL_ATTRS = {
    "clickable": "clickable",
    "enabled": "enabled",
    "focused": "focused",
    "focusable": "focusable",
    "scrollable": "scrollable",
    "checkable": "checkable",
    "checked": "checked",
    "selected": "selected",
    "long-clickable": "long_clickable",
    "password": "password",
}


class UIDumpParseError(ValueError):
    """A UI dump that is not a uiautomator hierarchy; the message says what is wrong."""


@dataclass(frozen=True)
class UIElement:
    """One node of the UI hierarchy with the attributes ``uiautomator dump`` reports.

    ``bounds`` are pixels ``(left, top, right, bottom)`` with right/bottom exclusive, as
    Android's ``Rect``. ``index_path`` is the chain of ``index`` attributes from the root
    (the root node itself is ``(0,)``): it identifies the node within one dump.
    """

    text: str = ""
    resource_id: str = ""
    class_name: str = ""
    content_desc: str = ""
    package: str = ""
    bounds: Bounds = (0, 0, 0, 0)
    clickable: bool = False
    enabled: bool = True
    focused: bool = False
    focusable: bool = False
    scrollable: bool = False
    checkable: bool = False
    checked: bool = False
    selected: bool = False
    long_clickable: bool = False
    password: bool = False
    index_path: tuple[int, ...] = ()

    @property
    def width(self) -> int:
        return max(0, self.bounds[2] - self.bounds[0])

    @property
    def height(self) -> int:
        return max(0, self.bounds[3] - self.bounds[1])

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center(self) -> tuple[int, int]:
        """Pixel ``(x, y)`` of the centre (what a tap on this element would use)."""
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2

    @property
    def label(self) -> str:
        """Text if any, else the content description: how a person would name the element."""
        return self.text or self.content_desc

    def normalized_box(self, screen_size: tuple[int, int]) -> tuple[float, float, float, float]:
        """``(y, x, height, width)`` in [0, 1], the AitW annotation format (clipped to screen)."""
        width, height = screen_size
        if width <= 0 or height <= 0:
            raise ValueError(f"screen_size must be positive (width, height), got {screen_size!r}")
        left = min(max(self.bounds[0], 0), width)
        right = min(max(self.bounds[2], 0), width)
        top = min(max(self.bounds[1], 0), height)
        bottom = min(max(self.bounds[3], 0), height)
        return (
            top / height,
            left / width,
            max(0, bottom - top) / height,
            max(0, right - left) / width,
        )

    def resource_id_matches(self, wanted: str) -> bool:
        """Exact match, or ``wanted`` without a package matches ``<any package>:id/<wanted>``."""
        if self.resource_id == wanted:
            return True
        if ":" not in wanted:
            name = wanted.removeprefix("id/")
            return self.resource_id.endswith(f":id/{name}")
        return False


def _parse_bounds(raw: str, where: str) -> Bounds:
    match = _BOUNDS.fullmatch(raw.strip())
    if match is None:
        raise UIDumpParseError(
            f"bad bounds {raw!r} on {where}: expected '[left,top][right,bottom]'"
        )
    left, top, right, bottom = (int(v) for v in match.groups())
    return left, top, right, bottom


def _element(node: ET.Element, path: tuple[int, ...]) -> UIElement:
    attrs = node.attrib
    where = f"node at index path {path}"
    flags = {}
    for xml_name, field_name in _BOOL_ATTRS.items():
        value = attrs.get(xml_name)
        if value is None:
            continue
        if value not in ("true", "false"):
            raise UIDumpParseError(f"attribute {xml_name}={value!r} on {where} is not true/false")
        flags[field_name] = value == "true"
    raw_bounds = attrs.get("bounds")
    if raw_bounds is None:
        raise UIDumpParseError(f"{where} has no bounds attribute")
    return UIElement(
        text=attrs.get("text", ""),
        resource_id=attrs.get("resource-id", ""),
        class_name=attrs.get("class", ""),
        content_desc=attrs.get("content-desc", ""),
        package=attrs.get("package", ""),
        bounds=_parse_bounds(raw_bounds, where),
        index_path=path,
        **flags,
    )


# Characters XML 1.0 does not allow anywhere in a document (its "Char" production).
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _parse_xml(xml: str) -> ET.Element:
    """``ET.fromstring``, and once more with XML-forbidden characters as U+FFFD if it fails.

    A device writes a field's text as it is, and text can hold characters XML 1.0 forbids
    (U+FFFF pasted by a policy, a control character from an app): one such character must not
    fail the whole observation. Only on failure, so that a clean dump costs no extra scan.
    """
    try:
        return ET.fromstring(xml)
    except ET.ParseError:
        cleaned = _XML_FORBIDDEN.sub("\ufffd", xml)
        if cleaned == xml:
            raise
        return ET.fromstring(cleaned)


def parse_ui_xml(xml: str | bytes) -> list[UIElement]:
    """Parse a ``uiautomator dump`` (AOSP or uiautomator2 pretty variant) into elements.

    Elements come in dump order (depth-first, pre-order). Raises :class:`UIDumpParseError`
    naming the problem for anything that is not a ``<hierarchy>`` of ``<node>`` elements:
    broken XML (with line and column), a different root, a node without valid bounds, or a
    DOCTYPE (refused outright: dumps never have one, and entity tricks have no business here).
    Text after the closing tag (``UI hierchary dumped to: /dev/tty``) is ignored.
    """
    if isinstance(xml, bytes):
        try:
            xml = xml.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UIDumpParseError(f"UI dump is not valid UTF-8: {exc}") from exc
    if not isinstance(xml, str):
        raise UIDumpParseError(f"UI dump must be str or bytes, got {type(xml).__name__}")
    if not xml.strip():
        raise UIDumpParseError("UI dump is empty")
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise UIDumpParseError(
            "UI dump contains a DOCTYPE/ENTITY declaration; refusing to parse it"
        )
    end = xml.rfind("</hierarchy>")
    if end >= 0:
        xml = xml[: end + len("</hierarchy>")]
    try:
        root = _parse_xml(xml)
    except ET.ParseError as exc:
        line, column = exc.position
        raise UIDumpParseError(
            f"UI dump is not well-formed XML (line {line}, column {column}): {exc}"
        ) from exc
    if root.tag != "hierarchy":
        raise UIDumpParseError(f"UI dump root is <{root.tag}>, expected <hierarchy>")
    elements: list[UIElement] = []

    def visit(node: ET.Element, path: tuple[int, ...]) -> None:
        elements.append(_element(node, path))
        for position, child in enumerate(node):
            if child.tag != "node":
                raise UIDumpParseError(f"unexpected <{child.tag}> inside node at index path {path}")
            visit(child, (*path, _index(child, position)))

    for position, top in enumerate(root):
        if top.tag != "node":
            raise UIDumpParseError(f"unexpected <{top.tag}> directly inside <hierarchy>")
        visit(top, (_index(top, position),))
    return elements


def _index(node: ET.Element, position: int) -> int:
    raw = node.attrib.get("index")
    if raw is None:
        return position
    try:
        return int(raw)
    except ValueError:
        raise UIDumpParseError(f"node index {raw!r} is not an integer") from None


@dataclass
class Observation:
    """One observation of the device after a step (or a reset).

    ``screenshot`` is an ``(H, W, 3)`` uint8 RGB array. ``activity`` is the focused
    ``(package, activity)`` or None when no app window has focus. ``timings`` holds seconds spent
    on each part of producing this observation (what the env also reports in ``info``).
    ``ui_xml`` keeps the raw dump the elements were parsed from (for logging and for the
    settle check's comparisons).
    """

    screenshot: np.ndarray
    ui_elements: list[UIElement]
    activity: tuple[str, str] | None
    step: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    ui_xml: str = ""

    def __post_init__(self) -> None:
        shot = self.screenshot
        if (
            not isinstance(shot, np.ndarray)
            or shot.dtype != np.uint8
            or shot.ndim != 3
            or shot.shape[2] != 3
        ):
            raise ValueError(
                f"screenshot must be an (H, W, 3) uint8 array, got "
                f"{getattr(shot, 'shape', None)} {getattr(shot, 'dtype', type(shot).__name__)}"
            )

    def to_dict(self) -> dict[str, object]:
        """The fields the env's observation space describes, as a plain dict."""
        return {
            "screenshot": self.screenshot,
            "ui_elements": self.ui_elements,
            "activity": self.activity,
            "step": self.step,
        }

    @property
    def screen_size(self) -> tuple[int, int]:
        """``(width, height)`` of the screenshot in pixels."""
        height, width = self.screenshot.shape[:2]
        return width, height

    @property
    def package(self) -> str | None:
        return self.activity[0] if self.activity else None

    def iter_elements(
        self,
        *,
        text: str | None = None,
        text_contains: str | None = None,
        resource_id: str | None = None,
        content_desc: str | None = None,
        class_name: str | None = None,
        clickable: bool | None = None,
    ) -> Iterator[UIElement]:
        """Elements matching every given criterion (all exact except ``text_contains``).

        ``resource_id`` without a package (``"counter_button"`` or ``"id/counter_button"``)
        matches that id in any package.
        """
        for element in self.ui_elements:
            if text is not None and element.text != text:
                continue
            if text_contains is not None and text_contains not in element.text:
                continue
            if resource_id is not None and not element.resource_id_matches(resource_id):
                continue
            if content_desc is not None and element.content_desc != content_desc:
                continue
            if class_name is not None and element.class_name != class_name:
                continue
            if clickable is not None and element.clickable != clickable:
                continue
            yield element

    def find(self, **criteria: object) -> UIElement | None:
        """The first element (dump order) matching the criteria of :meth:`iter_elements`."""
        return next(self.iter_elements(**criteria), None)  # type: ignore[arg-type]

    def find_all(self, **criteria: object) -> list[UIElement]:
        return list(self.iter_elements(**criteria))  # type: ignore[arg-type]

    def annotation_boxes(self) -> list[tuple[float, float, float, float]]:
        """Normalized ``(y, x, h, w)`` boxes of the actionable or labelled elements.

        What :func:`android.actions.actions_match` takes as ``annotation_boxes``: AitW's
        annotations are the visible widgets (text and icons), so containers without a label and
        zero-area nodes are left out.
        """
        size = self.screen_size
        boxes = []
        for element in self.ui_elements:
            if element.area <= 0:
                continue
            if element.clickable or element.text or element.content_desc:
                boxes.append(element.normalized_box(size))
        return boxes
