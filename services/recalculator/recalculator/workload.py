"""A deterministic, seeded trading day for a multichannel seller, as CloudEvents.

``generate_day(seed, shape, start)`` returns a list of CloudEvents 1.0 dicts in structured
JSON form (see ``/work/shared/spec/events.md``): ids ``ev-<seed>-<n:07d>``, business
``time`` as RFC 3339 strings ending in ``Z``, integer quantities, non-decreasing ``time``.
Only ``random.Random(seed)`` is used (no global random, no clock), so the same seed and
shape always give an identical list. ``write_jsonl`` writes one compact object per line.

The day (12 hours from ``start``, 08:00-20:00 by default):

* **Preamble**, all at ``start``: ``WarehouseUpserted`` (WH-MAIN Sellable, WH-DROP
  Dropship, WH-RET Unsellable, WH-SAT-n Sellable), ``ProductUpserted`` per SKU (~3% with a
  ``replacement_sku`` that never points at itself nor at a SKU that has one),
  ``PurchaseOrderUpdated`` (~40 per 300 SKUs), one or two ``ContainerUpdated`` and the
  opening stock as ``InventoryAdjusted`` ``set_to``. The stock is calibrated against the
  day's own demand so that about a fifth of the orders (17-25% over 30 seeds) end the day
  with some backorder: the bestsellers (>= 2% of units each) end at 60-90% of their demand,
  below them 4 SKUs in every 10 (stratified by demand, so the share of demand they carry is
  stable across seeds) end at 0-50%, the rest at 110-220%. Today's PO receipts are planned
  up front and netted out of the opening stock, so restocking cannot wash the shortage away;
  the units expected to ship today (15% of what a SKU's supply covers) are added to it, since
  shipping books them out of stock.
* **Orders**: ``OrderCreated`` with a Zipf-like (s=1.1) SKU popularity, mostly one line of
  qty 1; ~3% are late imports with an ``order_date`` 1-40 days back; payment mostly
  ``Charged`` plus ``Unpaid``, ``Authorized`` and a few Sellercloud integer codes.
* **Through the day**: ``POReceived`` (~60 per 5000 orders) into WH-MAIN from open POs,
  ``InventoryAdjusted`` cycle-count deltas (~150 per 5000 orders, ``delta`` +-1..10, ~30%
  with ``recalculate``), ``OrderStatusChanged`` for ~25% of orders (paid, picked, shipped =
  ``Completed``, ``Cancelled``, held/released), for every shipped order one book-out per
  line 1-15 minutes after its ``Completed`` (at the latest one second before 20:00):
  ``InventoryAdjusted`` in WH-MAIN with ``delta`` = -qty and ``recalculate`` false (~1 per
  shipped line, ~850 per 5000 orders), ``OrderSplit`` (~2% of splittable orders, new ids
  ``<id>-S<n>``), ``ItemAdded`` and ``ItemReplaced`` (~1% each), a few ``MarkBackorder`` /
  ``MarkNotBackorder`` / ``ReallocateBackorder``, and ``RecalculateBackorders`` (all SKUs)
  every ``recalc_every_minutes``. With the default 30 minutes the last event of the day is
  that full recalculation at 20:00, so the day ends with fully recalculated quantities.
  No ``SettingsChanged``: the defaults of backorder-rules.md apply.

The generator keeps its own view of every order, so each valid event names an existing
order and line, splits never move more than a line's current quantity and leave at least
one unit behind, and closed (``Completed``/``Cancelled``) orders are never touched again.
Only orders the generator's rough running allocation covered ship, and only if WH-MAIN
physically holds their units when they ship (net of book-outs still to come), so shipping
never books out stock that was not on the shelf. The shipped units leave the demand and the
stock together, so a shipment frees nothing for the orders still waiting.

**Deliberately bad inputs** (``shape.bad_events``, at seeded random times; kinds taken in
this order and cycled if more than five are asked for), see ``classify_bad_events``:

1. ``not-json``: a truncated line, represented as ``{"__raw__": "<text>"}`` which
   ``write_jsonl`` writes verbatim.
2. ``zero-qty``: an ``ItemAdded`` on an open order whose line has ``qty`` 0 (a
   ``POReceived`` with a 0-qty line when no order is open yet).
3. ``unknown-order``: an ``OrderStatusChanged`` for an order id that never exists.
4. ``unknown-type``: a well-formed event of type ``OrderNoteAdded``.
5. ``duplicate-id``: an exact copy of an earlier effectful event (delta, receipt, order
   creation, split or added item), placed right after it so ``time`` stays monotonic
   (skipped when the day has no such event, e.g. ``orders=0``).

Schema-wise the first, second and fourth fail validation; the third and fifth are valid
messages that only the recalculator's state rejects (unknown order, already-seen id).
"""

from __future__ import annotations

import copy
import heapq
import json
import math
import os
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from random import Random
from typing import IO, Any, Callable, Iterable, Iterator

__all__ = [
    "BAD_EVENT_KINDS",
    "KNOWN_TYPES",
    "WorkloadShape",
    "classify_bad_events",
    "generate_day",
    "generate_days",
    "write_jsonl",
]


@dataclass(frozen=True)
class WorkloadShape:
    orders: int = 5000
    skus: int = 300
    warehouses: int = 3  # "WH-MAIN" Sellable, "WH-DROP" Dropship, "WH-RET" Unsellable (extra ones Sellable)
    companies: int = 2
    recalc_every_minutes: int = 30
    bad_events: int = 5  # deliberately invalid inputs (module docstring)


BAD_EVENT_KINDS = ("not-json", "zero-qty", "unknown-order", "unknown-type", "duplicate-id")

KNOWN_TYPES = frozenset(
    {
        "OrderCreated", "OrderSplit", "ItemAdded", "ItemReplaced", "OrderStatusChanged",
        "POReceived", "InventoryAdjusted", "WarehouseUpserted", "ProductUpserted",
        "SettingsChanged", "PurchaseOrderUpdated", "ContainerUpdated",
        "RecalculateBackorders", "ReallocateBackorder", "MarkBackorder", "MarkNotBackorder",
    }
)

_DEFAULT_START = datetime(2025, 4, 30, 8, tzinfo=UTC)
_DAY_SECONDS = 12 * 3600
_FIRST_ORDER_ID = 5145827
_TS = "%Y-%m-%dT%H:%M:%SZ"
_SHORT_PER_10 = 4  # SKUs in each block of 10 (by demand) that end the day well short
_HEAD_TARGET = (0.6, 0.9)  # end-of-day supply / demand of the bestsellers
_SHORT_TARGET = (0.0, 0.5)  # ... of the short SKUs below them
_SHIPPED_SHARE = 0.15  # of the units a SKU's supply covers, the share that ships today
_SHIP_BOOKING_DELAY = (60, 900)  # seconds from an order's Completed to its stock decrements

_WAREHOUSES = (("WH-MAIN", "Sellable", "Main warehouse"), ("WH-DROP", "Dropship", "Dropship partners"),
               ("WH-RET", "Unsellable", "Returns & damaged"))
_PRODUCTS = (
    ("CAT-HAMMOCK", "Cat Hammock"), ("DOG-BED", "Dog Bed"), ("BIRD-FEEDER", "Bird Feeder"),
    ("YOGA-MAT", "Yoga Mat"), ("TEA-KETTLE", "Tea Kettle"), ("DESK-LAMP", "Desk Lamp"),
    ("COFFEE-GRINDER", "Coffee Grinder"), ("GARDEN-HOSE", "Garden Hose"),
    ("BATH-TOWEL", "Bath Towel"), ("WALL-CLOCK", "Wall Clock"), ("THROW-PILLOW", "Throw Pillow"),
    ("BAR-STOOL", "Bar Stool"), ("PLANT-POT", "Plant Pot"), ("RAIN-BOOT", "Rain Boot"),
    ("PHONE-CASE", "Phone Case"), ("LUNCH-BOX", "Lunch Box"),
)
_VARIANTS = ("Grey", "Navy", "Oak", "Small", "Large", "Sage", "Ivory", "Black", "Walnut", "Rust")
_PRICES = (9.99, 14.99, 19.99, 24.99, 29.99, 39.99, 49.99, 79.99, 129.99, 249.99)
_CHANNELS = ("Wayfair", "Overstock", "Magento", "Local Store")
_CHANNEL_CUM = tuple(accumulate((30, 15, 40, 15)))
_FIRST = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Mia", "Lucas",
          "Harper", "Mason", "Amelia", "Ethan", "Ella", "Logan", "Aria", "Jacob", "Chloe", "Mateo")
_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Lopez",
         "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Martin", "Lee", "Perez", "White",
         "Harris", "Clark")
_STREETS = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd", "Lakeview Dr",
            "Sunset Blvd", "Hillcrest Ave", "Washington St", "Park Pl", "River Rd")
_CITIES = (("Brooklyn", "NY", "112"), ("Austin", "TX", "787"), ("Denver", "CO", "802"),
           ("Columbus", "OH", "432"), ("Portland", "OR", "972"), ("Nashville", "TN", "372"),
           ("Phoenix", "AZ", "850"), ("Raleigh", "NC", "276"), ("Tampa", "FL", "336"),
           ("Madison", "WI", "537"), ("Sacramento", "CA", "958"), ("Boise", "ID", "837"))

# (value as sent, cumulative weight). Names and Sellercloud codes (30 Charged, 10 NoPayment,
# 20 Authorized, 40 Uncleared, 70 PartialPayment).
_PAYMENTS = tuple(zip(("Charged", "Unpaid", "Authorized", 30, 10, 20, 40, 70),
                      accumulate((800, 90, 50, 30, 10, 10, 5, 5))))
_ORDER_STATUS_CODES = {1: "ShoppingCart", 2: "InProcess", 3: "Completed", 100: "ProblemOrder",
                       200: "OnHold", 300: "Quote", 999: "Void", -1: "Cancelled"}
_PAYMENT_CODES = {10: "Unpaid", 20: "Authorized", 30: "Charged", 40: "Uncleared",
                  50: "PartiallyRefunded", 60: "Refunded", 70: "PartiallyPaid", 80: "Charged",
                  99: "PaymentError"}
_CALCULATED_PAYMENTS = frozenset({"Charged", "Unpaid", "Uncleared", "PartiallyPaid"})
_CLOSED = frozenset({"Completed", "Cancelled", "Void"})

_SOURCES = {
    "InventoryAdjusted": "/wms", "POReceived": "/wms", "WarehouseUpserted": "/wms",
    "PurchaseOrderUpdated": "/purchasing", "ContainerUpdated": "/purchasing",
}  # everything else (orders, products, commands) comes from the OMS


def _order_status(value: Any) -> str:
    return _ORDER_STATUS_CODES.get(value, value) if isinstance(value, int) else value


def _payment_status(value: Any) -> str:
    return _PAYMENT_CODES.get(value, value) if isinstance(value, int) else value


class _Order:
    __slots__ = ("id", "status", "payment", "picked", "lines", "next_line", "splits", "short")

    def __init__(self, order_id: str, status: Any, payment: Any, lines: dict[str, list]) -> None:
        self.id = order_id
        self.status = _order_status(status)
        self.payment = _payment_status(payment)
        self.picked = False
        self.lines = lines  # line_id -> [sku, qty], insertion ordered
        self.next_line = len(lines) + 1
        self.splits = 0
        self.short = False  # the generator's rough guess that it is backordered

    @property
    def open(self) -> bool:
        return self.status not in _CLOSED

    @property
    def calculated(self) -> bool:
        return self.status == "InProcess" and self.payment in _CALCULATED_PAYMENTS


class _Day:
    def __init__(self, seed: int, shape: WorkloadShape, start: datetime) -> None:
        if shape.orders < 0 or shape.skus < 2 or shape.warehouses < 1 or shape.companies < 1:
            raise ValueError(f"unsupported workload shape: {shape}")
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.start = start.astimezone(UTC).replace(microsecond=0)
        self.seed = seed
        self.shape = shape
        self.rng = Random(seed)
        self.k = shape.orders / 5000  # order-driven volumes scale with the order count
        self.events: list[dict] = []
        self.n = 0
        self.queue: list[tuple[int, int, Callable, tuple]] = []
        self.seq = 0
        self.bad_ids: set[str] = set()
        self.orders: dict[str, _Order] = {}
        self.order_ids: list[str] = []
        self.avail: dict[str, int] = {}  # the rough running allocation's view of supply
        self.on_hand: dict[str, int] = {}  # physical units in the main warehouse
        self.po_open: dict[str, dict[str, int]] = {}  # po_id -> sku -> qty ordered
        self._ts_cache: dict[int, str] = {}

    # ------------------------------------------------------------------ plumbing
    def ts(self, s: int) -> str:
        text = self._ts_cache.get(s)
        if text is None:
            text = self._ts_cache[s] = (self.start + timedelta(seconds=s)).strftime(_TS)
        return text

    def emit(self, t: int, type_: str, data: dict, subject: str | None = None) -> dict:
        self.n += 1
        ev = {"specversion": "1.0", "id": f"ev-{self.seed}-{self.n:07d}",
              "source": _SOURCES.get(type_, "/oms"), "type": type_, "time": self.ts(t)}
        if subject is not None:
            ev["subject"] = subject
        ev["datacontenttype"] = "application/json"
        ev["data"] = data
        self.events.append(ev)
        return ev

    def at(self, t: int, fn: Callable, *args: Any) -> None:
        # Follow-ups that would fall after the business day simply do not happen today.
        if t < _DAY_SECONDS:
            self.seq += 1
            heapq.heappush(self.queue, (t, self.seq, fn, args))

    def below(self, n: int) -> int:
        """A uniform int in [0, n): Random.randrange is several times slower in the hot path."""
        return int(self.rng.random() * n)

    def pick(self, seq: Any) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def pick_sku(self) -> str:
        return self.ranked[bisect_right(self.pop_cum, self.rng.random() * self.pop_total)]

    def pick_open_order(self, tries: int = 30) -> _Order | None:
        if not self.order_ids:
            return None
        for _ in range(tries):
            order = self.orders[self.rng.choice(self.order_ids)]
            if order.open:
                return order
        return None

    def line_dict(self, line_id: str, sku: str, qty: int) -> dict:
        return {"line_id": line_id, "sku": sku, "qty": qty, "unit_price": self.price[sku],
                "name": self.names[sku]}

    # ------------------------------------------------------------------ the day
    def run(self) -> list[dict]:
        self.catalog()
        plans = self.plan_orders()
        self.preamble(plans)
        self.schedule(plans)
        while self.queue:
            t, _, fn, args = heapq.heappop(self.queue)
            fn(t, *args)
        for _ in range(self.bad_count("duplicate-id")):
            self.insert_duplicate()
        return self.events

    def bad_count(self, kind: str) -> int:
        return sum(1 for i in range(self.shape.bad_events) if BAD_EVENT_KINDS[i % 5] == kind)

    def catalog(self) -> None:
        rng, shape = self.rng, self.shape
        self.warehouses = [_WAREHOUSES[i] if i < 3 else (f"WH-SAT-{i - 2}", "Sellable", f"Satellite {i - 2}")
                           for i in range(shape.warehouses)]
        self.sellable = [w for w, typ, _ in self.warehouses if typ == "Sellable"]
        self.skus, self.names, self.price = [], {}, {}
        for i in range(1, shape.skus + 1):
            code, title = rng.choice(_PRODUCTS)
            sku = f"{code}-{i:04d}"
            self.skus.append(sku)
            self.names[sku] = f"{title}, {rng.choice(_VARIANTS)}"
            self.price[sku] = rng.choice(_PRICES)
        # Popularity: Zipf-like weights over a shuffled ranking.
        self.ranked = self.skus[:]
        rng.shuffle(self.ranked)
        self.pop_cum = list(accumulate(1 / r**1.1 for r in range(1, len(self.ranked) + 1)))
        self.pop_total = self.pop_cum[-1]
        # Replacement SKUs: sources and targets are disjoint, so no self-links and no chains.
        n_rep = max(1, round(0.03 * shape.skus))
        sources = rng.sample(self.skus, n_rep)
        targets = [s for s in self.skus if s not in set(sources)]
        self.replacement = {s: rng.choice(targets) for s in sources}

    def plan_orders(self) -> list[tuple[int, dict, list[dict]]]:
        rng, shape = self.rng, self.shape
        companies = [f"company-{i}" for i in range(1, shape.companies + 1)]
        company_cum = list(accumulate([2] + [1] * (shape.companies - 1)))  # company-1 is the big one
        pay_total = _PAYMENTS[-1][1]
        pay_cum = [c for _, c in _PAYMENTS]
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
            payment = _PAYMENTS[bisect_right(pay_cum, self.below(pay_total))][0]
            order_date = t
            if rng.random() < 0.03:  # late-arriving import
                order_date = t - rng.randint(1, 40) * 86400 - self.below(86400)
            payment_date = None
            if _payment_status(payment) == "Charged":
                payment_date = self.ts(min(t, order_date + self.below(600)))
            first, last = self.pick(_FIRST), self.pick(_LAST)
            city, state, zip3 = self.pick(_CITIES)
            attrs = {
                "order_date": self.ts(order_date),
                "order_status": status,
                "payment_status": payment,
                "payment_date": payment_date,
                "rush": rng.random() < 0.05,
                "picked": False,
                "ship_from_warehouse_id": None,
                "company_id": companies[bisect_right(company_cum, self.below(company_cum[-1]))],
                "channel": _CHANNELS[bisect_right(_CHANNEL_CUM, self.below(_CHANNEL_CUM[-1]))],
                "customer": {
                    "email": f"{first}.{last}{1 + self.below(999)}@example.com".lower(),
                    "first_name": first,
                    "last_name": last,
                    "shipping_address": {
                        "name": f"{first} {last}",
                        "street1": f"{1 + self.below(9999)} {self.pick(_STREETS)}",
                        "city": city, "state": state,
                        "postal_code": f"{zip3}{self.below(100):02d}", "country": "US",
                    },
                },
            }
            plans.append((t, {"order_id": str(_FIRST_ORDER_ID + idx), **attrs}, lines))
        return plans

    def order_time(self) -> int:
        # Flat background plus a lunchtime and an evening peak.
        rng, r = self.rng, self.rng.random()
        if r < 0.5:
            t = rng.uniform(0, _DAY_SECONDS)
        elif r < 0.75:
            t = rng.gauss(4.5 * 3600, 1.5 * 3600)
        else:
            t = rng.gauss(10 * 3600, 1.0 * 3600)
        return int(min(max(t, 60), _DAY_SECONDS - 60))

    def order_qty(self) -> int:
        r = self.rng.random()
        if r < 0.82:
            return 1
        if r < 0.985:
            return self.rng.randint(2, 5)
        return self.rng.randint(10, 40)

    def preamble(self, plans: list) -> None:
        rng, shape = self.rng, self.shape
        for wid, typ, name in self.warehouses:
            self.emit(0, "WarehouseUpserted", {"warehouse_id": wid, "type": typ, "name": name}, wid)
        for sku in self.skus:
            self.emit(0, "ProductUpserted", {"sku": sku, "replacement_sku": self.replacement.get(sku),
                                             "name": self.names[sku]}, sku)
        demand = dict.fromkeys(self.skus, 0)
        for _, _, lines in plans:
            for line in lines:
                demand[line["sku"]] += line["qty"]
        # Where each SKU's supply should stand at the end of the day, as a share of the day's
        # demand. The few head SKUs (>= 2% of all units each) run somewhat short; below them, in
        # each block of 10 SKUs by demand, 4 run well short. Stratifying keeps the share of
        # demand on short SKUs, and so the backorder rate, stable across seeds.
        total = sum(demand.values()) or 1
        by_demand = sorted(self.skus, key=lambda s: (-demand[s], s))
        head = [s for s in by_demand if demand[s] >= 0.02 * total]
        target = {s: rng.uniform(*_HEAD_TARGET) for s in head}
        rest = by_demand[len(head):]
        for i in range(0, len(rest), 10):
            block = rest[i:i + 10]
            short = set(rng.sample(block, min(len(block), _SHORT_PER_10)))
            for s in block:
                target[s] = rng.uniform(*_SHORT_TARGET) if s in short else rng.uniform(1.1, 2.2)
        # Purchase orders: half the lines restock the SKUs running low, half popular ones.
        low = [s for s in by_demand if target[s] < 1.0 and demand[s] > 0][: max(1, len(self.skus) // 6)]
        n_pos = max(1, round(40 * shape.skus / 300))
        for p in range(n_pos):
            po_id = f"PO-{10001 + p}"
            lines, seen = [], set()
            for _ in range(rng.randint(1, 5)):
                sku = rng.choice(low) if low and rng.random() < 0.5 else self.pick_sku()
                if sku in seen:
                    continue
                seen.add(sku)
                qty = max(6, math.ceil(demand[sku] * rng.uniform(0.2, 0.8) / 6) * 6)
                eta = self.start.replace(hour=0, minute=0, second=0) + timedelta(days=rng.randint(2, 20))
                lines.append({"sku": sku, "qty_ordered": qty, "qty_received": 0,
                              "estimated_delivery_date": eta.strftime(_TS)})
            self.po_open[po_id] = {line["sku"]: line["qty_ordered"] for line in lines}
            self.emit(0, "PurchaseOrderUpdated", {"po_id": po_id, "lines": lines}, po_id)
        # Today's receipts are planned here (their times come later) so that the opening stock
        # can be the target net of what arrives: partial deliveries of 1-3 lines of an open PO.
        self.receipts: list[tuple[str, list[dict]]] = []
        arriving = dict.fromkeys(self.skus, 0)
        remaining = {po: dict(lines) for po, lines in self.po_open.items()}
        wanted = round(60 * self.k)
        open_pos = list(remaining)
        # Never more of a SKU than most of its target, else the opening stock cannot make up for it.
        room = {sku: int(0.8 * target[sku] * demand[sku]) for sku in self.skus}
        while len(self.receipts) < wanted and open_pos:
            po_id = rng.choice(open_pos)
            skus = [sku for sku, qty in remaining[po_id].items() if qty > 0 and room[sku] > arriving[sku]]
            if not skus:
                open_pos.remove(po_id)  # nothing more of it can arrive today
                continue
            lines = []
            for sku in sorted(rng.sample(skus, rng.randint(1, min(3, len(skus))))):
                qty = rng.randint(max(1, remaining[po_id][sku] // 3), remaining[po_id][sku])
                qty = min(qty, room[sku] - arriving[sku])
                remaining[po_id][sku] -= qty
                arriving[sku] += qty
                lines.append({"sku": sku, "qty": qty})
            self.receipts.append((po_id, lines))
        stock = {}
        for sku in self.skus:
            d = demand[sku]
            if d == 0:
                stock[sku] = rng.randint(0, 12)
            else:
                # Plus what is expected to ship (and be booked out) today from what it covers.
                shipped = _SHIPPED_SHARE * d * min(target[sku], 1.0)
                stock[sku] = max(0, round(d * target[sku] + shipped) - arriving[sku])
                if target[sku] > 1:
                    stock[sku] += rng.randint(0, 6)
        for _ in range(rng.randint(1, 2) + shape.skus // 1000):
            cid = f"MSCU{rng.randint(1000000, 9999999)}"
            eta = self.start.replace(hour=0, minute=0, second=0) + timedelta(days=rng.randint(5, 30))
            skus = sorted({self.pick_sku() for _ in range(rng.randint(2, 6))})
            self.emit(0, "ContainerUpdated", {
                "container_id": cid, "estimated_arrival_date": eta.strftime(_TS),
                "lines": [{"sku": s, "qty": rng.randint(2, 40) * 12} for s in skus]}, cid)
        main = self.warehouses[0][0]
        for sku in self.skus:
            self.emit(0, "InventoryAdjusted", {"sku": sku, "warehouse_id": main, "set_to": stock[sku]}, sku)
        self.avail = dict(stock)
        self.on_hand = dict(stock)
        extras = [(wid, typ) for wid, typ, _ in self.warehouses[1:]]
        for wid, typ in extras:
            # A little stock elsewhere: dropship and returns do not count by default.
            share, lo, hi = {"Dropship": (0.15, 5, 60), "Unsellable": (0.08, 1, 6)}.get(typ, (0.10, 1, 8))
            for sku in self.skus:
                if rng.random() < share:
                    qty = rng.randint(lo, hi)
                    if typ == "Sellable":
                        self.avail[sku] += qty
                    self.emit(0, "InventoryAdjusted", {"sku": sku, "warehouse_id": wid, "set_to": qty}, sku)

    def schedule(self, plans: list) -> None:
        rng, k = self.rng, self.k
        for t, data, lines in plans:
            self.at(t, self.order_created, data, lines)
        for po_id, lines in self.receipts:
            self.at(rng.randrange(600, _DAY_SECONDS), self.po_received, po_id, lines)
        for _ in range(round(150 * k)):
            self.at(rng.randrange(60, _DAY_SECONDS), self.inventory_delta)
        few = max(1, round(k))
        for fn in (self.mark_backorder, self.mark_not_backorder, self.reallocate):
            for _ in range(rng.randint(3, 6) * few):
                self.at(rng.randrange(1800, _DAY_SECONDS), fn)
        bad = {"not-json": self.bad_not_json, "zero-qty": self.bad_zero_qty,
               "unknown-order": self.bad_unknown_order, "unknown-type": self.bad_unknown_type}
        for i in range(self.shape.bad_events):
            kind = BAD_EVENT_KINDS[i % 5]
            if kind in bad:
                self.at(rng.randrange(900, _DAY_SECONDS - 60), bad[kind])
        every = self.shape.recalc_every_minutes * 60
        if every > 0:
            t = every
            while t <= _DAY_SECONDS:
                # Pushed directly: the last run sits at the end of the day, after everything else.
                self.seq += 1
                heapq.heappush(self.queue, (t, self.seq, self.recalculate, ()))
                t += every

    # ------------------------------------------------------------------ order events
    def order_created(self, t: int, data: dict, lines: list[dict]) -> None:
        rng = self.rng
        order = _Order(data["order_id"], data["order_status"], data["payment_status"],
                       {line["line_id"]: [line["sku"], line["qty"]] for line in lines})
        self.orders[order.id] = order
        self.order_ids.append(order.id)
        self.emit(t, "OrderCreated", {**data, "lines": lines}, order.id)
        self.consume(order, lines)
        # What happens to this order later today (~25% of orders see a status change).
        r = rng.random()
        if order.payment in ("Unpaid", "Authorized") and r < 0.6:
            self.at(t + rng.randint(300, 3 * 3600), self.paid, order.id)
        elif order.status == "OnHold" and r < 0.6:
            self.at(t + rng.randint(600, 4 * 3600), self.set_status, order.id, "InProcess")
        elif order.status == "Quote" and r < 0.35:
            self.at(t + rng.randint(600, 4 * 3600), self.set_status, order.id, "InProcess")
        elif order.status == "InProcess":
            if r < 0.27:
                self.plan_shipping(t, order)
            elif r < 0.305:
                self.at(t + rng.randint(300, 5 * 3600), self.set_status, order.id, "Cancelled")
            elif r < 0.335:
                hold = t + rng.randint(300, 3 * 3600)
                self.at(hold, self.set_status, order.id, "OnHold")
                if rng.random() < 0.6:
                    self.at(hold + rng.randint(1200, 3 * 3600), self.set_status, order.id, "InProcess")
        splittable = len(lines) > 1 or any(line["qty"] > 1 for line in lines)
        if splittable and rng.random() < 0.025:
            self.at(t + rng.randint(600, 4 * 3600), self.split, order.id)
        if rng.random() < 0.012:
            self.at(t + rng.randint(300, 3 * 3600), self.item_added, order.id)
        if rng.random() < 0.012:
            self.at(t + rng.randint(300, 3 * 3600), self.item_replaced, order.id)

    def consume(self, order: _Order, lines: list[dict]) -> None:
        # A rough running allocation, only so that shipping picks orders that have stock.
        if not order.calculated:
            return
        for line in lines:
            have = self.avail[line["sku"]]
            if have < line["qty"]:
                order.short = True
            self.avail[line["sku"]] = max(have - line["qty"], min(have, 0))  # takes what is there

    def plan_shipping(self, t: int, order: _Order) -> None:
        ship = t + self.rng.randint(1800, 6 * 3600)
        if self.rng.random() < 0.4:
            self.at(max(t + 60, ship - self.rng.randint(600, 3600)), self.picked, order.id)
        self.at(ship, self.ship, order.id)

    def status_changed(self, t: int, order: _Order, **changes: Any) -> None:
        self.emit(t, "OrderStatusChanged", {"order_id": order.id, **changes}, order.id)

    def paid(self, t: int, order_id: str) -> None:
        order = self.orders[order_id]
        if not order.open or order.payment == "Charged":
            return
        code = self.rng.random() < 0.1
        self.status_changed(t, order, payment_status=30 if code else "Charged", payment_date=self.ts(t))
        order.payment = "Charged"
        if order.status == "InProcess" and self.rng.random() < 0.35:
            self.plan_shipping(t, order)

    def set_status(self, t: int, order_id: str, status: str) -> None:
        order = self.orders[order_id]
        if not order.open or order.status == status:
            return
        value: Any = status
        if self.rng.random() < 0.05:  # now and then in Sellercloud's codes
            value = {"InProcess": 2, "OnHold": 200, "Cancelled": -1}.get(status, status)
        self.status_changed(t, order, order_status=value)
        order.status = status

    def picked(self, t: int, order_id: str) -> None:
        order = self.orders[order_id]
        if order.status != "InProcess" or order.short or order.picked:
            return
        self.status_changed(t, order, picked=True)
        order.picked = True

    def ship(self, t: int, order_id: str) -> None:
        order = self.orders[order_id]
        # Sellers ship what they have: paid, in-process orders the rough allocation covered,
        # out of units physically on the shelf of the main warehouse.
        if order.status != "InProcess" or order.payment != "Charged" or order.short:
            return
        units: dict[str, int] = {}
        for sku, qty in order.lines.values():
            units[sku] = units.get(sku, 0) + qty
        if any(self.on_hand[sku] < qty for sku, qty in units.items()):
            return
        self.status_changed(t, order, order_status=3 if self.rng.random() < 0.05 else "Completed")
        order.status = "Completed"
        for sku, qty in units.items():
            self.on_hand[sku] -= qty
        # The warehouse books the shipped units out a little later, one delta per line.
        lines = [(sku, qty) for sku, qty in order.lines.values()]
        self.at(min(t + self.rng.randint(*_SHIP_BOOKING_DELAY), _DAY_SECONDS - 1), self.book_out, lines)

    def split(self, t: int, order_id: str) -> None:
        rng, order = self.rng, self.orders[order_id]
        if not order.open:
            return
        ids = list(order.lines)
        moves: list[tuple[str, int]] = []
        partial = [lid for lid in ids if order.lines[lid][1] > 1]
        if len(ids) > 1 and (not partial or rng.random() < 0.6):
            # Whole lines, always leaving at least one behind.
            moves = [(lid, order.lines[lid][1]) for lid in sorted(rng.sample(ids, rng.randint(1, len(ids) - 1)))]
        elif partial:
            lid = rng.choice(partial)
            moves = [(lid, rng.randint(1, order.lines[lid][1] - 1))]
        else:
            return
        order.splits += 1
        new_id = f"{order.id}-S{order.splits}"
        new_lines = {}
        out = []
        for n, (lid, qty) in enumerate(moves, 1):
            sku, have = order.lines[lid]
            out.append({"line_id": lid, "qty": qty, "new_line_id": str(n)})
            new_lines[str(n)] = [sku, qty]
            if qty == have:
                del order.lines[lid]
            else:
                order.lines[lid][1] = have - qty
        new = _Order(new_id, order.status, order.payment, new_lines)  # a split copies the rest
        new.picked, new.short = order.picked, order.short
        self.orders[new_id] = new
        self.order_ids.append(new_id)
        self.emit(t, "OrderSplit", {"order_id": order.id, "new_order_id": new_id, "lines": out}, order.id)

    def item_added(self, t: int, order_id: str) -> None:
        order = self.orders[order_id]
        if not order.open:
            return
        present = {sku for sku, _ in order.lines.values()}
        sku = self.pick_sku()
        if sku in present:
            return
        lid = str(order.next_line)
        order.next_line += 1
        line = self.line_dict(lid, sku, 1 if self.rng.random() < 0.85 else self.rng.randint(2, 4))
        order.lines[lid] = [sku, line["qty"]]
        self.emit(t, "ItemAdded", {"order_id": order.id, "line": line}, order.id)
        self.consume(order, [line])

    def item_replaced(self, t: int, order_id: str) -> None:
        rng, order = self.rng, self.orders[order_id]
        if not order.open:
            return
        lid = rng.choice(list(order.lines))
        old = order.lines[lid][0]
        new_sku = self.replacement.get(old) if rng.random() < 0.5 else None
        new_sku = new_sku or self.pick_sku()
        if new_sku == old:
            return
        qty = rng.randint(1, 3) if rng.random() < 0.3 else None
        order.lines[lid] = [new_sku, qty or order.lines[lid][1]]
        self.emit(t, "ItemReplaced", {"order_id": order.id, "line_id": lid, "new_sku": new_sku, "qty": qty},
                  order.id)

    # ------------------------------------------------------------------ stock events
    def po_received(self, t: int, po_id: str, lines: list[dict]) -> None:
        for line in lines:
            self.avail[line["sku"]] += line["qty"]
            self.on_hand[line["sku"]] += line["qty"]
        self.emit(t, "POReceived", {"po_id": po_id, "warehouse_id": self.warehouses[0][0], "lines": lines}, po_id)

    def book_out(self, t: int, lines: list[tuple[str, int]]) -> None:
        # Shipped units leave the shelf. No change to `avail`: the rough allocation already
        # took them when the order came in, and the order has left the demand with them.
        wid = self.warehouses[0][0]
        for sku, qty in lines:
            self.emit(t, "InventoryAdjusted", {"sku": sku, "warehouse_id": wid, "delta": -qty,
                                               "recalculate": False}, sku)

    def inventory_delta(self, t: int) -> None:
        rng = self.rng
        sku = self.pick_sku() if rng.random() < 0.5 else rng.choice(self.skus)
        wid = self.warehouses[0][0]
        if len(self.warehouses) > 1 and rng.random() < 0.15:
            wid = rng.choice(self.warehouses[1:])[0]
        delta = rng.randint(1, 10) * (-1 if rng.random() < 0.6 else 1)  # shrinkage beats finds
        if wid in self.sellable:
            self.avail[sku] += delta
        if wid == self.warehouses[0][0]:
            self.on_hand[sku] += delta
        self.emit(t, "InventoryAdjusted", {"sku": sku, "warehouse_id": wid, "delta": delta,
                                           "recalculate": rng.random() < 0.3}, sku)

    # ------------------------------------------------------------------ commands
    def recalculate(self, t: int) -> None:
        self.emit(t, "RecalculateBackorders", {"order_ids": [], "skus": []})

    def pick_open_ids(self) -> list[str]:
        ids = []
        for _ in range(self.rng.randint(1, 3)):
            order = self.pick_open_order()
            if order is not None and order.id not in ids:
                ids.append(order.id)
        return ids

    def mark_backorder(self, t: int) -> None:
        if ids := self.pick_open_ids():
            self.emit(t, "MarkBackorder", {"order_ids": ids})

    def mark_not_backorder(self, t: int) -> None:
        if ids := self.pick_open_ids():
            self.emit(t, "MarkNotBackorder", {"order_ids": ids})

    def reallocate(self, t: int) -> None:
        rng, order = self.rng, self.pick_open_order()
        if order is None:
            return
        ids = list(order.lines)
        chosen = sorted(rng.sample(ids, rng.randint(1, len(ids))))
        lines = [{"line_id": lid, "backorder_qty": rng.randint(0, order.lines[lid][1])} for lid in chosen]
        self.emit(t, "ReallocateBackorder", {"order_id": order.id, "lines": lines}, order.id)

    # ------------------------------------------------------------------ deliberately bad
    def bad_not_json(self, t: int) -> None:
        # A producer that died mid-write: the envelope of an event that never finished.
        self.n += 1
        text = (f'{{"specversion":"1.0","id":"ev-{self.seed}-{self.n:07d}","source":"/oms",'
                f'"type":"OrderCreated","time":"{self.ts(t)}","subject":"51')
        self.events.append({"__raw__": text})

    def bad_zero_qty(self, t: int) -> None:
        order = self.pick_open_order()
        if order is None:
            po_id = next(iter(self.po_open))
            ev = self.emit(t, "POReceived", {"po_id": po_id, "warehouse_id": self.warehouses[0][0],
                                             "lines": [{"sku": next(iter(self.po_open[po_id])), "qty": 0}]}, po_id)
        else:
            lid = str(order.next_line)
            order.next_line += 1  # the id is burnt, so no later valid ItemAdded reuses it
            line = self.line_dict(lid, self.pick_sku(), 0)
            ev = self.emit(t, "ItemAdded", {"order_id": order.id, "line": line}, order.id)
        self.bad_ids.add(ev["id"])

    def bad_unknown_order(self, t: int) -> None:
        # Below the first order id, so it never exists.
        order_id = str(_FIRST_ORDER_ID - self.rng.randint(1, 99999))
        ev = self.emit(t, "OrderStatusChanged", {"order_id": order_id, "order_status": "Completed"}, order_id)
        self.bad_ids.add(ev["id"])

    def bad_unknown_type(self, t: int) -> None:
        order = self.pick_open_order()
        order_id = order.id if order else str(_FIRST_ORDER_ID)
        ev = self.emit(t, "OrderNoteAdded", {"order_id": order_id, "note": "Customer asked for gift wrap"},
                       order_id)
        self.bad_ids.add(ev["id"])

    def insert_duplicate(self) -> None:
        effectful = {"InventoryAdjusted", "POReceived", "OrderCreated", "OrderSplit", "ItemAdded"}
        first_day = next((i for i, e in enumerate(self.events) if e.get("time", "") > self.ts(0)), None)
        if first_day is None:
            return
        i = self.rng.randrange(first_day, len(self.events))
        while i >= first_day:
            ev = self.events[i]
            if ev.get("type") in effectful and ev["id"] not in self.bad_ids:
                # Right after the original, so time stays non-decreasing.
                self.events.insert(i + 1, copy.deepcopy(ev))
                return
            i -= 1


def generate_day(seed: int = 42, shape: WorkloadShape = WorkloadShape(),
                 start: datetime = _DEFAULT_START) -> list[dict]:
    """The trading day described in the module docstring, as JSON-ready CloudEvent dicts."""
    return _Day(seed, shape, start).run()


def generate_days(days: int, seed: int = 42, shape: WorkloadShape = WorkloadShape(),
                  start: datetime = _DEFAULT_START) -> Iterator[list[dict]]:
    """Consecutive trading days for a long run (soak tests and benchmarks), one list per day.

    Day ``d`` is ``generate_day(seed, shape, start + d days)`` (the same catalogue every day)
    with its event ids and order ids prefixed ``d<d>-``, so that nothing is a duplicate of an
    earlier day. From the second day on, it opens at 07:00 with an ``OrderStatusChanged`` to
    ``Completed`` for every order the day before left open: a seller ships (or cancels) every
    order in the end, and orders left open for ever would pile up day after day."""
    left_open: list[str] = []
    for day in range(days):
        moment = start + timedelta(days=day)
        events = [_shifted(event, f"d{day}-") for event in generate_day(seed, shape, moment)]
        closing = (moment - timedelta(hours=1)).strftime(_TS)
        opening = [
            {"specversion": "1.0", "id": f"d{day}-close-{n:06d}", "source": "/oms",
             "type": "OrderStatusChanged", "time": closing, "subject": order_id,
             "datacontenttype": "application/json",
             "data": {"order_id": order_id, "order_status": "Completed"}}
            for n, order_id in enumerate(left_open, 1)
        ]
        left_open = _open_orders(events)
        yield opening + events


def _shifted(event: dict, prefix: str) -> dict:
    """An event with its id and the order ids it names prefixed (a raw line stays as it is)."""
    if "__raw__" in event:
        return event
    event = copy.deepcopy(event)
    event["id"] = prefix + event["id"]
    data = event.get("data") or {}
    for name in ("order_id", "new_order_id"):
        if name in data:
            if event.get("subject") == data[name]:
                event["subject"] = prefix + data[name]
            data[name] = prefix + data[name]
    if "order_ids" in data:
        data["order_ids"] = [prefix + order_id for order_id in data["order_ids"]]
    return event


def _open_orders(events: Iterable[dict]) -> list[str]:
    """Orders created or split off in `events` whose last status is not a closed one."""
    status: dict[str, str] = {}
    for event in events:
        if "__raw__" in event:
            continue
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "OrderCreated":
            status.setdefault(data["order_id"], _order_status(data.get("order_status", "InProcess")))
        elif kind == "OrderSplit" and data["order_id"] in status:
            status.setdefault(data["new_order_id"], status[data["order_id"]])
        elif kind == "OrderStatusChanged" and data.get("order_id") in status and "order_status" in data:
            status[data["order_id"]] = _order_status(data["order_status"])
    return [order_id for order_id, value in status.items() if value not in _CLOSED]


def write_jsonl(events: Iterable[dict], path_or_file: str | os.PathLike | IO[str]) -> int:
    """One compact JSON object per line (``{"__raw__": text}`` written verbatim); returns the count."""
    if hasattr(path_or_file, "write"):
        return _write(events, path_or_file)  # type: ignore[arg-type]
    with open(path_or_file, "w", encoding="utf-8", newline="\n") as fh:
        return _write(events, fh)


def _write(events: Iterable[dict], fh: IO[str]) -> int:
    count = 0
    for ev in events:
        raw = ev.get("__raw__") if len(ev) == 1 else None
        fh.write((raw if isinstance(raw, str) else json.dumps(ev, separators=(",", ":"))) + "\n")
        count += 1
    return count


def classify_bad_events(events: Iterable[dict]) -> dict[int, str]:
    """Index -> kind (``BAD_EVENT_KINDS``) of the deliberately invalid inputs of a generated day.

    Found from the stream itself: a ``__raw__`` line, an id seen before, a type outside the
    contract, a quantity of 0, or an ``OrderStatusChanged`` for an order never created.
    """
    seen: set[str] = set()
    created: set[str] = set()
    bad: dict[int, str] = {}
    for i, ev in enumerate(events):
        if "__raw__" in ev:
            bad[i] = "not-json"
            continue
        if ev["id"] in seen:
            bad[i] = "duplicate-id"
            continue
        seen.add(ev["id"])
        type_, data = ev["type"], ev.get("data") or {}
        if type_ not in KNOWN_TYPES:
            bad[i] = "unknown-type"
        elif any(line.get("qty") == 0 for line in data.get("lines") or [data.get("line") or {}]):
            bad[i] = "zero-qty"
        elif type_ == "OrderStatusChanged" and data.get("order_id") not in created:
            bad[i] = "unknown-order"
        elif type_ == "OrderCreated":
            created.add(data["order_id"])
        elif type_ == "OrderSplit":
            created.add(data["new_order_id"])
    return bad
