"""The recalculator as partitioned tasks connected by topics, with no global order of inputs
(docs/sharding.md, "The recalculator on consumer groups"). Pure: what each task does with
one message; a runtime (or a test's simulation) moves the messages.

- `split_command`: a command naming several orders becomes one piece per order (each goes
  to the route task of its order), and what concerns every SKU or some SKUs is broadcast to
  every route task, as reference data is.
- `RouteTask`: a `Router` over the inputs of one input partition (plus every broadcast
  input). Its records become `Envelope`s for the allocation partitions, each channel from
  one route task to one allocation partition in order.
- `AllocationTask`: a `ShardEngine` over one allocation partition, into which every route
  task writes. It applies a broadcast input once (the first of its copies), completes the
  two hand-overs that have no global order to lean on (SKUs moving when their groups merge,
  a line moving to another group), and parks what a route task sent after a hand-over it
  is waiting for.
- `AssemblyTask`: an `Assembler` over the orders of one partition of the order partials.
  An order-scoped input's own orders are published once every allocation partition it
  reached has reported its final part; other partials are published as they come.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from collections.abc import Callable
from typing import Any

from backorder_events.topics import ORDER_COMMAND_TYPES, ORDER_TYPES

from .assembler import Assembler
from .engine import COMMAND_TYPES, reason_of
from .model import to_us
from .results import APPLIED, HELD, REJECTED, OrderBackorderChange, OrderPartial, PartialLine, Rejected
from .router import Router
from .shard_engine import ShardEngine
from .sharded import apply_record
from .sharding import AcquireSkus, ArriveLine, DepartLine, EvictOrder, ReleaseSkus, Restricted

SPLIT_TYPES = frozenset({"RecalculateBackorders", "MarkBackorder", "MarkNotBackorder"})


# -- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SplitCommand:
    pieces: list  # (order id, the command for that order alone)
    broadcast: Any = None  # the part for every route task, if any


def piece_id(event_id: str, part: str) -> str:
    return f"{event_id}/{part}"


def split_command(event) -> SplitCommand:
    """A command as the route tasks receive it. Each order's piece keeps the command's id
    when it names one order and nothing else, and takes `<id>/<order id>` otherwise, so
    that each piece is an input of its own (deduplicated, and the cause of what it
    publishes). A command naming several orders is therefore applied order by order: an
    unknown order refuses its own piece only (docs/sharding.md)."""
    data = event.data
    order_ids = list(dict.fromkeys(data.order_ids))  # a command may name an order twice
    skus = list(getattr(data, "skus", ()))
    whole = event.type == "RecalculateBackorders" and not order_ids and not skus
    if whole:
        return SplitCommand([], event)
    parts = len(order_ids) + (1 if skus else 0)

    def named(part: str, update: dict):
        new_id = event.id if parts == 1 else piece_id(event.id, part)
        return event.model_copy(update={"id": new_id, "data": data.model_copy(update=update)})

    pieces = []
    for order_id in order_ids:
        update = {"order_ids": [order_id]}
        if event.type == "RecalculateBackorders":
            update["skus"] = []
        pieces.append((order_id, named(order_id, update)))
    broadcast = named("skus", {"order_ids": [], "skus": skus}) if skus else None
    return SplitCommand(pieces, broadcast)


# -- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """One record for an allocation partition. `source` names its producer (a route task,
    or an allocation task forwarding a hand-over); records of one source reach a partition
    in the order sent."""

    source: str
    cause_id: str
    cause_type: str
    now: int
    publish: bool
    item: Any
    copies: int = 1  # > 1: a broadcast input's record, sent by every route task
    own_orders: tuple[str, ...] = ()  # the cause's own orders (an order-scoped input)
    expect: frozenset[int] = frozenset()  # set on the cause's last record for this partition
    forward_to: int | None = None  # where a departing line or released SKUs go
    hands_over: str | None = None  # an order this record creates that another route task takes


@dataclass(frozen=True, slots=True)
class AwaitOrder:
    """From the route task that took in a split-off order, to each partition holding it: its
    later records there wait until the split that created the order (sent by the route task
    that split it) has been applied."""

    cause_id: str
    order_id: str


@dataclass(frozen=True, slots=True)
class LineArrival:
    """A departing line's hand-over, forwarded by its old partition to its new one."""

    cause_id: str
    order_id: str
    line_id: str
    handoff: Any


@dataclass(frozen=True, slots=True)
class SkuArrival:
    """Released SKUs' hand-over, forwarded by their old partition to their new one."""

    cause_id: str
    skus: tuple[str, ...]
    exports: Any


@dataclass(frozen=True, slots=True)
class PartialMessage:
    """An order partial for the assembly partition of its order. `expect`: the allocation
    partitions whose final parts the assembly waits for before it publishes (the cause's
    own orders only); `final` is this partition's last part of the cause; `hold`: an own
    order's part that is not the last, kept without publishing."""

    partition: int
    cause_id: str
    reason: str
    publish: bool
    partial: OrderPartial
    expect: frozenset[int] = frozenset()
    final: bool = False
    hold: bool = False


@dataclass(frozen=True, slots=True)
class OrderTransfer:
    """A split-off order whose id another route task owns, handed to it by the route task
    that split it (on a topic keyed by the new order's id). `merges`: how many group merges
    moving SKUs between partitions the splitting task had routed (every route task routes
    the same ones, in one order)."""

    cause_id: str
    time: int  # the split's time, in µs
    order: Any  # model.Order, with its lines
    known: frozenset[int]  # the allocation partitions holding its header
    merges: int = 0


@dataclass(frozen=True, slots=True)
class Move:
    """A group merge that moved SKUs to another partition, as a route task routed it: the
    `number`th such merge, at `time` (µs)."""

    number: int
    time: int
    skus: tuple[str, ...]
    target: int


@dataclass(slots=True)
class Routed:
    """What a route task made of one input (status HELD: kept until its order arrives) or of
    one transfer (HELD: kept until this task has routed the merges its sender had).
    `transfers`: orders for other route tasks; `settled`: held inputs decided meanwhile,
    each with its own `Routed`, to be sent after this one's envelopes (a held transfer
    taken in meanwhile has None for its input); `refused_transfers`: transfers refused,
    each with why."""

    status: str
    reason: str | None = None
    envelopes: list[tuple[int, Envelope]] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    transfers: list[tuple[int, OrderTransfer]] = field(default_factory=list)
    settled: list[tuple[Any, Routed]] = field(default_factory=list)
    refused_transfers: list[tuple[OrderTransfer, str]] = field(default_factory=list)


# -- route ------------------------------------------------------------------------------------


def _own_orders(event) -> tuple[str, ...]:
    if event.type not in ORDER_TYPES and event.type not in ORDER_COMMAND_TYPES \
            and event.type not in SPLIT_TYPES:
        return ()
    data = event.data
    ids = [getattr(data, "order_id", None), getattr(data, "new_order_id", None)]
    ids += list(getattr(data, "order_ids", ()))
    return tuple(sorted({order_id for order_id in ids if order_id}))


def _needed_order(event) -> str | None:
    """The one order an order-scoped input needs to exist (none for OrderCreated)."""
    if event.type == "OrderCreated":
        return None
    data = event.data
    order_id = getattr(data, "order_id", None)
    if order_id is None and event.type in SPLIT_TYPES and len(data.order_ids) == 1:
        order_id = data.order_ids[0]
    return order_id


class RouteTask:
    """`task_of(order id)`: the route task owning an order's id (the partition its key lands
    on); without it there is one route task. `hold_wait` (µs of event time): how long an
    input naming an order not known here waits for it (it may be split off elsewhere, or
    its creation be on its way); None: refused at once, as the one-process engine does.
    What a task remembers of the past (the group merges it routed, the split times of the
    orders it took in) it keeps for as long as `hold_wait`, or always without one."""

    def __init__(self, task: int, route_tasks: int, partitions: int, settings=None, *,
                 task_of: Callable[[str], int] | None = None, hold_wait: int | None = None,
                 **windows) -> None:
        self.task = task
        self.source = f"route{task}"
        self.route_tasks = route_tasks
        self.router = Router(partitions, settings, **windows)
        self.task_of = task_of
        self.hold_wait = hold_wait
        self.held: dict[str, list[tuple[Any, bool]]] = {}  # order id → inputs waiting for it
        self.clock: int | None = None
        self.merges = 0  # group merges routed that moved SKUs to another partition
        self.moves: list[Move] = []  # those merges, as far back as `hold_wait`
        self.transfers_waiting: list[OrderTransfer] = []  # for merges not routed here yet
        self.taken_in: dict[str, int] = {}  # order taken in → the time of its split

    def idle(self) -> bool:
        return not self.held and not self.transfers_waiting

    def route(self, event, *, broadcast: bool = False) -> Routed:
        """`broadcast`: the input reaches every route task (reference data, commands on every
        SKU or some SKUs); every route task routes it the same, and each allocation
        partition applies its first copy."""
        now = to_us(event.time)
        self.clock = now if self.clock is None else max(self.clock, now)
        self._forget_past()
        expired = self._expire()
        needed = _needed_order(event)
        if needed is not None and now < self.taken_in.get(needed, now):
            # Taken in from a route task further on in time: split off after this input.
            routed = Routed(REJECTED, f"unknown order {needed!r}")
        elif (self.hold_wait is not None and needed is not None
                and needed not in self.router.engine.orders
                and now >= self.clock - self.hold_wait):
            self.held.setdefault(needed, []).append((event, broadcast))
            return Routed(HELD, settled=expired)
        else:
            routed = self._route(event, broadcast)
        routed.settled[:0] = expired
        return routed

    def adopt(self, transfer: OrderTransfer) -> Routed:
        """Take in an order split off by another route task: its partitions are told to
        wait for the split before this task's records about it, and the inputs held for
        it are decided (`settled`). Held (nothing to send yet) while this task has routed
        fewer group merges than the splitting task had: the order is taken in once it has
        (with the merge that completes them). Refused when its id is taken here."""
        if transfer.merges > self.merges:
            self.transfers_waiting.append(transfer)
            return Routed(HELD)
        return self._take_in(transfer)

    def _take_in(self, transfer: OrderTransfer) -> Routed:
        order = transfer.order
        order_id = order.order_id
        try:
            self.router.engine.take_in(order)
        except Rejected as refusal:
            return Routed(REJECTED, refusal.reason, refused_transfers=[(transfer, refusal.reason)])
        self.router.known[order_id] = set(transfer.known) | self._moved_to(order, transfer.merges)
        self.router.changed_orders.add(order_id)
        self.taken_in[order_id] = transfer.time
        envelopes = [
            (partition, Envelope(self.source, transfer.cause_id, "OrderSplit", transfer.time, True,
                                 AwaitOrder(transfer.cause_id, order_id)))
            for partition in sorted(transfer.known)
        ]
        return Routed(APPLIED, None, envelopes, settled=self._release(order_id, transfer.time))

    def _moved_to(self, order, since: int) -> set[int]:
        """The partitions of the order's lines, and those their SKUs passed through in the
        merges after the `since`th: each merge's hand-over took the order's header along
        (the route task that split it off had not routed the merge, this one had not taken
        it in yet, so neither introduced it there)."""
        skus = {line.sku for line in order.lines.values()}
        partitions = {self.router.shard_of(sku) for sku in skus}
        partitions.update(move.target for move in self.moves
                          if move.number > since and not skus.isdisjoint(move.skus))
        return partitions

    def _forget_past(self) -> None:
        """Merges and split times older than the hold wait: a transfer or an input that old
        comes from a partition lagging more than the wait (docs/sharding.md)."""
        if self.hold_wait is None:
            return
        horizon = self.clock - self.hold_wait
        while self.moves and self.moves[0].time < horizon:
            self.moves.pop(0)
        if any(time < horizon for time in self.taken_in.values()):
            self.taken_in = {order_id: time for order_id, time in self.taken_in.items() if time >= horizon}

    def _route(self, event, broadcast: bool) -> Routed:
        routed = self.router.route(event)
        if routed.status != APPLIED:
            return Routed(routed.status, routed.reason)
        now = to_us(event.time)
        records = routed.records
        own = _own_orders(event)
        # The partitions that get a record of this cause about its own orders, and the last
        # record each gets (evictions of other orders do not count).
        last: dict[int, int] = {}
        for index, (partition, item) in enumerate(records):
            if not isinstance(item, EvictOrder):
                last[partition] = index
        expect = frozenset(last) if own else frozenset()
        envelopes = []
        for index, (partition, item) in enumerate(records):
            operation = not isinstance(item, Restricted) and not hasattr(item, "specversion")
            envelopes.append((partition, Envelope(
                self.source, event.id, event.type, now, routed.publish, item,
                copies=self.route_tasks if broadcast and not operation else 1,
                own_orders=own,
                expect=expect if own and last.get(partition) == index else frozenset(),
                forward_to=_forward_target(records, index),
            )))
        result = Routed(APPLIED, None, envelopes, routed.evicted)
        created = None
        if event.type == "OrderCreated":
            created = event.data.order_id
        elif event.type == "OrderSplit":
            created = event.data.new_order_id
            owner = self.task_of(created) if self.task_of else self.task
            if owner != self.task:
                order = self.router.engine.give_away(created)
                known = frozenset(self.router.known.pop(created, ()))
                self.router.changed_orders.add(created)
                result.transfers.append((owner, OrderTransfer(event.id, now, order, known, self.merges)))
                result.envelopes = [(partition, replace(envelope, hands_over=created))
                                    for partition, envelope in result.envelopes]
                created = None
        if created is not None:
            result.settled.extend(self._release(created, now))
        moved = [(partition, item.skus) for partition, item in records if isinstance(item, AcquireSkus)]
        if moved:
            self._merged(now, moved, result)
        return result

    def _merged(self, now: int, moved: list, result: Routed) -> None:
        """A group merge moved SKUs: the transfers that waited for it are taken in after it."""
        for target, skus in moved:
            self.merges += 1
            self.moves.append(Move(self.merges, now, skus, target))
        ready = [transfer for transfer in self.transfers_waiting if transfer.merges <= self.merges]
        self.transfers_waiting = [transfer for transfer in self.transfers_waiting if transfer.merges > self.merges]
        for transfer in ready:
            taken = self._take_in(transfer)
            if taken.status == APPLIED:
                result.settled.append((None, taken))
            result.refused_transfers.extend(taken.refused_transfers)

    def _release(self, order_id: str, created_at: int) -> list[tuple[Any, Routed]]:
        """The inputs held for an order that now exists: those dated before it was created
        are refused as the engine, taking inputs in time order, would have refused them."""
        decided = []
        for event, broadcast in self.held.pop(order_id, ()):
            if to_us(event.time) < created_at:
                decided.append((event, Routed(REJECTED, f"unknown order {order_id!r}")))
            else:
                decided.append((event, self._route(event, broadcast)))
        return decided

    def _expire(self) -> list[tuple[Any, Routed]]:
        if not self.held or self.hold_wait is None:
            return []
        deadline = self.clock - self.hold_wait
        decided = []
        for order_id in sorted(self.held):
            waiting = self.held[order_id]
            while waiting and to_us(waiting[0][0].time) < deadline:
                event, broadcast = waiting.pop(0)
                decided.append((event, self._route(event, broadcast)))
            if not waiting:
                del self.held[order_id]
        return decided


def _forward_target(records, index: int) -> int | None:
    item = records[index][1]
    if isinstance(item, DepartLine):
        for partition, later in records[index + 1:]:
            if isinstance(later, ArriveLine) and (later.order_id, later.line_id) == (item.order_id, item.line_id):
                return partition
    if isinstance(item, ReleaseSkus):
        for partition, later in records[index + 1:]:
            if isinstance(later, AcquireSkus) and later.skus == item.skus:
                return partition
    return None


# -- allocation -------------------------------------------------------------------------------


# The final part of an own order that this partition does not know (it holds none of its
# lines): counted by the assembly, never assembled.
NOTHING_HERE = ""


@dataclass(slots=True)
class Acquiring:
    now: int
    publish: bool
    sources: set[str] = field(default_factory=set)


@dataclass(slots=True)
class AllocationOutput:
    forwards: list[tuple[int, Any]] = field(default_factory=list)  # (partition, arrival)
    partials: list[PartialMessage] = field(default_factory=list)
    products: list = field(default_factory=list)  # (cause id, ProductBackorderChange)
    positions: list = field(default_factory=list)  # (cause id, SkuPositionChange)
    times: dict[str, int] = field(default_factory=dict)  # cause id → its time, of each applied


class AllocationTask:
    def __init__(self, partition: int, route_tasks: int, settings=None, *, incremental: bool = True) -> None:
        self.partition = partition
        self.route_tasks = route_tasks
        self.engine = ShardEngine(settings, incremental=incremental)
        self.copies: dict[str, int] = {}  # broadcast cause → copies seen
        self.releases: dict[tuple, int] = {}  # (cause, skus) → route tasks' markers seen
        self.acquiring: dict[tuple, Acquiring] = {}  # (cause, skus) → route tasks' markers
        self.sku_arrivals: dict[tuple, SkuArrival] = {}
        self.line_arrivals: dict[tuple, LineArrival] = {}
        self.orders_arrived: set[tuple[str, str]] = set()  # (split, order) not yet awaited
        self.waiting: dict[str, tuple] = {}  # source → the hand-over it waits for
        self.parked: dict[str, deque] = {}  # source → its records after the wait, in order

    def idle(self) -> bool:
        """Nothing waiting, parked or half-received."""
        return not (self.waiting or self.parked or self.releases or self.acquiring
                    or self.sku_arrivals or self.line_arrivals or self.orders_arrived)

    def receive(self, message) -> AllocationOutput:
        out = AllocationOutput()
        if isinstance(message, LineArrival):
            self.line_arrivals[(message.cause_id, message.order_id, message.line_id)] = message
            self._resume(("line", message.cause_id, message.order_id, message.line_id), out)
        elif isinstance(message, SkuArrival):
            key = (message.cause_id, message.skus)
            self.sku_arrivals[key] = message
            self._complete_acquire(key, out)
        elif message.source in self.parked:
            self.parked[message.source].append(message)
        else:
            self._process(message, out)
        return out

    # A source waits for one hand-over at a time; its later records are parked behind it.

    def _process(self, env: Envelope, out: AllocationOutput) -> None:
        item = env.item
        if isinstance(item, AwaitOrder):
            key = (item.cause_id, item.order_id)
            if key in self.orders_arrived:
                self.orders_arrived.discard(key)
            else:
                self._wait(env.source, ("order",) + key, None)
            return
        if isinstance(item, ArriveLine):
            key = (env.cause_id, item.order_id, item.line_id)
            arrival = self.line_arrivals.pop(key, None)
            if arrival is None:
                self._wait(env.source, ("line",) + key, env)
                return
            env = replace(env, item=replace(item, handoff=arrival.handoff))
        elif isinstance(item, AcquireSkus):
            key = (env.cause_id, item.skus)
            self.acquiring.setdefault(key, Acquiring(env.now, env.publish)).sources.add(env.source)
            self._wait(env.source, ("skus",) + key, None)
            self._complete_acquire(key, out)
            return
        elif isinstance(item, ReleaseSkus):
            key = (env.cause_id, item.skus)
            seen = self.releases.get(key, 0) + 1
            if seen < self.route_tasks:
                self.releases[key] = seen
                return
            # Every route task has passed the merge: all it routed here before is applied.
            self.releases.pop(key, None)
        elif env.copies > 1:
            # Reference data is applied with its first copy: whatever a route task routed
            # after it is applied after it. A recalculation with its last: it then covers
            # whatever any route task routed before it.
            seen = self.copies.get(env.cause_id, 0) + 1
            if seen == env.copies:
                self.copies.pop(env.cause_id)
            else:
                self.copies[env.cause_id] = seen
            applied_with = env.copies if env.cause_type in COMMAND_TYPES else 1
            if seen != applied_with:
                return
        self._apply(env, out)

    def _apply(self, env: Envelope, out: AllocationOutput) -> None:
        outcome = apply_record(self.engine, env.item, env.cause_id, env.now)
        if isinstance(env.item, DepartLine):
            out.forwards.append((env.forward_to, LineArrival(
                env.cause_id, env.item.order_id, env.item.line_id, outcome.handoff)))
        elif isinstance(env.item, ReleaseSkus):
            out.forwards.append((env.forward_to, SkuArrival(env.cause_id, env.item.skus, outcome.handoff)))
        out.times[env.cause_id] = env.now
        out.products.extend((env.cause_id, change) for change in outcome.products)
        out.positions.extend((env.cause_id, change) for change in outcome.positions)
        partials = outcome.partials
        if env.cause_type == "RecalculateBackorders" and hasattr(env.item, "specversion"):
            # A full recalculation reports every order here, changed or not: a part sent
            # while the workflow was off at its route task but on here (or the other way
            # round, reference data reaching tasks at different moments) is published now.
            reported = {partial.order_id for partial in partials}
            partials = partials + [self._partial(order_id) for order_id in sorted(self.engine.orders)
                                   if order_id not in reported]
        self._final_parts(env, partials, out)
        if env.hands_over is not None:
            key = (env.cause_id, env.hands_over)
            if self._resume(("order",) + key, out) == 0:
                self.orders_arrived.add(key)

    def _final_parts(self, env: Envelope, partials: list[OrderPartial], out: AllocationOutput) -> None:
        reason = reason_of(env.cause_type)
        own = set(env.own_orders)
        reported = set()
        for partial in partials:
            mine = partial.order_id in own and not partial.evicted
            reported.add(partial.order_id)
            out.partials.append(PartialMessage(
                self.partition, env.cause_id, reason, env.publish, partial,
                expect=env.expect if mine else frozenset(),
                final=mine and bool(env.expect), hold=mine and not env.expect,
            ))
        if env.expect:
            # Every own order gets this partition's final part, touched here or not.
            for order_id in sorted(own - reported):
                out.partials.append(PartialMessage(
                    self.partition, env.cause_id, reason, env.publish, self._partial(order_id),
                    expect=env.expect, final=True,
                ))

    def _partial(self, order_id: str) -> OrderPartial:
        order = self.engine.orders.get(order_id)
        if order is None:
            return OrderPartial(order_id, NOTHING_HERE, ())
        lines = tuple(
            PartialLine(line.line_id, line.sku, line.qty, line.published)
            for line in order.lines.values()
        )
        return OrderPartial(order_id, order.company_id, lines)

    def _wait(self, source: str, key: tuple, env: Envelope | None) -> None:
        self.waiting[source] = key
        queue = self.parked.setdefault(source, deque())
        if env is not None:
            queue.appendleft(env)  # retried first once the hand-over is here

    def _complete_acquire(self, key: tuple, out: AllocationOutput) -> None:
        acquiring = self.acquiring.get(key)
        arrival = self.sku_arrivals.get(key)
        if arrival is None or acquiring is None or len(acquiring.sources) < self.route_tasks:
            return
        # Every route task introduced its orders here before its marker: the lines can land.
        del self.acquiring[key]
        del self.sku_arrivals[key]
        cause_id, skus = key
        acquire = AcquireSkus("ProductUpserted", skus, -1, arrival.exports)
        self._apply(Envelope("", cause_id, "ProductUpserted", acquiring.now, acquiring.publish, acquire), out)
        self._resume(("skus",) + key, out)

    def _resume(self, key: tuple, out: AllocationOutput) -> int:
        """Let the sources waiting for `key` go on; returns how many there were."""
        sources = sorted(s for s, waited in self.waiting.items() if waited == key)
        for source in sources:
            del self.waiting[source]
            queue = self.parked[source]
            while queue and source not in self.waiting:
                self._process(queue.popleft(), out)
            if source not in self.waiting:
                # A hand-over completed inside this loop may have resumed the same source
                # already, and dropped its queue.
                self.parked.pop(source, None)
        return len(sources)


# -- assembly ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Pending:
    expect: frozenset[int]
    arrived: set[int] = field(default_factory=set)


class AssemblyTask:
    """Publishes what `Assembler` decides over the lines each allocation partition last
    reported for an order. Every part updates those lines when it arrives (a partition's
    parts arrive in its order); an order-scoped input's own order is published once the
    final part of every partition it reached is in, and other parts are published as they
    come, unless the order waits for such an input then. Each publication's id is
    (cause, order), or (cause, order, allocation partition) for a part published alone."""

    def __init__(self) -> None:
        self.assembler = Assembler()
        self.pending: dict[tuple[str, str], Pending] = {}
        self.waiting: dict[str, int] = {}  # order id → inputs of its own not complete yet

    def idle(self) -> bool:
        return not self.pending

    def receive(self, message: PartialMessage) -> list[tuple[tuple, OrderBackorderChange]]:
        partial = message.partial
        order_id = partial.order_id
        if partial.company_id != NOTHING_HERE:
            alone = not message.final and not message.hold and not self.waiting.get(order_id)
            changes = self.assembler.assemble(
                message.cause_id, message.reason, [(message.partition, partial)],
                message.publish and alone)
            if alone:
                return [((message.cause_id, change.order_id, message.partition), change)
                        for change in changes]
        if not message.final:
            return []
        key = (message.cause_id, order_id)
        pending = self.pending.get(key)
        if pending is None:
            pending = self.pending[key] = Pending(message.expect)
            self.waiting[order_id] = self.waiting.get(order_id, 0) + 1
        pending.arrived.add(message.partition)
        if pending.arrived < pending.expect:
            return []
        del self.pending[key]
        self.waiting[order_id] -= 1
        if not self.waiting[order_id]:
            del self.waiting[order_id]
        return [((message.cause_id, change.order_id), change)
                for change in self._publish(order_id, message)]

    def _publish(self, order_id: str, message: PartialMessage) -> list[OrderBackorderChange]:
        """The order's publication over its lines as they are now."""
        order = self.assembler.orders.get(order_id)
        if order is None or not message.publish:
            return []
        parts = [(partition, OrderPartial(order_id, order.company_id, lines))
                 for partition, lines in sorted(order.by_shard.items())]
        if not parts:
            parts = [(message.partition, OrderPartial(order_id, order.company_id, ()))]
        return self.assembler.assemble(message.cause_id, message.reason, parts, True)
