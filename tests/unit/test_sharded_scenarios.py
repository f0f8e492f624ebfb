"""The sharded recalculator's rarer paths, each forced across two shards and held equal to
the one-process engine: a line replaced onto another shard's SKU, and SKUs moving when a
replacement relation merges their groups."""

from __future__ import annotations

from collections import Counter

from recalculator.domain import router as router_module
from recalculator.domain.sharding import stable_shard
from support import created, event, parsed, stock
from test_sharded_equivalence import assert_same_run

SHARDS = 2


def pick(prefix: str, shard: int) -> str:
    return next(f"{prefix}{n}" for n in range(100) if stable_shard(f"{prefix}{n}", SHARDS) == shard)


# R sorts before X: linking X → R makes R the group's root, so X moves to R's shard.
R, X = pick("R-", 0), pick("X-", 1)
OTHER = pick("A-", 0)


def routed_kinds(monkeypatch) -> Counter:
    kinds: Counter = Counter()
    route = router_module.Router.route

    def counting(self, ev):
        result = route(self, ev)
        kinds.update(type(item).__name__ for _, item in result.records)
        return result

    monkeypatch.setattr(router_module.Router, "route", counting)
    return kinds


def at(day: int) -> str:
    return f"2025-05-{day:02d}T12:00:00Z"


def settings(time: str, **values) -> dict:
    return event("SettingsChanged", {"settings": values}, time=time)


def test_a_frozen_line_replaced_onto_another_shards_sku_keeps_its_backorder(monkeypatch):
    kinds = routed_kinds(monkeypatch)
    log = [
        settings(at(1), max_days_to_be_back=2),
        stock(OTHER, 5, time=at(1)),
        created("o1", [("1", X, 3), ("2", OTHER, 1)], date=at(1), time=at(1)),
        created("o2", [("1", OTHER, 2)], date=at(6), time=at(6)),
        # Days later o1 is frozen: its line keeps backorder 3 on the new SKU's shard, and
        # takes its allocation (qty - backorder) from OTHER's supply first.
        event("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": OTHER, "qty": 4},
              time=at(8)),
        event("ReallocateBackorder", {"order_id": "o1", "lines": [{"line_id": "2", "backorder_qty": 1}]},
              time=at(8)),
        event("ItemReplaced", {"order_id": "o1", "line_id": "2", "new_sku": X}, time=at(9)),
        event("RecalculateBackorders", {}, time=at(9)),
    ]
    single, sharded = assert_same_run([parsed(raw) for raw in log], SHARDS)
    assert kinds["DepartLine"] == 2 and kinds["ArriveLine"] == 2
    assert single.orders["o1"].lines["1"].published == 3  # the frozen value, carried over


def test_a_replacement_link_moves_a_sku_with_its_lines_stock_and_held_total(monkeypatch):
    kinds = routed_kinds(monkeypatch)
    log = [
        settings(at(1), consider_replacement_sku_qty=True),
        stock(R, 4, time=at(1)),
        stock(X, 1, time=at(1)),
        created("o1", [("1", X, 3), ("2", R, 1)], date=at(1), time=at(1)),
        created("o2", [("1", X, 2)], date=at(2), time=at(2)),
        settings(at(3), enable_backorder_workflow=False),
        # While nothing is published X's total drops 2 → 1; downstream last saw 2.
        event("ItemReplaced", {"order_id": "o1", "line_id": "1", "new_sku": X, "qty": 1},
              time=at(3)),
        event("ProductUpserted", {"sku": X, "replacement_sku": R}, time=at(4)),
        settings(at(5), enable_backorder_workflow=True),
        event("RecalculateBackorders", {}, time=at(5)),
        event("POReceived", {"po_id": "p", "warehouse_id": "W1", "lines": [{"sku": R, "qty": 1}]},
              time=at(6)),
    ]
    single, sharded = assert_same_run([parsed(raw) for raw in log], SHARDS)
    assert kinds["ReleaseSkus"] == 1 and kinds["AcquireSkus"] == 1
    assert sharded.router.shard_of(X) == sharded.router.shard_of(R) == 0
    assert X not in sharded.shards[1].lines_by_sku and X in sharded.shards[0].lines_by_sku
    assert single.totals[X] < 3  # o2 drew on R's leftover once X joined R's shard
