"""CloudEvents for the notifier's unit tests: order events and BackorderChanged."""

from __future__ import annotations

import itertools
import json

from backorder_events import BackorderChanged, parse_event

_ids = itertools.count(1)


def order_created(order_id: str, *, company: str = "default", email: str | None = "ann@example.com",
                  lines=(("1", "cat-hammock", 2, "Cat Hammock"),), time: str = "2025-04-30T10:00:00Z",
                  first: str = "Ann", last: str = "Lee"):
    customer = None
    if email is not None or first or last:
        customer = {"email": email, "first_name": first, "last_name": last,
                    "shipping_address": {"name": f"{first} {last}", "street1": "1 Main St", "city": "Lakewood",
                                         "state": "NJ", "postal_code": "08701", "country": "US"}}
    return parse_event(json.dumps({
        "specversion": "1.0", "id": f"oc-{next(_ids)}", "source": "/oms", "type": "OrderCreated", "time": time,
        "data": {"order_id": order_id, "order_date": time, "company_id": company, "customer": customer,
                 "payment_status": "Charged",
                 "lines": [{"line_id": lid, "sku": sku, "qty": qty, "name": name} for lid, sku, qty, name in lines]},
    }))


def order_split(order_id: str, new_order_id: str, lines=(("1", 1, "1"),), time: str = "2025-04-30T11:00:00Z"):
    return parse_event(json.dumps({
        "specversion": "1.0", "id": f"os-{next(_ids)}", "source": "/oms", "type": "OrderSplit", "time": time,
        "data": {"order_id": order_id, "new_order_id": new_order_id,
                 "lines": [{"line_id": lid, "qty": qty, "new_line_id": nid} for lid, qty, nid in lines]},
    }))


def backorder_changed(order_id: str, *, status: str = "Full", previous: str = "None", company: str = "default",
                      reason: str = "recalculation", id: str | None = None, time: str = "2025-04-30T12:00:00Z",
                      lines=(("1", "cat-hammock", 2, 2, 0),)) -> BackorderChanged:
    return BackorderChanged.model_validate({
        "specversion": "1.0", "id": id or f"bc-{next(_ids)}", "source": "/backorders/recalculator",
        "type": "BackorderChanged", "time": time, "subject": order_id,
        "data": {"order_id": order_id, "company_id": company, "status": status, "previous_status": previous,
                 "reason": reason, "cause_id": "cause",
                 "lines": [{"line_id": lid, "sku": sku, "qty": qty, "backorder_qty": bo,
                            "previous_backorder_qty": prev} for lid, sku, qty, bo, prev in lines]},
    })
