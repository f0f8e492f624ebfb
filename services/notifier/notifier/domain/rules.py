"""Which changes send an email, the notification's identity, the cool-down and slips.

The seed's `EmailCustomerForBackOrder` email goes out "whenever an order is marked as a
BackOrder": an order whose published status goes from `None` to `Partial` or `Full`, by a
recalculation or by a manual action (`MarkBackorder`). One email per such transition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

SCENARIO = "EmailCustomerForBackOrder"
# The order's expected date slipped later than the one last emailed (when a setting asks).
SLIP_SCENARIO = "EmailCustomerForExpectedDateSlip"
SCENARIOS = (SCENARIO, SLIP_SCENARIO)
NOTIFYING_STATUSES = frozenset({"Partial", "Full"})

_NAMESPACE = uuid.UUID("0f5b7a3c-6a0e-4d53-8b7e-2c4f1e9d8a61")


def is_marked_backorder(previous_status: str, status: str) -> bool:
    return previous_status == "None" and status in NOTIFYING_STATUSES


def is_slip(expected_day: str | None, emailed_day: str | None) -> bool:
    """Whether the order's expected day is later than the one its last email gave. Only
    known dates compare: a date becoming unknown, or known after an email that said
    unknown, is no slip."""
    return expected_day is not None and emailed_day is not None and expected_day > emailed_day


def notification_id(backorder_changed_id: str, scenario: str = SCENARIO) -> str:
    """The same `BackorderChanged` (redelivered, relayed again, replayed) always gives the
    same notification of a scenario, hence the same Message-ID."""
    return str(uuid.uuid5(_NAMESPACE, f"{scenario}\x1f{backorder_changed_id}"))


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
