"""The seeded trading-day generator: determinism, shape, and internal consistency."""

from __future__ import annotations

import io
import json
import time
from collections import Counter, defaultdict, deque
from datetime import UTC, datetime

import pytest
from backorders_workload import (
    BAD_EVENT_KINDS,
    KNOWN_TYPES,
    WorkloadShape,
    classify_bad_events,
    generate_day,
    write_jsonl,
)

SMALL = WorkloadShape(orders=400, skus=40)
CLOSED = {"Completed", "Cancelled", "Void", 3, -1, 999}
SHIPPED = {"Completed", 3}
MAIN = "WH-MAIN"
BOOK_OUT_WITHIN = 15 * 60  # seconds from an order's Completed to the book-out of its lines
CALCULATED_PAYMENTS = {"Charged", "Unpaid", "Uncleared", "PartiallyPaid", 30, 80, 10, 40, 70}


@pytest.fixture(scope="module")
def day() -> list[dict]:
    return generate_day()


@pytest.fixture(scope="module")
def replayed(day):
    return replay(day)


def replay(events: list[dict]) -> dict:
    """Apply every event that is not deliberately bad, asserting it is consistent.

    A reference model independent of the generator: known orders, lines, SKUs, warehouses
    and POs; positive quantities; splits within the line's current qty; nothing touches a
    closed order; a shipped order (``Completed``) had its units on hand in WH-MAIN, net of
    book-outs still due, and every one of its lines is booked out (a negative delta in
    WH-MAIN, no ``recalculate``) within 15 minutes. Returns the final state, with the
    stock deltas split into ``book_outs`` and ``cycle_counts``.
    """
    bad = classify_bad_events(events)
    warehouses: dict[str, str] = {}
    products: dict[str, str | None] = {}
    pos: set[str] = set()
    stock: Counter = Counter()
    orders: dict[str, dict] = {}
    due: dict[tuple[str, int], deque] = defaultdict(deque)  # (sku, qty) -> deadlines of book-outs
    owed: Counter = Counter()  # sku -> units shipped but not yet booked out
    book_outs: list[dict] = []
    cycle_counts: list[dict] = []

    def open_order(order_id: str) -> dict:
        assert order_id in orders, f"unknown order {order_id}"
        order = orders[order_id]
        assert order["order_status"] not in CLOSED, f"{order_id} modified after it closed"
        return order

    for i, ev in enumerate(events):
        if i in bad:
            continue
        assert ev["type"] in KNOWN_TYPES
        d = ev["data"]
        now = datetime.fromisoformat(ev["time"]).timestamp()
        match ev["type"]:
            case "WarehouseUpserted":
                warehouses[d["warehouse_id"]] = d["type"]
            case "ProductUpserted":
                products[d["sku"]] = d["replacement_sku"]
            case "PurchaseOrderUpdated":
                pos.add(d["po_id"])
                assert all(line["sku"] in products and line["qty_ordered"] > 0 for line in d["lines"])
            case "ContainerUpdated":
                assert all(line["sku"] in products and line["qty"] > 0 for line in d["lines"])
            case "InventoryAdjusted":
                assert d["sku"] in products and d["warehouse_id"] in warehouses
                assert ("delta" in d) != ("set_to" in d)
                key = (d["sku"], d["warehouse_id"])
                if "set_to" in d:
                    stock[key] = d["set_to"]
                else:
                    assert d["delta"] != 0
                    stock[key] += d["delta"]
                    match = (d["sku"], -d["delta"])
                    if d["warehouse_id"] == MAIN and not d["recalculate"] and due.get(match):
                        assert now <= due[match].popleft(), "a shipped line booked out late"
                        owed[d["sku"]] += d["delta"]
                        book_outs.append(d)
                    else:
                        cycle_counts.append(d)
            case "POReceived":
                assert d["po_id"] in pos and d["warehouse_id"] in warehouses
                for line in d["lines"]:
                    assert line["sku"] in products and line["qty"] > 0
                    stock[(line["sku"], d["warehouse_id"])] += line["qty"]
            case "OrderCreated":
                assert d["order_id"] not in orders
                ids = [line["line_id"] for line in d["lines"]]
                assert ids and len(set(ids)) == len(ids)
                assert all(line["sku"] in products and line["qty"] > 0 for line in d["lines"])
                orders[d["order_id"]] = {**d, "lines": {line["line_id"]: dict(line) for line in d["lines"]}}
            case "OrderSplit":
                order = open_order(d["order_id"])
                assert d["new_order_id"] not in orders
                new_lines = {}
                for move in d["lines"]:
                    line = order["lines"][move["line_id"]]
                    assert 0 < move["qty"] <= line["qty"], "split moves more than the line holds"
                    new_lines[move["new_line_id"]] = {**line, "line_id": move["new_line_id"], "qty": move["qty"]}
                    line["qty"] -= move["qty"]
                    if line["qty"] == 0:
                        del order["lines"][move["line_id"]]
                assert order["lines"], "a split emptied the original order"
                orders[d["new_order_id"]] = {**order, "order_id": d["new_order_id"], "lines": new_lines}
            case "ItemAdded":
                order, line = open_order(d["order_id"]), d["line"]
                assert line["line_id"] not in order["lines"]
                assert line["sku"] in products and line["qty"] > 0
                order["lines"][line["line_id"]] = dict(line)
            case "ItemReplaced":
                line = open_order(d["order_id"])["lines"][d["line_id"]]
                assert d["new_sku"] in products and d["new_sku"] != line["sku"]
                assert d["qty"] is None or d["qty"] > 0
                line["sku"] = d["new_sku"]
                line["qty"] = d["qty"] or line["qty"]
            case "OrderStatusChanged":
                order = open_order(d["order_id"])
                order.update({k: v for k, v in d.items() if k != "order_id"})
                if order["order_status"] in SHIPPED:
                    units: Counter = Counter()
                    for line in order["lines"].values():
                        units[line["sku"]] += line["qty"]
                        due[(line["sku"], line["qty"])].append(now + BOOK_OUT_WITHIN)
                    for sku, qty in units.items():
                        assert stock[(sku, MAIN)] - owed[sku] >= qty, f"{d['order_id']} shipped units not on hand"
                        owed[sku] += qty
            case "ReallocateBackorder":
                order = open_order(d["order_id"])
                for line in d["lines"]:
                    assert 0 <= line["backorder_qty"] <= order["lines"][line["line_id"]]["qty"]
            case "MarkBackorder" | "MarkNotBackorder":
                assert d["order_ids"]
                for order_id in d["order_ids"]:
                    open_order(order_id)
            case "RecalculateBackorders":
                assert d == {"order_ids": [], "skus": []}
    assert not any(due.values()), "shipped lines never booked out"
    assert not any(owed.values())
    return {"warehouses": warehouses, "products": products, "stock": stock, "orders": orders,
            "book_outs": book_outs, "cycle_counts": cycle_counts}


def end_of_day_backorders(state: dict) -> dict[str, int]:
    """Order id -> backorder units after a full recalculation with default settings.

    backorder-rules.md §3-6 in default mode: one pool per SKU over the non-Dropship,
    non-Unsellable warehouses; InProcess orders with a Charged or unpaid-ish payment; plain
    allocation by (order_date, order_id, line_id).
    """
    excluded = {w for w, typ in state["warehouses"].items() if typ in ("Dropship", "Unsellable")}
    supply: Counter = Counter()
    for (sku, wid), qty in state["stock"].items():
        if wid not in excluded:
            supply[sku] += qty
    supply = Counter({sku: max(0, qty) for sku, qty in supply.items()})
    lines = sorted(
        (order["order_date"], order["order_id"], line["line_id"], line["sku"], line["qty"])
        for order in state["orders"].values()
        if order["order_status"] in ("InProcess", 2) and order["payment_status"] in CALCULATED_PAYMENTS
        for line in order["lines"].values()
    )
    backorders = dict.fromkeys(state["orders"], 0)
    for _, order_id, _, sku, qty in lines:
        got = min(qty, supply[sku])
        supply[sku] -= got
        backorders[order_id] += qty - got
    return backorders


# ---------------------------------------------------------------------------- determinism


def test_same_seed_and_shape_give_identical_output(day):
    assert generate_day() == day
    assert generate_day(7, SMALL) == generate_day(7, SMALL)


def test_different_seed_gives_different_output(day):
    other = generate_day(43)
    assert other != day
    assert [e.get("data") for e in other] != [e.get("data") for e in day]


def test_no_global_random_or_clock(monkeypatch):
    import random

    first = generate_day(5, SMALL)
    random.seed(12345)
    monkeypatch.setattr(time, "time", lambda: 0.0)
    assert generate_day(5, SMALL) == first


# ---------------------------------------------------------------------------- envelope


def test_times_are_non_decreasing_rfc3339_within_the_day(day):
    times = [e["time"] for e in day if "__raw__" not in e]
    assert times == sorted(times)
    assert times[0] == "2025-04-30T08:00:00Z" and times[-1] == "2025-04-30T20:00:00Z"
    for t in times:
        assert t.endswith("Z") and datetime.fromisoformat(t).tzinfo is not None


def test_envelope_fields(day):
    sources = {"InventoryAdjusted": "/wms", "POReceived": "/wms", "WarehouseUpserted": "/wms",
               "PurchaseOrderUpdated": "/purchasing", "ContainerUpdated": "/purchasing"}
    for ev in day:
        if "__raw__" in ev:
            continue
        assert ev["specversion"] == "1.0" and ev["datacontenttype"] == "application/json"
        assert ev["id"].startswith("ev-42-") and len(ev["id"]) == len("ev-42-0000000")
        assert ev["source"] == sources.get(ev["type"], "/oms")
        if ev["type"].startswith(("Order", "Item")) and ev["type"] in KNOWN_TYPES:
            assert ev["subject"] == ev["data"]["order_id"]
        if ev["type"] in ("InventoryAdjusted", "ProductUpserted"):
            assert ev["subject"] == ev["data"]["sku"]


def test_ids_unique_except_the_deliberate_duplicate(day):
    ids = Counter(e["id"] for e in day if "__raw__" not in e)
    dupes = {i: n for i, n in ids.items() if n > 1}
    assert list(dupes.values()) == [2]
    (dup_id,) = dupes
    first, second = [i for i, e in enumerate(day) if e.get("id") == dup_id]
    assert day[first] == day[second] and day[second] is not day[first]


def test_custom_start_is_honoured():
    events = generate_day(1, SMALL, datetime(2024, 12, 1, 9, 30, tzinfo=UTC))
    times = [e["time"] for e in events if "__raw__" not in e]
    assert times[0] == "2024-12-01T09:30:00Z" and times[-1] == "2024-12-01T21:30:00Z"


# ---------------------------------------------------------------------------- content


def test_counts_per_type_for_the_default_shape(day, replayed):
    bad = classify_bad_events(day)
    counts = Counter(e["type"] for i, e in enumerate(day) if i not in bad)
    assert counts["WarehouseUpserted"] == 3
    assert counts["ProductUpserted"] == 300
    assert counts["OrderCreated"] == 5000
    assert counts["RecalculateBackorders"] == 24  # every 30 minutes, 08:30 .. 20:00
    assert counts["SettingsChanged"] == 0
    assert 35 <= counts["PurchaseOrderUpdated"] <= 45
    assert 1 <= counts["ContainerUpdated"] <= 2
    assert 45 <= counts["POReceived"] <= 75
    adjustments = [e["data"] for i, e in enumerate(day) if e.get("type") == "InventoryAdjusted" and i not in bad]
    deltas = replayed["cycle_counts"]
    assert sum("set_to" in a for a in adjustments) >= 300
    assert len(adjustments) == sum("set_to" in a for a in adjustments) + len(deltas) + len(replayed["book_outs"])
    assert 120 <= len(deltas) <= 180
    assert 0.15 <= sum(a["recalculate"] for a in deltas) / len(deltas) <= 0.45
    assert all(1 <= abs(a["delta"]) <= 10 for a in deltas)
    # ~2% of splittable orders, ~1% of orders each.
    assert 15 <= counts["OrderSplit"] <= 70
    assert 25 <= counts["ItemAdded"] <= 80
    assert 25 <= counts["ItemReplaced"] <= 80
    for manual in ("MarkBackorder", "MarkNotBackorder", "ReallocateBackorder"):
        assert 1 <= counts[manual] <= 8
    changed = {e["data"]["order_id"] for i, e in enumerate(day) if e.get("type") == "OrderStatusChanged" and i not in bad}
    assert 0.20 <= len(changed) / 5000 <= 0.30


def test_shipped_orders_are_booked_out_of_stock(day, replayed):
    # replay() matched every book-out to a shipped line within 15 minutes and checked that
    # the units were on hand; here the volumes and the shape of the book-outs.
    shipped = [o for o in replayed["orders"].values() if o["order_status"] in SHIPPED]
    lines = [line for o in shipped for line in o["lines"].values()]
    book_outs = replayed["book_outs"]
    assert 0.08 <= len(shipped) / 5000 <= 0.2
    assert len(book_outs) == len(lines)
    assert Counter((b["sku"], -b["delta"]) for b in book_outs) == Counter((x["sku"], x["qty"]) for x in lines)
    assert all(b["warehouse_id"] == MAIN and b["recalculate"] is False for b in book_outs)
    bad = classify_bad_events(day)
    completed = [e["data"]["order_id"] for i, e in enumerate(day) if i not in bad
                 and e.get("type") == "OrderStatusChanged" and e["data"].get("order_status") in SHIPPED]
    assert sorted(completed) == sorted(o["order_id"] for o in shipped)


def test_order_mix(day):
    bad = classify_bad_events(day)
    created = [e["data"] for i, e in enumerate(day) if e.get("type") == "OrderCreated" and i not in bad]
    assert created[0]["order_id"] == "5145827"
    assert [int(o["order_id"]) for o in created] == list(range(5145827, 5145827 + 5000))
    n_lines = Counter(len(o["lines"]) for o in created)
    assert n_lines[1] > 0.6 * 5000 and set(n_lines) <= {1, 2, 3, 4}
    qtys = Counter(line["qty"] for o in created for line in o["lines"])
    total = sum(qtys.values())
    assert qtys[1] / total > 0.75 and any(10 <= q <= 40 for q in qtys)
    payments = Counter(o["payment_status"] for o in created)
    assert payments["Charged"] / 5000 > 0.7
    assert payments["Unpaid"] and payments["Authorized"] and payments[30]
    statuses = Counter(o["order_status"] for o in created)
    assert statuses["OnHold"] and statuses["Quote"] and statuses["InProcess"] > 0.9 * 5000
    assert 0.02 <= sum(o["rush"] for o in created) / 5000 <= 0.08
    late = [o for o in created if o["order_date"] < "2025-04-30"]
    assert 0.015 <= len(late) / 5000 <= 0.05
    assert all("2025-03-20" <= o["order_date"] for o in late)
    for o in created:
        assert (o["payment_date"] is not None) == (o["payment_status"] in ("Charged", 30))
        assert o["company_id"] in ("company-1", "company-2")
        assert o["channel"] in ("Wayfair", "Overstock", "Magento", "Local Store")
        assert o["customer"]["shipping_address"]["country"] == "US"
        assert [line["line_id"] for line in o["lines"]] == [str(i) for i in range(1, len(o["lines"]) + 1)]


def test_skus_are_popularity_skewed(day):
    per_sku = Counter(line["sku"] for e in day if e.get("type") == "OrderCreated" for line in e["data"]["lines"])
    top = [n for _, n in per_sku.most_common()]
    assert top[0] > 10 * top[len(top) // 2]  # Zipf: the bestseller dwarfs the median SKU


def test_replacement_skus_never_self_nor_chained(replayed):
    products = replayed["products"]
    links = {sku: rep for sku, rep in products.items() if rep}
    assert 1 <= len(links) <= 0.05 * len(products)
    for sku, rep in links.items():
        assert rep != sku and rep in products and products[rep] is None


def test_every_valid_event_is_consistent(day, replayed):
    # replay() asserts as it goes; here only that it covered the orders it should have.
    created = len({e["id"] for e in day if e.get("type") == "OrderCreated"})
    splits = {e["data"]["new_order_id"] for e in day if e.get("type") == "OrderSplit"}
    assert len(replayed["orders"]) == created + len(splits)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_seeds_and_shapes_are_consistent_too(seed):
    replay(generate_day(seed, SMALL))
    replay(generate_day(seed, WorkloadShape(orders=300, skus=10, warehouses=5, companies=4, recalc_every_minutes=45)))


def test_splits_never_exceed_the_current_line_qty(day):
    splits = [e for e in day if e.get("type") == "OrderSplit"]
    assert splits and all(e["data"]["new_order_id"].startswith(e["data"]["order_id"] + "-S") for e in splits)
    # The quantity bound itself is asserted by replay(); check it did see partial and whole moves.
    state_lines = {}
    partial = whole = 0
    for ev in day:
        if ev.get("type") == "OrderCreated":
            for line in ev["data"]["lines"]:
                state_lines[(ev["data"]["order_id"], line["line_id"])] = line["qty"]
        elif ev.get("type") == "OrderSplit":
            for move in ev["data"]["lines"]:
                key = (ev["data"]["order_id"], move["line_id"])
                if key in state_lines:
                    assert move["qty"] <= state_lines[key]
                    partial += move["qty"] < state_lines[key]
                    whole += move["qty"] == state_lines[key]
                    state_lines[key] -= move["qty"]
    assert partial and whole


def test_the_deliberately_bad_events(day):
    bad = classify_bad_events(day)
    assert sorted(bad.values()) == sorted(BAD_EVENT_KINDS)
    by_kind = {kind: day[i] for i, kind in bad.items()}
    with pytest.raises(json.JSONDecodeError):
        json.loads(by_kind["not-json"]["__raw__"])
    assert "\n" not in by_kind["not-json"]["__raw__"]
    assert by_kind["zero-qty"]["type"] == "ItemAdded" and by_kind["zero-qty"]["data"]["line"]["qty"] == 0
    assert by_kind["unknown-order"]["type"] == "OrderStatusChanged"
    assert by_kind["unknown-type"]["type"] not in KNOWN_TYPES
    dup = by_kind["duplicate-id"]
    assert dup["type"] in ("InventoryAdjusted", "POReceived", "OrderCreated", "OrderSplit", "ItemAdded")


def test_bad_events_count_follows_the_shape():
    assert classify_bad_events(generate_day(3, WorkloadShape(orders=300, skus=30, bad_events=0))) == {}
    kinds = classify_bad_events(generate_day(3, WorkloadShape(orders=300, skus=30, bad_events=2))).values()
    assert sorted(kinds) == ["not-json", "zero-qty"]


@pytest.mark.parametrize("seed", [42, 7, 2025])
def test_a_realistic_share_of_orders_ends_backordered(seed, day, replayed):
    state = replayed if seed == 42 else replay(generate_day(seed))
    backorders = end_of_day_backorders(state)
    share = sum(1 for b in backorders.values() if b > 0) / len(backorders)
    assert 0.15 <= share <= 0.30, share


# ---------------------------------------------------------------------------- output


def test_write_jsonl_round_trip(day, tmp_path):
    path = tmp_path / "day.jsonl"
    assert write_jsonl(day, path) == len(day)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(day)
    for line, ev in zip(lines, day):
        if "__raw__" in ev:
            assert line == ev["__raw__"]
        else:
            assert line == json.dumps(ev, separators=(",", ":"))
            assert json.loads(line) == ev
    buf = io.StringIO()
    assert write_jsonl(iter(day[:10]), buf) == 10
    assert buf.getvalue() == "\n".join(lines[:10]) + "\n"
    assert write_jsonl([], str(tmp_path / "empty.jsonl")) == 0


def test_events_are_json_ready(day):
    for ev in day:
        assert json.loads(json.dumps(ev)) == ev


def test_performance():
    started = time.perf_counter()
    generate_day()
    assert time.perf_counter() - started < 2.0
    big = generate_day(1, WorkloadShape(orders=50000, skus=2000))
    assert len({e["id"] for e in big if e.get("type") == "OrderCreated"}) == 50000
    replay(big)


def test_every_valid_event_passes_the_schema(day):
    events = pytest.importorskip("backorder_events")
    bad = classify_bad_events(day)
    for i, ev in enumerate(day):
        if i not in bad:
            events.parse_event(json.dumps(ev))
