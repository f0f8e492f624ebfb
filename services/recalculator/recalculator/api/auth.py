"""Who may do what through the API (docs/api.md, "Security").

Actions and re-submissions need the bearer token of the configuration
(`BACKORDERS_API_TOKEN`, or a file holding it, `BACKORDERS_API_TOKEN_FILE`): no
`Authorization: Bearer …` header gives a 401, another token a 403. With
`BACKORDERS_API_READ_REQUIRES_TOKEN=true` the reads need it too, or the console's session
cookie (given by its sign-in form, signed with the token, good for reads only and for
`SESSION_SECONDS`: a cross-site form can make a browser send a cookie, never a header, so
nothing that changes the log accepts a cookie).
Tokens are compared in constant time and never logged, rendered or echoed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import HTTPException, Request
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SESSION_COOKIE = "backorders_session"
SESSION_SECONDS = 12 * 3600  # how long a console sign-in lasts


class ApiSettings(BaseSettings):
    """The API's security settings, from the environment (`BACKORDERS_API_*`)."""

    model_config = SettingsConfigDict(env_prefix="BACKORDERS_API_")

    token: SecretStr | None = None
    token_file: Path | None = None
    read_requires_token: bool = False

    @model_validator(mode="after")
    def _one_token(self) -> ApiSettings:
        if self.token is not None and self.token_file is not None:
            raise ValueError("set BACKORDERS_API_TOKEN or BACKORDERS_API_TOKEN_FILE, not both")
        if self.token is not None and not self.token.get_secret_value().strip():
            raise ValueError("BACKORDERS_API_TOKEN is empty")
        if self.read_requires_token and self.token is None and self.token_file is None:
            raise ValueError("BACKORDERS_API_READ_REQUIRES_TOKEN needs a token (BACKORDERS_API_TOKEN or _FILE)")
        return self

    def secret(self) -> bytes | None:
        """The token as bytes (read from its file each time it is asked: the caller keeps it)."""
        if self.token is not None:
            return self.token.get_secret_value().strip().encode()
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"cannot read the token file {self.token_file}: {error.__class__.__name__}") from None
            if not text:
                raise ValueError(f"the token file {self.token_file} is empty")
            return text.encode()
        return None


class Guard:
    """The checks the routes depend on (FastAPI dependencies)."""

    def __init__(self, secret: bytes | None, read_requires_token: bool = False, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.read_requires_token = read_requires_token
        self._clock = clock

    @property
    def actions_enabled(self) -> bool:
        return self._secret is not None

    def matches(self, token: str | None) -> bool:
        if self._secret is None or token is None:
            return False
        return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self._secret)

    def bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPException(401, "the Authorization header must be `Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})
        return value.strip()

    async def writer(self, request: Request) -> None:
        """Dependency of every route that publishes to the log: the bearer token, always."""
        if self._secret is None:
            raise HTTPException(403, "actions are disabled: the server has no token "
                                "(BACKORDERS_API_TOKEN or BACKORDERS_API_TOKEN_FILE)")
        token = self.bearer(request)
        if token is None:
            raise HTTPException(401, "this needs the API token: send `Authorization: Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})
        if not self.matches(token):
            raise HTTPException(403, "the token is not the API's token")

    async def reader(self, request: Request) -> None:
        """Dependency of every read: nothing, unless reads require the token (then the
        bearer token, or the console's session cookie)."""
        if not self.read_requires_token:
            return
        if self.has_session(request):
            return
        await self.writer(request)

    # A session is signed with the token rather than kept in memory: every process of
    # `serve --workers N` (each with its own memory) accepts the others' sessions, and a
    # restart keeps them. `nonce.expiry.mac`, the MAC over `nonce.expiry` keyed by the token.

    def has_session(self, request: Request) -> bool:
        session = request.cookies.get(SESSION_COOKIE)
        if session is None or self._secret is None:
            return False
        body, _, mac = session.rpartition(".")
        _, _, expires = body.partition(".")
        return (hmac.compare_digest(mac.encode(), self._session_mac(body).encode())
                and expires.isdigit() and int(expires) > self._clock())

    def open_session(self) -> str:
        body = f"{secrets.token_urlsafe(18)}.{int(self._clock()) + SESSION_SECONDS}"
        return f"{body}.{self._session_mac(body)}"

    def _session_mac(self, body: str) -> str:
        return hmac.new(b"console-session\x00" + (self._secret or b""), body.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()
