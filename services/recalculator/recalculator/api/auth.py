"""Who may do what through the API (docs/api.md, "Security").

Actions and re-submissions need the bearer token of the configuration
(`BACKORDERS_API_TOKEN`, or a file holding it, `BACKORDERS_API_TOKEN_FILE`): no
`Authorization: Bearer …` header gives a 401, another token a 403. With
`BACKORDERS_API_READ_REQUIRES_TOKEN=true` the reads need it too, or the console's session
cookie (given by its sign-in form, good for reads only: a cross-site form can make a
browser send a cookie, never a header, so nothing that changes the log accepts a cookie).
Tokens are compared in constant time and never logged, rendered or echoed."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from fastapi import HTTPException, Request
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SESSION_COOKIE = "backorders_session"
MAX_SESSIONS = 10_000  # sessions kept in memory; the oldest go first


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

    def __init__(self, secret: bytes | None, read_requires_token: bool = False) -> None:
        self._secret = secret
        self.read_requires_token = read_requires_token
        self._sessions: dict[str, None] = {}  # session ids given by the console's sign-in, in order

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

    def has_session(self, request: Request) -> bool:
        session = request.cookies.get(SESSION_COOKIE)
        return session is not None and session in self._sessions

    def open_session(self) -> str:
        session = secrets.token_urlsafe(32)
        self._sessions[session] = None
        while len(self._sessions) > MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        return session

    def close_session(self, request: Request) -> None:
        self._sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
