"""How live workers share the SKU shards out (kafka/sharded.py, docs/sharding.md)."""

from __future__ import annotations

import pytest
from recalculator.kafka.sharded import ShardedWorker

URL = "postgresql+asyncpg://nobody@127.0.0.1:1/none"  # never connected to here


def share(me: str, live: list[tuple[str, str]], shards: int = 4) -> set[int]:
    return ShardedWorker(URL, base="b", shards=shards, worker_id=me).wanted(live)


def test_a_lone_worker_holds_every_shard_even_while_it_routes():
    assert share("a", [("a", "router")]) == {0, 1, 2, 3}
    assert share("a", []) == {0, 1, 2, 3}  # before its first heartbeat is read back


def test_the_routing_worker_leaves_the_shards_to_the_others():
    live = [("a", "router"), ("b", ""), ("c", "")]
    assert share("a", live) == set()
    assert share("b", live) == {0, 2}
    assert share("c", live) == {1, 3}


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_shard_has_exactly_one_holder(count):
    live = [(f"w{n}", "router" if n == 1 else "") for n in range(count)]
    holders = [shard for worker, _ in live for shard in share(worker, live, shards=7)]
    assert sorted(holders) == list(range(7))


def test_the_audit_compares_an_assembled_state_with_a_replay():
    from recalculator.domain.engine import Engine
    from recalculator.kafka.replay import differences
    from support import created, feed

    replayed = Engine()
    feed(replayed, created("o1", [("1", "X", 2)]), created("o2", [("1", "Y", 1)]))
    replayed.orders["o2"].published_status = "None"  # o2 is then as if never published
    for line in replayed.orders["o2"].lines.values():
        line.published = 0
    live = {"o1": ("Full", {"1": 2})}
    assert differences(live, replayed) == []
    live["o1"] = ("Partial", {"1": 1})
    [found] = differences(live, replayed)
    assert (found.order_id, found.live_status, found.replayed_status) == ("o1", "Partial", "Full")
