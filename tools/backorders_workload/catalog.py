"""Warehouses, products and the preamble of the day: opening stock calibrated against
the day's demand, purchase orders and containers."""

from __future__ import annotations

import math
from datetime import timedelta
from itertools import accumulate

from .day_base import DayBase
from .shape import HEAD_TARGET, SHIPPED_SHARE, SHORT_PER_10, SHORT_TARGET, TS

WAREHOUSES = (("WH-MAIN", "Sellable", "Main warehouse"), ("WH-DROP", "Dropship", "Dropship partners"),
               ("WH-RET", "Unsellable", "Returns & damaged"))


PRODUCTS = (
    ("CAT-HAMMOCK", "Cat Hammock"), ("DOG-BED", "Dog Bed"), ("BIRD-FEEDER", "Bird Feeder"),
    ("YOGA-MAT", "Yoga Mat"), ("TEA-KETTLE", "Tea Kettle"), ("DESK-LAMP", "Desk Lamp"),
    ("COFFEE-GRINDER", "Coffee Grinder"), ("GARDEN-HOSE", "Garden Hose"),
    ("BATH-TOWEL", "Bath Towel"), ("WALL-CLOCK", "Wall Clock"), ("THROW-PILLOW", "Throw Pillow"),
    ("BAR-STOOL", "Bar Stool"), ("PLANT-POT", "Plant Pot"), ("RAIN-BOOT", "Rain Boot"),
    ("PHONE-CASE", "Phone Case"), ("LUNCH-BOX", "Lunch Box"),
)


VARIANTS = ("Grey", "Navy", "Oak", "Small", "Large", "Sage", "Ivory", "Black", "Walnut", "Rust")


PRICES = (9.99, 14.99, 19.99, 24.99, 29.99, 39.99, 49.99, 79.99, 129.99, 249.99)


class Catalog(DayBase):
    def catalog(self) -> None:
        rng, shape = self.rng, self.shape
        self.warehouses = [WAREHOUSES[i] if i < 3 else (f"WH-SAT-{i - 2}", "Sellable", f"Satellite {i - 2}")
                           for i in range(shape.warehouses)]
        self.sellable = [w for w, typ, _ in self.warehouses if typ == "Sellable"]
        self.skus, self.names, self.price = [], {}, {}
        for i in range(1, shape.skus + 1):
            code, title = rng.choice(PRODUCTS)
            sku = f"{code}-{i:04d}"
            self.skus.append(sku)
            self.names[sku] = f"{title}, {rng.choice(VARIANTS)}"
            self.price[sku] = rng.choice(PRICES)
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
        target = {s: rng.uniform(*HEAD_TARGET) for s in head}
        rest = by_demand[len(head):]
        for i in range(0, len(rest), 10):
            block = rest[i:i + 10]
            short = set(rng.sample(block, min(len(block), SHORT_PER_10)))
            for s in block:
                target[s] = rng.uniform(*SHORT_TARGET) if s in short else rng.uniform(1.1, 2.2)
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
                              "estimated_delivery_date": eta.strftime(TS)})
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
                shipped = SHIPPED_SHARE * d * min(target[sku], 1.0)
                stock[sku] = max(0, round(d * target[sku] + shipped) - arriving[sku])
                if target[sku] > 1:
                    stock[sku] += rng.randint(0, 6)
        for _ in range(rng.randint(1, 2) + shape.skus // 1000):
            cid = f"MSCU{rng.randint(1000000, 9999999)}"
            eta = self.start.replace(hour=0, minute=0, second=0) + timedelta(days=rng.randint(5, 30))
            skus = sorted({self.pick_sku() for _ in range(rng.randint(2, 6))})
            self.emit(0, "ContainerUpdated", {
                "container_id": cid, "estimated_arrival_date": eta.strftime(TS),
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
