"""The console's session cookie (api/auth.py): signed with the API token, so every process
of `serve --workers N` accepts a session another one gave, and nothing else is accepted."""

from __future__ import annotations

from recalculator.api.auth import SESSION_COOKIE, SESSION_SECONDS, Guard
from starlette.requests import Request


def request_with(cookie: str | None) -> Request:
    headers = [] if cookie is None else [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""})


def test_a_session_given_by_one_process_is_accepted_by_another_with_the_same_token():
    now = [1_000_000.0]
    given = Guard(b"the-token", read_requires_token=True, clock=lambda: now[0]).open_session()
    other = Guard(b"the-token", read_requires_token=True, clock=lambda: now[0])
    assert other.has_session(request_with(given))
    assert "the-token" not in given


def test_a_session_is_refused_when_forged_tampered_expired_or_signed_by_another_token():
    now = [1_000_000.0]
    guard = Guard(b"the-token", read_requires_token=True, clock=lambda: now[0])
    session = guard.open_session()
    nonce, expires, mac = session.split(".")
    assert not guard.has_session(request_with(None))
    assert not guard.has_session(request_with("made-up"))
    assert not guard.has_session(request_with(f"{nonce}.{int(expires) + 3600}.{mac}"))  # longer life
    assert not guard.has_session(request_with(f"{nonce}x.{expires}.{mac}"))
    assert not Guard(b"another-token", read_requires_token=True, clock=lambda: now[0]).has_session(
        request_with(session))
    assert not Guard(None, read_requires_token=True).has_session(request_with(session))
    now[0] += SESSION_SECONDS - 1
    assert guard.has_session(request_with(session))
    now[0] += 1
    assert not guard.has_session(request_with(session))
