"""How each input event changes the recalculator's inputs (rules §2, §8, §10).

Every handler checks everything it needs before it changes anything, so a refused event
(`Rejected`) leaves the state as it was. Handlers say which SKUs to recalculate by adding
them to the event's scope; the engine (`base.EngineBase.handle`) does the rest.
"""

from __future__ import annotations

from backorder_events import Customer
from backorder_events.limits import MAX_ORDER_LINES, MAX_SKU_STOCK, MAX_STOCK_QTY

from . import policy
from .incoming import PoLines, SkuIncoming, receive
from .model import CLOSED, Line, Order, to_us
from .results import Rejected, UnknownOrder

_HOLD_LIKE = frozenset({"OnHold", "Quote"})


def _customer_json(customer: Customer) -> bytes:
    # Kept as compact JSON: a fraction of the memory of the model, and only the notifier reads it.
    return _CUSTOMER_SERIALIZER.to_json(customer, exclude_none=True)


_CUSTOMER_SERIALIZER = Customer.__pydantic_serializer__


class EventHandlers:
    """The per-event-type half of every engine role (a mixin: the state lives in
    `base.EngineBase`)."""

    # -- order events ----------------------------------------------------------------------

    def _order_created(self, data, now: int) -> None:
        if data.order_id in self.orders:
            raise Rejected(f"order {data.order_id!r} already exists")
        order = Order(
            order_id=data.order_id,
            company_id=data.company_id,
            order_date=to_us(data.order_date),
            order_status=data.order_status.value,
            payment_status=data.payment_status.value,
            payment_date=to_us(data.payment_date) if data.payment_date else None,
            rush=data.rush,
            picked=data.picked,
            ship_from_warehouse_id=data.ship_from_warehouse_id,
            channel=data.channel,
            customer=_customer_json(data.customer) if data.customer else None,
        )
        self.orders[order.order_id] = order
        self._touch(order, new=True)
        if order.order_status in CLOSED:
            self._closed_on_arrival(order, now)
        recalc = self._scope.recalc if not self.settings.stop_marking_on_create else set()
        for item in data.lines:
            self._add_line(order, item.line_id, item.sku, item.qty, item.name, item.unit_price)
            recalc.add(item.sku)

    def _order_split(self, data, now: int) -> None:
        order = self._order(data.order_id)
        if data.new_order_id in self.orders:
            raise Rejected(f"order {data.new_order_id!r} already exists")
        moves = []
        for item in data.lines:
            line = order.lines.get(item.line_id)
            if line is None:
                raise Rejected(f"order {order.order_id!r} has no line {item.line_id!r}")
            if item.qty > line.qty:
                raise Rejected(
                    f"cannot move {item.qty} of line {item.line_id!r}: it has {line.qty}"
                )
            moves.append((line, item.qty, item.new_line_id))
        new = Order(
            order_id=data.new_order_id,
            company_id=order.company_id,
            order_date=order.order_date,
            order_status=order.order_status,
            payment_status=order.payment_status,
            payment_date=order.payment_date,
            rush=order.rush,
            picked=order.picked,
            ship_from_warehouse_id=order.ship_from_warehouse_id,
            channel=order.channel,
            customer=order.customer,
        )
        self.orders[new.order_id] = new
        self._touch(order)
        self._touch(new, new=True)
        self._closed_on_arrival(new, now)
        recalc = self._scope.recalc
        recalc.update(line.sku for line in order.lines.values())
        for line, qty, new_line_id in moves:
            # The units split off carry the line's backorder first (a seller splits off what
            # cannot ship). The recalculation right after sets both lines, unless the order
            # is frozen: then this is what stays.
            carried = min(qty, line.published)
            remaining = line.published - carried
            owing = line.owing  # what it carries is only known once it owes nothing
            moved = self._add_line(new, new_line_id, line.sku, qty, line.name, line.unit_price)
            if qty == line.qty:
                self._drop_line(line)
            else:
                self._resize_line(line, line.sku, line.qty - qty, remaining)
            self._set_published(moved, carried)
            if owing:
                self._mark_owing(moved)

    def _item_added(self, data, now: int) -> None:
        order = self._order(data.order_id)
        item = data.line
        if item.line_id in order.lines:
            raise Rejected(f"order {order.order_id!r} already has a line {item.line_id!r}")
        if len(order.lines) >= MAX_ORDER_LINES:
            raise Rejected(
                f"order {order.order_id!r} already has {len(order.lines)} lines, "
                f"the most an order may have ({MAX_ORDER_LINES})"
            )
        self._touch(order)
        self._add_line(order, item.line_id, item.sku, item.qty, item.name, item.unit_price)
        self._scope.recalc.add(item.sku)

    def _item_replaced(self, data, now: int) -> None:
        order = self._order(data.order_id)
        line = self._line(order, data.line_id)
        self._touch(order)
        old_sku = line.sku
        self._resize_line(line, data.new_sku, data.qty if data.qty is not None else line.qty)
        self._scope.recalc.update((old_sku, data.new_sku))

    def _order_status_changed(self, data, now: int) -> None:
        order = self._order(data.order_id)
        given = data.model_fields_set
        old_status = order.order_status
        if "order_status" in given and data.order_status is not None:
            order.order_status = data.order_status.value
        if "payment_status" in given and data.payment_status is not None:
            order.payment_status = data.payment_status.value
        if "payment_date" in given:
            order.payment_date = to_us(data.payment_date) if data.payment_date else None
        if "rush" in given and data.rush is not None:
            order.rush = data.rush
        if "picked" in given and data.picked is not None:
            order.picked = data.picked
        if "ship_from_warehouse_id" in given:
            order.ship_from_warehouse_id = data.ship_from_warehouse_id
        self.changes.orders.add(order.order_id)
        for line in order.lines.values():
            self._replace(line)
        if order.order_status in CLOSED and old_status not in CLOSED:
            self._close(order, now)
        elif old_status in CLOSED and order.order_status not in CLOSED:
            self._reopen(order)
        moved_hold = old_status != order.order_status and (
            old_status in _HOLD_LIKE or order.order_status in _HOLD_LIKE
        )
        if moved_hold and self.settings.update_on_order_status_change:
            self._scope.recalc.update(line.sku for line in order.lines.values())

    # -- stock, reference data and settings --------------------------------------------------

    def _po_received(self, data, now: int) -> None:
        self._check_stock([(item.sku, data.warehouse_id, item.qty, None) for item in data.lines])
        for item in data.lines:
            self._change_stock(item.sku, data.warehouse_id, item.qty, None)
            self._scope.recalc.add(item.sku)
            incoming = self.incoming.get(item.sku)
            po = incoming.pos.get(data.po_id) if incoming is not None else None
            if po is not None and now > po.updated_at:  # else in the update's qty_received
                receive(po, item.qty)
                if not any(open_ for open_, _ in po.lines):
                    self._forget_supply(self.po_skus, data.po_id, item.sku, incoming.pos)
                self.changes.incoming.add(item.sku)
                self._supply_changed((item.sku,))

    def _inventory_adjusted(self, data, now: int) -> None:
        self._check_stock([(data.sku, data.warehouse_id, data.delta, data.set_to)])
        self._change_stock(data.sku, data.warehouse_id, data.delta, data.set_to)
        if data.recalculate:
            self._scope.recalc.add(data.sku)

    def _warehouse_upserted(self, data, now: int) -> None:
        kind = data.type.value
        before = self.warehouse_types.get(data.warehouse_id, policy.SELLABLE)
        self.warehouse_types[data.warehouse_id] = kind
        self.warehouse_names[data.warehouse_id] = data.name
        self.changes.warehouses.add(data.warehouse_id)
        if kind != before:
            self.rebuild()  # supply of every SKU stocked there, and in warehouse mode eligibility

    def _product_upserted(self, data, now: int) -> None:
        sku = data.sku
        if self.replacements.get(sku) != data.replacement_sku:
            # Its lines' draws on the old replacement must be looked at again.
            self.dirty[sku].update(self.lines_by_sku.get(sku, ()))
        old = self.replacements.pop(sku, None)
        if old is not None:
            self.referrers[old].discard(sku)
        if data.replacement_sku:
            self.replacements[sku] = data.replacement_sku
            self.referrers[data.replacement_sku].add(sku)
        self.product_names[sku] = data.name
        self.changes.products.add(sku)

    def _settings_changed(self, data, now: int) -> None:
        before = self.settings
        self.settings = before.apply(data.settings)
        self.changes.settings = True
        if before.use_shipping_containers_for_po != self.settings.use_shipping_containers_for_po:
            self._supply_changed(self.incoming)
        if any(
            getattr(before, name) != getattr(self.settings, name)
            for name in policy.ALLOCATION_SETTINGS
        ):
            self.rebuild()

    # -- supply on its way (incoming.py) --------------------------------------------------

    def _purchase_order_updated(self, data, now: int) -> None:
        po_id = data.po_id
        held = self.po_skus.get(po_id, ())
        for sku in held:
            if self.incoming[sku].pos[po_id].updated_at > now:
                return  # older than the state held
        by_sku: dict[str, list[list]] = {}
        for line in data.lines:
            open_ = max(0, line.qty_ordered - line.qty_received)
            eta = to_us(line.estimated_delivery_date) if line.estimated_delivery_date else None
            by_sku.setdefault(line.sku, []).append([open_, eta])
        touched = set(held) | by_sku.keys()
        for sku in sorted(held):
            self._forget_supply(self.po_skus, po_id, sku, self.incoming[sku].pos)
        for sku, lines in by_sku.items():
            if any(open_ for open_, _ in lines):
                self._incoming(sku).pos[po_id] = PoLines(now, lines)
                self.po_skus.setdefault(po_id, set()).add(sku)
        self.changes.incoming.update(touched)
        self._supply_changed(touched)

    def _container_updated(self, data, now: int) -> None:
        container_id = data.container_id
        held = self.container_skus.get(container_id, ())
        quantities: dict[str, int] = {}
        for line in data.lines:
            quantities[line.sku] = quantities.get(line.sku, 0) + line.qty
        touched = set(held) | quantities.keys()
        for sku in sorted(held):
            self._forget_supply(
                self.container_skus, container_id, sku, self.incoming[sku].containers
            )
        eta = to_us(data.estimated_arrival_date) if data.estimated_arrival_date else None
        for sku, qty in quantities.items():
            if qty:
                self._incoming(sku).containers[container_id] = (qty, eta)
                self.container_skus.setdefault(container_id, set()).add(sku)
        self.changes.incoming.update(touched)
        self._supply_changed(touched)

    def _incoming(self, sku: str) -> SkuIncoming:
        incoming = self.incoming.get(sku)
        if incoming is None:
            incoming = self.incoming[sku] = SkuIncoming()
        return incoming

    def _forget_supply(self, index: dict, source_id: str, sku: str, by_source: dict) -> None:
        """A PO or container no longer brings `sku` (nothing open): forgotten for it."""
        del by_source[source_id]
        skus = index[source_id]
        skus.discard(sku)
        if not skus:
            del index[source_id]
        if self.incoming[sku].empty():
            del self.incoming[sku]

    # -- commands ---------------------------------------------------------------------------

    def _recalculate_backorders(self, data, now: int) -> None:
        orders = [self._order(order_id) for order_id in data.order_ids]
        if not orders and not data.skus:
            # Every SKU: those with lines, and those only stocked (their position).
            self._scope.recalc.update(self.lines_by_sku)
            self._scope.recalc.update(self.stock)
            return
        for order in orders:
            self._scope.recalc.update(line.sku for line in order.lines.values())
        self._scope.recalc.update(data.skus)

    def _reallocate_backorder(self, data, now: int) -> None:
        order = self._order(data.order_id)
        plan = []
        for item in data.lines:
            line = self._line(order, item.line_id)
            if item.backorder_qty > line.qty:
                raise Rejected(
                    f"backorder {item.backorder_qty} for line {item.line_id!r} "
                    f"is above its qty {line.qty}"
                )
            plan.append((line, item.backorder_qty))
        if self.settings.enable_backorder_workflow:
            for line, value in plan:
                self._set_manual(line, value)

    def _mark_backorder(self, data, now: int) -> None:
        orders = [self._order(order_id) for order_id in data.order_ids]
        if self.settings.enable_backorder_workflow:
            for order in orders:
                for line in order.lines.values():
                    self._set_manual(line, line.qty)

    def _mark_not_backorder(self, data, now: int) -> None:
        orders = [self._order(order_id) for order_id in data.order_ids]
        if self.settings.enable_backorder_workflow:
            for order in orders:
                for line in order.lines.values():
                    self._set_manual(line, 0)

    # -- checks that reject ---------------------------------------------------------------------

    def _check_stock(self, changes: list[tuple[str, str, int | None, int | None]]) -> None:
        """Refuse stock changes (sku, warehouse, delta, set_to), applied in turn, that would
        take a warehouse's stock beyond ±MAX_STOCK_QTY, or a SKU's stock summed over the
        warehouses where it is positive beyond MAX_SKU_STOCK: every stored and published
        quantity stays exact in 64 bits and in JSON, however many deltas come."""
        levels: dict[str, dict[str, int]] = {}  # sku → warehouse → level after the changes
        for sku, warehouse, delta, set_to in changes:
            new = levels.setdefault(sku, {})
            if set_to is not None:
                level = set_to
            elif warehouse in new:
                level = new[warehouse] + delta
            else:
                level = self.stock.get(sku, {}).get(warehouse, 0) + delta
            if not -MAX_STOCK_QTY <= level <= MAX_STOCK_QTY:
                raise Rejected(
                    f"stock of SKU {sku!r} in warehouse {warehouse!r} would be {level}, "
                    f"beyond the limit of ±{MAX_STOCK_QTY}"
                )
            new[warehouse] = level
        for sku, new in levels.items():
            stocked = self.stock.get(sku, {})
            # At most MAX_SKU_STOCK / MAX_STOCK_QTY warehouses cannot go past it: no sum.
            if (len(stocked) + len(new)) * MAX_STOCK_QTY <= MAX_SKU_STOCK:
                continue
            total = sum(q for w, q in stocked.items() if q > 0 and w not in new)
            total += sum(q for q in new.values() if q > 0)
            if total > MAX_SKU_STOCK:
                raise Rejected(
                    f"stock of SKU {sku!r} summed over its warehouses would be {total}, "
                    f"beyond the limit of {MAX_SKU_STOCK}"
                )

    # -- lookups that reject ------------------------------------------------------------------

    def _order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        return order

    @staticmethod
    def _line(order: Order, line_id: str) -> Line:
        line = order.lines.get(line_id)
        if line is None:
            raise Rejected(f"order {order.order_id!r} has no line {line_id!r}")
        return line
