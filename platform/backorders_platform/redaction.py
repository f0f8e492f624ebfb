"""Credentials out of every error the notifier and channel-sync store or log.

A server's answer, an exception's text or a traceback can carry a secret: an SMTP server
that echoes the AUTH exchange (the base64 of the username and password), a token endpoint
that echoes the client secret it was sent, an API that quotes the bearer token of the
request it refuses, a library error quoting an `Authorization` header, a token in a URL.
`redact(text, secrets)` replaces the values it is given and anything shaped like a
credential: `Authorization: …`, `Bearer …` / `Basic …`, and the values of `password`,
`secret`, `token`, `api_key` and the like, whether written `key=value`, `key: value` or as a
JSON member, and the password of a `scheme://user:password@` URL. The values come from the
service: the notifier's SMTP password with the base64 forms AUTH PLAIN and LOGIN send it in
(`encodings`), channel-sync's channel credentials and the access tokens it fetched, each
with its base64 form (`Redactor`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

MASK = "[redacted]"

_SECRET_KEY = (
    r"(?:pass(?:word|wd)?|pwd|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?token|"
    r"refresh[_-]?token|id[_-]?token|auth[_-]?token|token|credentials?)"
)
_PATTERNS = (
    # Authorization: <scheme> <value>, as a header line or a JSON / repr member.
    (re.compile(r"""(?i)(["']?(?:proxy-)?authorization["']?\s*[:=]\s*["']?)(?!\s*\[redacted\])([^"'\r\n,;}]+)"""),
     r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic|digest)(\s+)(?!\s*\[redacted\])[A-Za-z0-9\-._~+/]+=*"), r"\1\2" + MASK),
    # "password": "…", password=…, token: …
    (re.compile(rf"""(?i)(["']?\b[\w-]*{_SECRET_KEY}[\w-]*["']?\s*[:=]\s*)(?!\s*\[redacted\])"""
                rf"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s&,;}}\])]+)"""),
     r"\1" + MASK),
    # user:password@ in a URL
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]+:)[^\s/@]+@"), r"\1" + MASK + "@"),
)
_MIN_SECRET = 4  # shorter values would mask ordinary words


def encodings(username: str | None, password: str | None) -> list[str]:
    """The password, and the forms AUTH PLAIN and AUTH LOGIN put it on the wire."""
    if not password:
        return []
    user = username or ""
    forms = [password, _b64(password), _b64(f"\0{user}\0{password}"), _b64(f"{user}\0{user}\0{password}")]
    return [form for form in forms if form]


class Redactor:
    """Secrets collected as they are read or fetched (a set of sinks' credentials and the
    access tokens fetched since), each with its base64 form; calling it redacts a text."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= _MIN_SECRET:
                self.secrets.add(value)
                self.secrets.add(_b64(value))

    def __call__(self, text: str | None) -> str:
        return redact(text, self.secrets)


def redact(text: str | None, secrets: Iterable[str | None] = ()) -> str:
    """`text` without the given secret values and without anything shaped like a credential."""
    if not text:
        return text or ""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of an error's text, redacted (at most `limit` characters), as a log
    line or a stored reason shows it."""
    return redact((str(error).splitlines() or [""])[0])[:limit]


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
