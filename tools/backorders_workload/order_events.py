"""Order events through the day: created, paid, picked, shipped, split, items added and
replaced."""

from __future__ import annotations

from typing import Any

from .day_base import DayBase
from .orders import Order
from .shape import DAY_SECONDS, SHIP_BOOKING_DELAY


class OrderEvents(DayBase):
    def order_created(self, t: int, data: dict, lines: list[dict]) -> None:
        rng = self.rng
        order = Order(data["order_id"], data["order_status"], data["payment_status"],
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

    def consume(self, order: Order, lines: list[dict]) -> None:
        # A rough running allocation, only so that shipping picks orders that have stock.
        if not order.calculated:
            return
        for line in lines:
            have = self.avail[line["sku"]]
            if have < line["qty"]:
                order.short = True
            self.avail[line["sku"]] = max(have - line["qty"], min(have, 0))  # takes what is there

    def plan_shipping(self, t: int, order: Order) -> None:
        ship = t + self.rng.randint(1800, 6 * 3600)
        if self.rng.random() < 0.4:
            self.at(max(t + 60, ship - self.rng.randint(600, 3600)), self.picked, order.id)
        self.at(ship, self.ship, order.id)

    def status_changed(self, t: int, order: Order, **changes: Any) -> None:
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
        self.at(min(t + self.rng.randint(*SHIP_BOOKING_DELAY), DAY_SECONDS - 1), self.book_out, lines)

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
        new = Order(new_id, order.status, order.payment, new_lines)  # a split copies the rest
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
