"""Template text with `#?Name?#` placeholders: parsed and checked once, when the
configuration is loaded, then rendered per message.

A template that names an unknown placeholder, leaves a `#?` unclosed, or puts a placeholder
where its value cannot go (an HTML table in a plain-text body, a multi-line value in a
subject) is refused with the template's name, the part, and the line.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass
from typing import Literal

from .placeholders import PLACEHOLDERS

Part = Literal["subject", "text", "html"]
PART_NAMES: dict[str, str] = {"subject": "subject", "text": "plain-text body", "html": "HTML body"}

_TOKEN = re.compile(r"#\?(.*?)\?#", re.DOTALL)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class TemplateError(ValueError):
    """A template refused when loaded; the message names the template, part and line."""


@dataclass(frozen=True, slots=True)
class Slot:
    name: str


@dataclass(frozen=True, slots=True)
class TemplateText:
    """One part of a template, split into literal text and placeholder slots."""

    part: Part
    pieces: tuple[str | Slot, ...]

    @property
    def names(self) -> set[str]:
        return {piece.name for piece in self.pieces if isinstance(piece, Slot)}

    def render(self, values: dict[str, str]) -> str:
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            elif self.part == "html" and not PLACEHOLDERS[piece.name].html:
                out.append(html.escape(values[piece.name]).replace("\n", "<br>\n"))
            else:
                out.append(values[piece.name])
        return "".join(out)


def parse(template: str, part: Part, text: str, origin: str | None = None) -> TemplateText:
    """Split `text` into pieces; raises TemplateError. `origin` names the file the text came
    from, when it came from one; otherwise lines are those of the value (`html`, `text`,
    `subject`) as given."""

    def fail(offset: int, problem: str) -> TemplateError:
        line = text.count("\n", 0, offset) + 1
        # Text given inline (a TOML string) is counted from the start of the value itself.
        where = f"{origin} line {line}" if origin else f"line {line} of the {part} value"
        return TemplateError(f"template {template!r}, {PART_NAMES[part]} ({where}): {problem}")

    pieces: list[str | Slot] = []
    last = 0
    for match in _TOKEN.finditer(text):
        literal = text[last:match.start()]
        if "#?" in literal:
            raise fail(last + literal.index("#?"), "'#?' without a closing '?#'")
        name = match.group(1)
        if not _NAME.match(name):
            raise fail(match.start(), f"malformed placeholder {match.group(0)[:60]!r}")
        spec = PLACEHOLDERS.get(name)
        if spec is None:
            hint = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
            suggestion = f" (did you mean #?{hint[0]}?#)" if hint else ""
            raise fail(match.start(), f"unknown placeholder #?{name}?#{suggestion}")
        if spec.html and part != "html":
            alternative = {"OrderItemsDetails": "OrderItemsDetails2",
                           "ShippingAddressHtml": "ShippingAddress"}.get(name)
            instead = f"; use #?{alternative}?# here" if alternative else ""
            raise fail(match.start(), f"#?{name}?# is HTML and can only be used in the HTML body{instead}")
        if spec.multiline and part == "subject":
            raise fail(match.start(), f"#?{name}?# spans several lines and cannot be used in the subject")
        if literal:
            pieces.append(literal)
        pieces.append(Slot(name))
        last = match.end()
    rest = text[last:]
    if "#?" in rest:
        raise fail(last + rest.index("#?"), "'#?' without a closing '?#'")
    if rest:
        pieces.append(rest)
    return TemplateText(part, tuple(pieces))
