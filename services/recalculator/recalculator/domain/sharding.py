"""What the router sends to SKU shards besides (restricted) input events, and which shard
owns a SKU. Pure values; see docs/sharding.md for the protocol.

A shard holds every pool of its SKUs and the lines on them. With
`consider_replacement_sku_qty`, a SKU's short lines draw on its replacement's leftover in
competition with every other SKU sharing that replacement, so a SKU, its replacement and
their other referrers must sit in one shard: SKUs are grouped by the replacement relations
ever declared (groups only ever merge), and a group's shard is a stable hash of its smallest
SKU. When a product event merges two groups on different shards, the SKUs of one move.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from decimal import Decimal

from .incoming import SkuIncoming


def stable_shard(key: str, shards: int) -> int:
    """The same on every machine and run (Python's own str hash is salted per process)."""
    return zlib.crc32(key.encode()) % shards


class SkuGroups:
    """Union-find over SKUs linked by a replacement relation at any time."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.members: dict[str, list[str]] = {}  # root → its SKUs
        self.changed: set[str] = set()  # SKUs whose root changed, for saving

    def load(self, roots: dict[str, str]) -> None:
        """Restore from {sku: root} as saved."""
        for sku, root in roots.items():
            self.parent[sku] = root
            self.members.setdefault(root, []).append(sku)

    def root(self, sku: str) -> str:
        parent = self.parent
        if sku not in parent:
            return sku
        path = []
        while parent[sku] != sku:
            path.append(sku)
            sku = parent[sku]
        for node in path:
            parent[node] = sku
        return sku

    def link(self, a: str, b: str) -> tuple[list[str], str, str] | None:
        """Merge the groups of a and b; returns (SKUs whose root changed, old root, new root),
        or None when they were already one group."""
        for sku in (a, b):
            if sku not in self.parent:
                self.parent[sku] = sku
                self.members[sku] = [sku]
                self.changed.add(sku)
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return None
        keep, drop = (ra, rb) if ra < rb else (rb, ra)  # the root is the group's least SKU
        moved = self.members.pop(drop)
        for sku in moved:  # flat: every SKU points at its root, as saved
            self.parent[sku] = keep
        self.members[keep].extend(moved)
        self.changed.update(moved)
        return moved, drop, keep


@dataclass(frozen=True, slots=True)
class IntroduceOrder:
    """Gives a shard an order's header before the first event of that order it receives."""

    cause_type: str
    order_id: str
    company_id: str
    order_date: int
    order_status: str
    payment_status: str
    payment_date: int | None
    rush: bool
    picked: bool
    ship_from_warehouse_id: str | None
    channel: str | None
    customer: bytes | None


def introduce(cause_type: str, order) -> IntroduceOrder:
    """The order's header, for a shard that has not seen it."""
    return IntroduceOrder(
        cause_type, order.order_id, order.company_id, order.order_date, order.order_status,
        order.payment_status, order.payment_date, order.rush, order.picked,
        order.ship_from_warehouse_id, order.channel, order.customer,
    )


@dataclass(frozen=True, slots=True)
class DepartLine:
    """ItemReplaced to a SKU of another shard, on the line's old shard: the line leaves."""

    cause_type: str
    order_id: str
    line_id: str


@dataclass(frozen=True, slots=True)
class LineHandoff:
    published: int
    manual: bool


@dataclass(frozen=True, slots=True)
class ArriveLine:
    """ItemReplaced to a SKU of another shard, on the new SKU's shard: the line arrives with
    what its old shard hands over (its published backorder and whether it was manual)."""

    cause_type: str
    order_id: str
    line_id: str
    sku: str
    qty: int
    name: str | None
    unit_price: float | Decimal | None
    from_shard: int
    handoff: LineHandoff | None = None


@dataclass(frozen=True, slots=True)
class MovedLine:
    order_id: str
    line_id: str
    qty: int
    name: str | None
    unit_price: float | Decimal | None
    published: int
    manual: bool


@dataclass(frozen=True, slots=True)
class SkuExport:
    """Everything a shard keeps about one SKU, handed to the SKU's new shard."""

    sku: str
    known: bool  # the SKU ever had lines here (a full recalculation includes it)
    lines: tuple[MovedLine, ...]
    stock: dict[str, int] | None
    total: int
    position: tuple[int, int] | None
    held_total: int | None
    incoming: SkuIncoming | None = None  # its supply on its way
    # The headers of its lines' orders: the new shard introduces an order it does not know
    # (one in transit between two route tasks of the partitioned recalculator).
    orders: tuple[IntroduceOrder, ...] = ()


@dataclass(frozen=True, slots=True)
class EvictOrder:
    """The router evicted a closed order (past its retention, owing nothing): every shard
    that knows the order forgets it too, and reports it so that the assembler does."""

    cause_type: str
    order_id: str


@dataclass(frozen=True, slots=True)
class ReleaseSkus:
    cause_type: str
    skus: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AcquireSkus:
    cause_type: str
    skus: tuple[str, ...]
    from_shard: int
    exports: tuple[SkuExport, ...] | None = None


@dataclass(frozen=True, slots=True)
class Restricted:
    """An input event as one shard sees it: list fields of its data cut down to the items at
    `keep[field]` (that shard's lines, orders or SKUs). Kept as indices into the original, so
    a runtime can ship the input's own bytes and cut them again on the other side."""

    event: object
    keep: dict[str, tuple[int, ...]]

    @property
    def type(self) -> str:
        return self.event.type

    def materialize(self):
        data = self.event.data
        update = {
            name: [getattr(data, name)[index] for index in indices]
            for name, indices in self.keep.items()
        }
        return self.event.model_copy(update={"data": data.model_copy(update=update)})


OPERATIONS = (IntroduceOrder, DepartLine, ArriveLine, ReleaseSkus, AcquireSkus, EvictOrder)


@dataclass(slots=True)
class Routed:
    """What the router made of one input event: its verdict, and the records for the shards
    in the order they must be applied (all of one shard's in sequence)."""

    status: str
    reason: str | None = None
    records: list[tuple[int, object]] = field(default_factory=list)
    publish: bool = True  # the workflow is enabled after the event
    evicted: list[str] = field(default_factory=list)  # closed orders forgotten after it
