"""The order of application (recalculator/ordering.py): the live merge of partitions gives
the order of the log itself, however the records arrive, across restarts, and the same as
a file of the same events."""

from __future__ import annotations

import random

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st
from recalculator.ordering import EventTimeMerge, file_order

# A log: per lane, a list of (time or None, key); lanes are (rank, partition).
lanes_strategy = st.lists(
    st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 12)), st.sampled_from([b"a", b"b", b"c", b""])),
             max_size=12),
    min_size=1, max_size=5,
)


def lane_ids(log):
    return [(i % 4, i) for i in range(len(log))]  # (rank, partition)


def merged_all_at_once(log) -> list:
    """The log applied when every record is there: the order it defines."""
    merge = EventTimeMerge()
    for (rank, part), records in zip(lane_ids(log), log):
        merge.add_lane(part, rank, part)
        for offset, (time, key) in enumerate(records):
            merge.offer(part, offset, time, key, (part, offset))
        merge.end(part)
    return [entry.record for entry in merge.take(10**9)]


def merged_live(log, rng: random.Random, restart_every: int | None = None) -> list:
    """The same log arriving in random chunks, each lane found empty only once all of it
    arrived; with `restart_every`, the merge is rebuilt from the last applied offsets and
    times every so many steps (a restarted worker), unapplied records arriving again."""
    ids = lane_ids(log)
    applied: list = []
    last: dict[int, tuple[int, int]] = {}  # lane → (offset, time) of its last applied record
    merge = None
    arrived: dict[int, int] = {}
    clock = 0.0
    steps = 0
    while True:
        if merge is None:
            merge = EventTimeMerge()
            for rank, part in ids:
                offset, time = last.get(part, (-1, None))
                merge.add_lane(part, rank, part, time)
                arrived[part] = offset + 1
        steps += 1
        clock += 1.0
        part = rng.randrange(len(log))
        records = log[part]
        upto = min(len(records), arrived[part] + rng.randint(0, 3))
        for offset in range(arrived[part], upto):
            time, key = records[offset]
            merge.offer(part, offset, time, key, (part, offset), clock)
        arrived[part] = upto
        for lane in merge.blocked or []:
            if arrived[lane] == len(log[lane]):
                merge.idle(lane, clock + 0.5)
        for entry in merge.take(rng.randint(1, 6)):
            applied.append(entry.record)
            # Within an instant records go by key, not offset: what is stored is the furthest.
            lane, offset = entry.record
            if offset > last.get(lane, (-1, None))[0]:
                last[lane] = (offset, entry.time)
        if len(applied) == sum(map(len, log)):
            return applied
        if restart_every and steps % restart_every == 0:
            merge = None


@given(lanes_strategy, st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_the_live_merge_applies_the_order_of_the_log_however_records_arrive(log, rng):
    assert merged_live(log, rng) == merged_all_at_once(log)


@given(lanes_strategy, st.randoms(use_true_random=False), st.integers(2, 9))
@settings(max_examples=300, deadline=None)
def test_a_restart_from_the_stored_offsets_and_times_goes_on_in_the_same_order(log, rng, every):
    assert merged_live(log, rng, restart_every=every) == merged_all_at_once(log)


def test_effective_time_never_goes_back_within_a_lane():
    merge = EventTimeMerge()
    merge.add_lane("p", 0, 0)
    merge.add_lane("q", 0, 1)
    for offset, time in enumerate([5, 1, 9]):
        merge.offer("p", offset, time, b"k", ("p", offset))
    merge.offer("q", 0, 3, b"k", ("q", 0))
    merge.end("p")
    merge.end("q")
    taken = merge.take(10)
    assert [e.record for e in taken] == [("q", 0), ("p", 0), ("p", 1), ("p", 2)]
    assert [e.time for e in taken] == [3, 5, 5, 9]


def test_same_instant_goes_by_rank_then_key_then_partition_and_offset():
    merge = EventTimeMerge()
    for part, rank in ((0, 2), (1, 2), (2, 0)):
        merge.add_lane(part, rank, part)
    merge.offer(0, 0, 7, b"o2", "orders o2")
    merge.offer(0, 1, 7, b"o1", "orders o1, after o2 in its partition")
    merge.offer(1, 0, 7, b"o0", "orders o0")
    merge.offer(2, 0, 7, b"settings", "reference")
    for part in range(3):
        merge.end(part)
    assert [e.record for e in merge.take(10)] == [
        "reference", "orders o0", "orders o1, after o2 in its partition", "orders o2",
    ]


def test_a_lane_never_seen_empty_holds_the_others_back_and_an_empty_one_lets_them_pass():
    merge = EventTimeMerge()
    merge.add_lane("a", 0, 0)
    merge.add_lane("b", 0, 1)
    merge.offer("a", 0, 10, b"", "a0", received=1.0)
    merge.idle("a", 1.5)  # nothing after a0 in its own lane either
    assert merge.take(10) == [] and merge.blocked == ["b"]
    merge.idle("b", 0.5)  # seen empty before a0 arrived: proves nothing about a0's time
    assert merge.take(10) == []
    merge.idle("b", 1.5)
    assert [e.record for e in merge.take(10)] == ["a0"]


def test_the_idle_bound_wants_the_lane_empty_that_long_after_the_record_arrived():
    merge = EventTimeMerge(idle_bound=0.2)
    merge.add_lane("a", 0, 0)
    merge.add_lane("b", 0, 1)
    merge.offer("a", 0, 10, b"", "a0", received=1.0)
    merge.idle("a", 1.2)
    merge.idle("b", 1.1)
    assert merge.take(10) == []
    merge.idle("b", 1.2)
    assert [e.record for e in merge.take(10)] == ["a0"]


def test_a_record_arriving_after_its_lane_was_passed_as_empty_is_late_and_counted():
    merge = EventTimeMerge()
    merge.add_lane("a", 0, 0)
    merge.add_lane("b", 0, 1)
    merge.offer("a", 0, 10, b"", "a0", received=1.0)
    merge.idle("a", 2.0)
    merge.idle("b", 2.0)
    assert [e.record for e in merge.take(10)] == ["a0"]
    merge.offer("b", 0, 5, b"", "b0 (earlier)", received=3.0)
    merge.idle("b", 4.0)
    merge.idle("a", 4.0)
    assert [e.record for e in merge.take(10)] == ["b0 (earlier)"]
    assert merge.late == 1


def test_a_lane_whose_time_is_later_needs_no_proof_of_emptiness():
    merge = EventTimeMerge()
    merge.add_lane("a", 0, 0)
    merge.add_lane("b", 0, 1, time=20)  # restored: it had reached 20
    merge.offer("a", 0, 10, b"", "a0")
    merge.offer("a", 1, 11, b"", "a1")  # a's own time passes 10 too
    assert [e.record for e in merge.take(10)] == ["a0"]


def test_an_instant_is_never_split_across_batches():
    merge = EventTimeMerge()
    merge.add_lane("a", 0, 0)
    for offset in range(5):
        merge.offer("a", offset, 1, b"", offset)
    merge.offer("a", 5, 2, b"", 5)
    merge.end("a")
    assert [e.record for e in merge.take(2)] == [0, 1, 2, 3, 4]
    assert [e.record for e in merge.take(2)] == [5]


# -- a file gives the order of the topics -------------------------------------------------------

events_strategy = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 3), st.sampled_from([b"k1", b"k2", b"k3", b"k4", b"k5"])),
    max_size=40,
)


@given(events_strategy, st.integers(1, 5), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_a_log_in_time_order_gives_the_same_order_from_a_file_and_from_any_partitions(events, partitions, rng):
    """Events produced in time order, each to the partition its key hashes to (per topic):
    the merge of the partitions equals the file's order, whatever the number of partitions."""
    events = sorted(events, key=lambda e: e[0])  # stable: the producer's order among equals
    entries = [(time, rank, key, n) for n, (time, rank, key) in enumerate(events)]
    by_file = file_order(entries)

    merge = EventTimeMerge()
    lanes: dict[tuple[int, int], list] = {}
    for n, (time, rank, key) in enumerate(events):
        lane = (rank, sum(key) % partitions)
        lanes.setdefault(lane, []).append((time, key, n))
    for lane, records in lanes.items():
        merge.add_lane(lane, lane[0], lane[1])
        for offset, (time, key, n) in enumerate(records):
            merge.offer(lane, offset, time, key, n)
        merge.end(lane)
    assert [e.record for e in merge.take(10**9)] == by_file


def test_a_file_whose_time_goes_back_is_read_as_one_lane():
    entries = [(5, 2, b"a", "first"), (1, 2, b"a", "earlier time, later line"), (None, 3, b"", "unreadable")]
    assert file_order(entries) == ["first", "earlier time, later line", "unreadable"]


def test_a_late_record_of_the_same_instant_is_counted_too():
    merge = EventTimeMerge()
    merge.add_lane("a", 2, 0)
    merge.add_lane("b", 0, 1)  # a lower rank: at the same instant it goes first
    merge.offer("a", 0, 10, b"", "a0", received=1.0)
    merge.idle("a", 2.0)
    merge.idle("b", 2.0)
    assert [e.record for e in merge.take(10)] == ["a0"]
    merge.offer("b", 0, 10, b"", "b0 (same instant, ranked first)", received=3.0)
    merge.idle("a", 4.0)
    merge.idle("b", 4.0)
    assert [e.record for e in merge.take(10)] == ["b0 (same instant, ranked first)"]
    assert merge.late == 1


def test_the_merge_says_how_long_until_the_idle_bound_lets_records_pass():
    merge = EventTimeMerge(idle_bound=0.05)
    merge.add_lane("a", 0, 0)
    assert merge.ready_in(5.0) == 0.0  # nothing waits
    merge.offer("a", 0, 10, b"", "a0", received=1.0)
    assert merge.ready_in(1.01) == pytest.approx(0.04)
    assert merge.ready_in(2.0) == 0.0


def test_a_record_without_a_time_is_never_late():
    """It is refused wherever it goes (its time could not be read): arriving after its
    partition was passed, it is not reported as late."""
    merge = EventTimeMerge()
    merge.add_lane("a", 0, 0)
    merge.add_lane("b", 3, 1, time=5)
    merge.offer("a", 0, 10, b"", "a0", received=1.0)
    merge.idle("a", 2.0)
    merge.idle("b", 2.0)
    assert [e.record for e in merge.take(10)] == ["a0"]
    merge.offer("b", 0, None, b"", "unreadable", received=3.0)
    merge.idle("a", 4.0)
    merge.idle("b", 4.0)
    assert [e.record for e in merge.take(10)] == ["unreadable"]
    assert merge.late == 0
