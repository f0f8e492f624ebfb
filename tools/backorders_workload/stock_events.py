"""Stock events through the day: receipts, book-outs of shipped lines, cycle counts."""

from __future__ import annotations

from .day_base import DayBase


class StockEvents(DayBase):
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
