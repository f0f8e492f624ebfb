"""Sending a built message through a profile: SMTP, or `.eml` files for the embedded default."""

from __future__ import annotations

from ..config import FileProfile, SmtpProfile
from .base import Accepted, Channel, DeliveryError
from .files import FileChannel
from .smtp import SmtpChannel


def open_channel(profile: SmtpProfile | FileProfile) -> Channel:
    """A channel on the profile; it connects when the first message goes."""
    if isinstance(profile, FileProfile):
        return FileChannel(profile)
    return SmtpChannel(profile)


__all__ = ["Accepted", "Channel", "DeliveryError", "open_channel"]
