"""Which changes send an email, the notification's identity, and the cool-down.

The seed's `EmailCustomerForBackOrder` email goes out "whenever an order is marked as a
BackOrder": an order whose published status goes from `None` to `Partial` or `Full`, by a
recalculation or by a manual action (`MarkBackorder`). One email per such transition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

SCENARIO = "EmailCustomerForBackOrder"
NOTIFYING_STATUSES = frozenset({"Partial", "Full"})

_NAMESPACE = uuid.UUID("0f5b7a3c-6a0e-4d53-8b7e-2c4f1e9d8a61")


def is_marked_backorder(previous_status: str, status: str) -> bool:
    return previous_status == "None" and status in NOTIFYING_STATUSES


def notification_id(backorder_changed_id: str) -> str:
    """The same `BackorderChanged` (redelivered, relayed again, replayed) always gives the
    same notification, hence the same Message-ID."""
    return str(uuid.uuid5(_NAMESPACE, f"{SCENARIO}\x1f{backorder_changed_id}"))


def message_id(notification: str, domain: str) -> str:
    return f"<{notification}@{domain}>"


@dataclass(frozen=True, slots=True)
class CoolDown:
    """Suppresses an email when the order was already emailed less than `minutes` before,
    in business time (the `time` of the changes), against an order flapping in and out of
    backorder."""

    minutes: float = 0

    def suppresses(self, at_us: int, last_emailed_us: int | None) -> bool:
        if self.minutes <= 0 or last_emailed_us is None:
            return False
        return abs(at_us - last_emailed_us) < self.minutes * 60_000_000
