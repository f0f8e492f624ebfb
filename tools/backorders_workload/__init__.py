"""A deterministic, seeded trading day for a multichannel seller, as CloudEvents: the input
of the demo (`backorders run`), the tests and the benchmarks, in no service's package.

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

The concerns live apart: ``shape`` (sizes, clock, calibration), ``catalog`` (warehouses,
products, the preamble's stock), ``order_plans``, ``schedule`` (the run of the day),
``order_events``, ``stock_events``, ``commands``, ``bad_inputs``, assembled in ``day``;
``jsonl`` writes the result.
"""

from .bad_inputs import classify_bad_events
from .day import generate_day, generate_days
from .jsonl import write_jsonl
from .shape import BAD_EVENT_KINDS, KNOWN_TYPES, WorkloadShape

__all__ = [
    "BAD_EVENT_KINDS",
    "KNOWN_TYPES",
    "WorkloadShape",
    "classify_bad_events",
    "generate_day",
    "generate_days",
    "write_jsonl",
]
