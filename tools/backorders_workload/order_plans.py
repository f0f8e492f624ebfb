"""The orders of the day, planned up front: times, channels, customers, lines, payment."""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Any

from .day_base import DayBase
from .orders import _payment_status
from .shape import DAY_SECONDS, FIRST_ORDER_ID

CHANNELS = ("Wayfair", "Overstock", "Magento", "Local Store")


CHANNEL_CUM = tuple(accumulate((30, 15, 40, 15)))


FIRST = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas",
          "Harper", "Mason", "Amelia", "Ethan", "Ella", "Logan", "Aria", "Jacob", "Chloe", "Mateo")


LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Lopez",
         "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Martin", "Lee", "Perez", "White",
         "Harris", "Clark")


STREETS = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd", "Lakeview Dr",
            "Sunset Blvd", "Hillcrest Ave", "Washington St", "Park Pl", "River Rd")


CITIES = (("Brooklyn", "NY", "112"), ("Austin", "TX", "787"), ("Denver", "CO", "802"),
           ("Columbus", "OH", "432"), ("Portland", "OR", "972"), ("Nashville", "TN", "372"),
           ("Phoenix", "AZ", "850"), ("Raleigh", "NC", "276"), ("Tampa", "FL", "336"),
           ("Madison", "WI", "537"), ("Sacramento", "CA", "958"), ("Boise", "ID", "837"))


# (value as sent, cumulative weight). Names and Sellercloud codes (30 Charged, 10 NoPayment,
# 20 Authorized, 40 Uncleared, 70 PartialPayment).
PAYMENTS = tuple(zip(("Charged", "Unpaid", "Authorized", 30, 10, 20, 40, 70),
                      accumulate((800, 90, 50, 30, 10, 10, 5, 5))))


class OrderPlans(DayBase):
    def plan_orders(self) -> list[tuple[int, dict, list[dict]]]:
        rng, shape = self.rng, self.shape
        companies = [f"company-{i}" for i in range(1, shape.companies + 1)]
        company_cum = list(accumulate([2] + [1] * (shape.companies - 1)))  # company-1 is the big one
        pay_total = PAYMENTS[-1][1]
        pay_cum = [c for _, c in PAYMENTS]
        times = sorted(self.order_time() for _ in range(shape.orders))
        plans = []
        for idx, t in enumerate(times):
            n_lines = (1, 2, 3, 4)[bisect_right((70, 90, 97), self.below(100))]
            lines, seen = [], set()
            for _ in range(n_lines):
                sku = self.pick_sku()
                for _ in range(5):  # distinct SKUs per order, mostly
                    if sku not in seen:
                        break
                    sku = self.pick_sku()
                if sku in seen:
                    continue
                seen.add(sku)
                lines.append(self.line_dict(str(len(lines) + 1), sku, self.order_qty()))
            r = rng.random()
            status: Any = "OnHold" if r < 0.03 else "Quote" if r < 0.05 else "InProcess"
            if status == "InProcess" and rng.random() < 0.02:
                status = 2  # Sellercloud code for InProcess
            payment = PAYMENTS[bisect_right(pay_cum, self.below(pay_total))][0]
            order_date = t
            if rng.random() < 0.03:  # late-arriving import
                order_date = t - rng.randint(1, 40) * 86400 - self.below(86400)
            payment_date = None
            if _payment_status(payment) == "Charged":
                payment_date = self.ts(min(t, order_date + self.below(600)))
            first, last = self.pick(FIRST), self.pick(LAST)
            city, state, zip3 = self.pick(CITIES)
            attrs = {
                "order_date": self.ts(order_date),
                "order_status": status,
                "payment_status": payment,
                "payment_date": payment_date,
                "rush": rng.random() < 0.05,
                "picked": False,
                "ship_from_warehouse_id": None,
                "company_id": companies[bisect_right(company_cum, self.below(company_cum[-1]))],
                "channel": CHANNELS[bisect_right(CHANNEL_CUM, self.below(CHANNEL_CUM[-1]))],
                "customer": {
                    "email": f"{first}.{last}{1 + self.below(999)}@example.com".lower(),
                    "first_name": first,
                    "last_name": last,
                    "shipping_address": {
                        "name": f"{first} {last}",
                        "street1": f"{1 + self.below(9999)} {self.pick(STREETS)}",
                        "city": city, "state": state,
                        "postal_code": f"{zip3}{self.below(100):02d}", "country": "US",
                    },
                },
            }
            plans.append((t, {"order_id": str(FIRST_ORDER_ID + idx), **attrs}, lines))
        return plans

    def order_time(self) -> int:
        # Flat background plus a lunchtime and an evening peak.
        rng, r = self.rng, self.rng.random()
        if r < 0.5:
            t = rng.uniform(0, DAY_SECONDS)
        elif r < 0.75:
            t = rng.gauss(4.5 * 3600, 1.5 * 3600)
        else:
            t = rng.gauss(10 * 3600, 1.0 * 3600)
        return int(min(max(t, 60), DAY_SECONDS - 60))

    def order_qty(self) -> int:
        r = self.rng.random()
        if r < 0.82:
            return 1
        if r < 0.985:
            return self.rng.randint(2, 5)
        return self.rng.randint(10, 40)
