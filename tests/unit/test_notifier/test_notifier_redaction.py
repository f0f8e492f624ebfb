"""Credentials out of stored and logged errors (pure): the values given and their AUTH
encodings, and whatever is shaped like a credential; ordinary text is left alone."""

from __future__ import annotations

import base64

import pytest
from backorders_platform.redaction import MASK, encodings, redact


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer abc.def-ghi", f"Authorization: {MASK}"),
    ("{'Authorization': 'Basic dXNlcjpwdw==', 'Accept': '*/*'}", f"{{'Authorization': '{MASK}', 'Accept': '*/*'}}"),
    ("sent Bearer abc.def to the server", f"sent Bearer {MASK} to the server"),
    ('{"error": "invalid_client", "client_secret": "s3cr3t", "access_token": "t0k"}',
     f'{{"error": "invalid_client", "client_secret": {MASK}, "access_token": {MASK}}}'),
    ("grant_type=client_credentials&client_secret=s3cr3t&x=1",
     f"grant_type=client_credentials&client_secret={MASK}&x=1"),
    ("password: hunter22", f"password: {MASK}"),
    ("postgresql://backorders:pw123@db:5432/x refused", f"postgresql://backorders:{MASK}@db:5432/x refused"),
    ("550 5.1.1 <colin@example.com>: mailbox unavailable", "550 5.1.1 <colin@example.com>: mailbox unavailable"),
    ("order 42 has 3 lines; token count 7", "order 42 has 3 lines; token count 7"),
])
def test_what_is_shaped_like_a_credential_is_masked(text, expected):
    assert redact(text) == expected


def test_the_password_and_its_auth_encodings_are_masked():
    secret = "Hunter2-Secret"
    plain = base64.b64encode(f"\0mailer\0{secret}".encode()).decode()
    login = base64.b64encode(secret.encode()).decode()
    text = f"535 refused {plain} / {login} / {secret}"
    assert redact(text, encodings("mailer", secret)) == f"535 refused {MASK} / {MASK} / {MASK}"
    assert redact("", ["x"]) == "" and redact(None) == ""
