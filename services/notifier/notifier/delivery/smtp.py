"""The SMTP profile, through aiosmtplib: one connection reused for the messages of a
delivery round, opened when the first one goes and dropped after any error (except a
refused customer address: that transaction is reset and the connection kept).

Each message is one MAIL, one RCPT per recipient, and DATA only once the customer's RCPT
was accepted: when the customer's address is refused (4xx or 5xx) the transaction is reset
before DATA, so the Cc/Bcc copies go out only together with the customer's message and a
retry never sends them twice.

Security `none` never upgrades the connection, `starttls` requires STARTTLS (a server that
does not offer it is a permanent failure, not a connection problem), `tls` speaks
TLS from the first byte; certificates are verified unless the profile says otherwise (an
extra CA file may be given). The password is read from its environment variable or file when
the connection is opened and is never part of an error or a log line: every error is
redacted of it (and of its AUTH PLAIN / LOGIN encodings, which a server may echo in its
reply) and of anything shaped like a credential (`recalculator/redaction.py`).
"""

from __future__ import annotations

import ssl

import aiosmtplib
from backorders_platform.redaction import encodings, redact

from ..config import ProfileError, SmtpProfile
from ..domain.message import Composed
from .base import Accepted, DeliveryError


class SmtpChannel:
    def __init__(self, profile: SmtpProfile) -> None:
        self.profile = profile
        self.client: aiosmtplib.SMTP | None = None
        self.secrets: list[str] = []  # the password as it may come back in a server's reply

    def _tls_context(self) -> ssl.SSLContext | None:
        profile = self.profile
        if profile.security == "none":
            return None
        context = ssl.create_default_context()
        if profile.ca_file is not None:
            context.load_verify_locations(cafile=str(profile.ca_file))
        if not profile.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _connect(self) -> aiosmtplib.SMTP:
        profile = self.profile
        try:
            password = profile.password()
            self.secrets = encodings(profile.username, password)
            context = self._tls_context()
        except ProfileError as error:
            raise DeliveryError(str(error), transient=False) from None
        except (OSError, ssl.SSLError) as error:
            raise DeliveryError(f"cannot load CA file {profile.ca_file}: {error}", transient=False) from None
        client = aiosmtplib.SMTP(
            hostname=profile.host,
            port=profile.effective_port,
            use_tls=profile.security == "tls",
            start_tls=False,  # never upgrade on its own: STARTTLS is asked for and checked below
            validate_certs=profile.verify_certificate,
            tls_context=context,
            timeout=profile.timeout_seconds,
            local_hostname=profile.local_hostname,
        )
        try:
            await client.connect()
            if profile.security == "starttls":
                await client.ehlo()
                if not client.supports_extension("starttls"):
                    # The server (or something in between stripping it) does not offer it:
                    # retrying will not change that, and sending in clear is not an option.
                    raise DeliveryError(
                        f"the server {profile.host}:{profile.effective_port} does not offer STARTTLS, "
                        "which the profile requires", transient=False)
                await client.starttls()
            if profile.username:
                await client.login(profile.username, password or "")
        except BaseException:
            client.close()
            raise
        return client

    async def send(self, message: Composed) -> Accepted:
        try:
            if self.client is None or not self.client.is_connected:
                self.client = await self._connect()
            return await self._transaction(self.client, message)
        except DeliveryError as error:
            if not error.keep_connection:
                await self.close()
            raise self._redacted(error) from None
        except Exception as error:  # noqa: BLE001 - every failure is classified below
            await self.close()
            raise self._redacted(classify(error)) from None

    def _redacted(self, error: DeliveryError) -> DeliveryError:
        error.reason = redact(error.reason, self.secrets)
        error.args = (error.reason,)
        return error

    async def _transaction(self, client: aiosmtplib.SMTP, message: Composed) -> Accepted:
        """MAIL, RCPT for each recipient, then DATA only if the customer's address was
        taken: a refused customer (4xx: later; 5xx: failed) ends the transaction with RSET
        before any copy went to the Cc/Bcc recipients, so a retry sends each copy once."""
        options = [f"SIZE={len(message.data)}"] if client.supports_extension("size") else []
        await client.mail(message.sender, options=options)
        refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
        for recipient in message.recipients:
            try:
                await client.rcpt(recipient)
            except aiosmtplib.SMTPRecipientRefused as error:
                refused[recipient] = error
        detail = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in sorted(refused.items()))
        customer = refused.get(message.to)
        if customer is not None:
            transient = 400 <= customer.code < 500
            try:
                await client.rset()  # nothing was sent to anyone; the connection stays usable
                reset = True
            except Exception:  # noqa: BLE001 - then the connection is dropped instead
                reset = False
            raise DeliveryError(
                f"the customer's address was refused: {customer.code} {customer.message}"
                + (f" (refused: {detail})" if len(refused) > 1 else "")
                + ("" if transient else "; nothing was sent"),
                transient=transient, keep_connection=reset)
        await client.data(message.data)
        if refused:
            return Accepted(note=f"refused recipients: {detail}")
        return Accepted()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except Exception:  # noqa: BLE001 - the connection is going anyway
            client.close()


def classify(error: BaseException) -> DeliveryError:
    """A failed SMTP exchange as transient (retry later) or permanent (record it failed)."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        replies = error.recipients
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in replies)
        transient = any(400 <= r.code < 500 for r in replies)
        return DeliveryError(f"recipients refused: {detail}", transient=transient)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        what = {
            aiosmtplib.SMTPAuthenticationError: "authentication refused",
            aiosmtplib.SMTPSenderRefused: "sender refused",
            aiosmtplib.SMTPRecipientRefused: "recipient refused",
            aiosmtplib.SMTPDataError: "message refused",
            aiosmtplib.SMTPHeloError: "greeting refused",
        }.get(type(error), "server replied")
        transient = 400 <= error.code < 500 or error.code < 0
        # 421: the service is closing the channel (RFC 5321), for every message alike.
        return DeliveryError(f"{what}: {error.code} {error.message}", transient=transient,
                             unreachable=transient and (error.code == 421 or isinstance(error, aiosmtplib.SMTPConnectError)))
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"not supported by the server: {error.message}", transient=False)
    cause: BaseException | None = error
    while cause is not None:  # aiosmtplib wraps the handshake's error in SMTPConnectError
        if isinstance(cause, ssl.SSLCertVerificationError):
            return DeliveryError(f"TLS certificate not trusted: {cause.verify_message}", transient=False)
        cause = cause.__cause__
    if isinstance(error, aiosmtplib.SMTPTimeoutError):
        return DeliveryError(f"timed out: {error.message}", transient=True, unreachable=True)
    if isinstance(error, aiosmtplib.SMTPException):
        return DeliveryError(f"connection failed: {error.message}", transient=True, unreachable=True)
    if isinstance(error, (OSError, TimeoutError)):
        return DeliveryError(f"connection failed: {error}", transient=True, unreachable=True)
    return DeliveryError(f"unexpected {type(error).__name__}: {error}", transient=True)
