"""A SKU shard of the sharded recalculator (docs/sharding.md): `ShardEngine` allocates and
recalculates like `Engine` (`recalculation.py`), but holds only the lines of its SKUs. So it
reports every order it touched with those lines (`OrderPartial`) and leaves the order-level
status, what was published before and the decision to publish to the assembler. It keeps no
dedupe window and evicts nothing of its own: the router deduplicates its inputs and decides
evictions for it. Besides input events, it applies the router's operations (`apply`)."""

from __future__ import annotations

from backorder_events import BackorderSettings

from .base import EventScope
from .model import Line, Order
from .recalculation import AllocatingEngine
from .results import OrderPartial, Outcome, PartialLine, Rejected
from .sharding import LineHandoff, MovedLine, SkuExport, introduce


class ShardEngine(AllocatingEngine):
    def __init__(self, settings: BackorderSettings | None = None, *,
                 incremental: bool = True) -> None:
        super().__init__(settings, incremental=incremental)

    def apply(self, operation, cause_id: str, now: int) -> Outcome:
        """Apply one of the router's shard operations (`sharding.py`) on behalf of the input
        event `cause_id`: the same outcome as `handle`, plus what a departing line or SKU
        hands over. Operations are not recorded as processed ids: the cause may also reach
        this shard as an event, and the shard runtime deduplicates by routing sequence."""
        handler = getattr(self, "_op_" + type(operation).__name__)
        return self._run(cause_id, operation.cause_type, handler, operation, now)

    def _follows_date_moves(self) -> bool:
        # The assembler holds every line's date as last reported, and an order's change
        # lists all its lines, those of other shards too: a moved date is always reported.
        return True

    def _order_partials(self, scope: EventScope) -> list[OrderPartial]:
        """This shard's view of every order the event touched: its lines here, as they are
        now; and the orders it evicted (docs/sharding.md)."""
        partials = []
        dates = self.settings.publish_expected_date_changes
        for order_id in sorted(scope.orders_before):
            order = self.orders[order_id]
            lines = []
            for line_id, line in order.lines.items():
                # What the assembler was last told: a date moving from it is reported again.
                date = line.published_date = self.expected_date(line)
                lines.append(PartialLine(line_id, line.sku, line.qty, line.published, date))
            partials.append(OrderPartial(order_id, order.company_id, tuple(lines), False, dates))
        partials.extend(scope.evicted)
        return partials

    # -- the router's operations ------------------------------------------------------------

    def _op_IntroduceOrder(self, op, now: int) -> None:
        if op.order_id in self.orders:
            raise Rejected(f"order {op.order_id!r} is already known to this shard")
        self.orders[op.order_id] = Order(
            order_id=op.order_id,
            company_id=op.company_id,
            order_date=op.order_date,
            order_status=op.order_status,
            payment_status=op.payment_status,
            payment_date=op.payment_date,
            rush=op.rush,
            picked=op.picked,
            ship_from_warehouse_id=op.ship_from_warehouse_id,
            channel=op.channel,
            customer=op.customer,
        )
        self._closed_on_arrival(self.orders[op.order_id], now)
        self.changes.orders.add(op.order_id)

    def _op_DepartLine(self, op, now: int) -> None:
        # The first half of ItemReplaced's _resize_line: published to 0 on the old SKU.
        order = self._order(op.order_id)
        line = self._line(order, op.line_id)
        self._touch(order)
        self._handoff = LineHandoff(line.published, line.manual)
        sku = line.sku
        self._drop_line(line)
        self._scope.recalc.add(sku)

    def _op_ArriveLine(self, op, now: int) -> None:
        # The second half: the line on its new SKU keeps its published backorder (capped).
        if op.handoff is None:
            raise Rejected(f"line {op.line_id!r} of order {op.order_id!r} has no hand-over")
        order = self._order(op.order_id)
        if op.line_id in order.lines:
            raise Rejected(f"order {order.order_id!r} already has a line {op.line_id!r}")
        self._touch(order)
        line = Line(order, op.line_id, op.sku, op.qty, op.name, op.unit_price)
        order.lines[op.line_id] = line
        self.lines_by_sku[op.sku].add(line)
        self._set_published(line, min(op.handoff.published, op.qty))
        line.manual = op.handoff.manual
        self._place(line)
        self._scope.recalc.add(op.sku)

    def _op_EvictOrder(self, op, now: int) -> None:
        """The router evicted a closed order (docs/behaviour.md, Retention): this shard forgets
        its part too. Its lines here must publish 0, as the router's copy says."""
        order = self._order(op.order_id)
        owed = [line.line_id for line in order.lines.values() if line.published]
        if owed:
            raise Rejected(f"order {op.order_id!r} still publishes a backorder on lines {owed}")
        for line in list(order.lines.values()):
            self._clear_owing(line)
        self._evict(order)
        self._scope.evicted += (OrderPartial(order.order_id, order.company_id, (), True),)

    def _op_ReleaseSkus(self, op, now: int) -> None:
        """Hand every trace of these SKUs over; nothing is published (the assembler sees the
        lines leave here and arrive there within the same cause)."""
        exports = []
        for sku in op.skus:
            known = sku in self.lines_by_sku
            lines = sorted(
                self.lines_by_sku.pop(sku, ()), key=lambda l: (l.order.order_id, l.line_id)
            )
            moved, orders = [], {}
            for line in lines:
                self._touch(line.order)
                orders.setdefault(line.order.order_id, line.order)
                moved.append(MovedLine(
                    line.order.order_id, line.line_id, line.qty, line.name, line.unit_price,
                    line.published, line.manual,
                ))
                self._unplace(line)
                del line.order.lines[line.line_id]
                line.live = False
            for warehouse in self.pools_by_sku.pop(sku, {}):
                del self.pools[(sku, warehouse)]
            self.dirty.pop(sku, None)
            stock = self.stock.pop(sku, None)
            for warehouse in stock or ():
                self.changes.stock.add((sku, warehouse))
            incoming = self._release_incoming(sku)
            total = self.totals.pop(sku, 0)
            position = self.positions.pop(sku, None)
            held = self.held_totals.pop(sku, None)
            self.changes.skus.add(sku)
            self.changes.positions.add(sku)
            self.changes.held = self.changes.held or held is not None
            exports.append(
                SkuExport(sku, known, tuple(moved), stock, total, position, held, incoming,
                          tuple(introduce(op.cause_type, order) for order in orders.values()))
            )
        self._handoff = tuple(exports)

    def _release_incoming(self, sku: str):
        """A released SKU's supply on its way, which goes with it."""
        incoming = self.incoming.pop(sku, None)
        if incoming is None:
            return None
        for index, sources in ((self.po_skus, incoming.pos), (self.container_skus, incoming.containers)):
            for source_id in sources:
                skus = index[source_id]
                skus.discard(sku)
                if not skus:
                    del index[source_id]
        self.schedules.pop(sku, None)
        self.changes.incoming.add(sku)
        return incoming

    def _acquire_incoming(self, sku: str, incoming) -> None:
        self.incoming[sku] = incoming
        for source_id in incoming.pos:
            self.po_skus.setdefault(source_id, set()).add(sku)
        for source_id in incoming.containers:
            self.container_skus.setdefault(source_id, set()).add(sku)
        self.changes.incoming.add(sku)
        self._supply_changed((sku,))

    def _op_AcquireSkus(self, op, now: int) -> None:
        if op.exports is None:
            raise Rejected(f"SKUs {list(op.skus)} arrived without their hand-over")
        for export in op.exports:
            sku = export.sku
            if export.stock is not None:
                self.stock[sku] = dict(export.stock)  # before the lines: pools read supply
                for warehouse in export.stock:
                    self.changes.stock.add((sku, warehouse))
            if export.incoming is not None:
                self._acquire_incoming(sku, export.incoming)
            if export.known:
                self.lines_by_sku[sku]  # noqa: B018 - a defaultdict: the SKU is known here now
            headers = {header.order_id: header for header in export.orders}
            for moved in export.lines:
                if moved.order_id not in self.orders and moved.order_id in headers:
                    # No router introduced the order here: it was in transit between two
                    # route tasks when its SKUs' group merge was routed (docs/sharding.md).
                    self._op_IntroduceOrder(headers[moved.order_id], now)
                order = self._order(moved.order_id)
                self._touch(order)
                line = Line(order, moved.line_id, sku, moved.qty, moved.name, moved.unit_price,
                            published=moved.published, manual=moved.manual)
                order.lines[moved.line_id] = line
                self.lines_by_sku[sku].add(line)
                self._place(line)
            if export.total:
                self.totals[sku] = export.total
            if export.position is not None:
                self.positions[sku] = export.position
            if export.held_total is not None:
                self.held_totals[sku] = export.held_total
                self.changes.held = True
            self.changes.skus.add(sku)
            self.changes.positions.add(sku)
