"""The file profile: each message written as `<directory>/<notification id>.eml`.

Written to a temporary name and renamed, so a file is either complete or absent. Writing a
message again (after a crash before the `sent` commit) replaces the file with the same
bytes: with this profile a repeat leaves no trace.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import FileProfile
from ..domain.message import Composed
from .base import Accepted, DeliveryError


class FileChannel:
    def __init__(self, profile: FileProfile) -> None:
        self.directory = Path(profile.directory)

    def path_for(self, message: Composed) -> Path:
        name = message.message_id.strip("<>").split("@", 1)[0]
        return self.directory / f"{name}.eml"

    async def send(self, message: Composed) -> Accepted:
        try:
            # A few kilobytes to a local disk: written in place, not worth a thread hop.
            self._write(message)
        except OSError as error:  # a full or read-only disk may clear up
            raise DeliveryError(f"cannot write to {self.directory}: {error.strerror}", transient=True,
                                unreachable=True) from None
        return Accepted()

    def _write(self, message: Composed) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(message)
        partial = target.with_suffix(".eml.part")
        partial.write_bytes(message.data)
        os.replace(partial, target)

    async def close(self) -> None:
        return None
