"""The order in which inputs are applied: by event time, the same in every runtime.

Inputs arrive on several *lanes*: the partitions of the four input topics on Kafka, or one
file. How records of different lanes interleave on arrival depends on timing, so it cannot
decide the order, or a replay of the topics would not reproduce what the worker did. The
order is a function of the log alone:

- Each record has an **effective time**: its event `time`, raised to the largest time seen
  before it on its lane (a lane's time never goes back, so a lane that has reached time T
  can no longer bring anything earlier). A record whose time cannot be read takes its
  lane's time.
- Records are applied in ascending `(effective time, topic rank, key, partition, offset)`.
  At the same instant reference data comes first, then stock and purchasing, then orders,
  then commands (`ROLES`); then records go by key, each key's records keeping their log
  order. Since a key lives on one partition, a log whose times never go back gives the
  same order whatever the number of partitions, and a file gives it too (`file_order`).

Live, a record is applied only once every lane has *passed* its time: the lane holds a
later record, or its time is already later, or it is known to hold nothing more (its end
offset was read after the record arrived, and at least `idle_bound` after it). A record that
reaches a lane after that lane was passed as empty is *late*: it is applied when it
arrives, after records of later time; `EventTimeMerge.late` counts them.

Pure: no I/O, no clock (the runtime passes the moments it measured), no logging.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

# Tie-break at the same effective time: what the other inputs of that instant depend on first.
ROLES = ("reference", "inventory", "orders", "commands")
RANKS = {role: rank for rank, role in enumerate(ROLES)}

NO_TIME = -(1 << 63)  # before every time: a lane that has seen nothing yet


@dataclass(slots=True)
class Entry:
    """One input record waiting for its turn."""

    time: int  # effective time, µs
    rank: int
    key: bytes
    partition: int
    offset: int
    record: Any  # what the runtime applies
    received: float = 0.0  # when the runtime read it (its own clock), for the idle bound
    timed: bool = True  # False: its time could not be read (it changes nothing: refused)

    def order(self) -> tuple:
        return (self.time, self.rank, self.key, self.partition, self.offset)


class Lane:
    """One source of records in log order: a topic partition."""

    __slots__ = ("ended", "idle_at", "partition", "pending", "rank", "taken", "time")

    def __init__(self, rank: int, partition: int, time: int | None) -> None:
        self.rank = rank
        self.partition = partition
        self.time = NO_TIME if time is None else time  # effective time of the last record seen
        self.pending: deque[Entry] = deque()
        self.idle_at: float | None = None  # last moment it was known to hold nothing more
        self.ended = False  # nothing more will ever come (a replay up to fixed offsets)
        self.taken: tuple[int, int] | None = None  # (offset, time) of the last record taken

    def passes(self, time: int, arrived: float, idle_bound: float) -> bool:
        """Can this lane still bring a record of effective time `time` or earlier? No when
        its time is later, when it has ended, or when it was found empty long enough after
        the records of `time` arrived."""
        if self.time > time or self.ended:
            return True
        return self.idle_at is not None and self.idle_at >= arrived + idle_bound


# How long a partition found empty must stay so before later records pass it, unless told
# otherwise (BACKORDERS_IDLE_BOUND_MS): long enough to cover a producer's batching (5 ms
# by default since Kafka 4.0) and a fetch round trip, short enough not to dominate latency.
DEFAULT_IDLE_BOUND_MS = 50


class EventTimeMerge:
    """The live merge: lanes are offered records as they are read, and give back, in the
    order of the module docstring, those whose turn has come for certain."""

    def __init__(self, idle_bound: float = 0.0) -> None:
        self.idle_bound = idle_bound
        self.lanes: dict[Hashable, Lane] = {}
        self.stream_time = NO_TIME  # the latest effective time applied
        self.last: tuple | None = None  # the order of the last record applied
        self.late = 0  # records applied after records that come later in the order
        self.late_entries: list[Entry] = []  # the latest of them (a few), for the log
        self.blocked: list[Hashable] = []  # lanes the last `take` waited for

    def add_lane(self, lane_id: Hashable, rank: int, partition: int, time: int | None = None) -> None:
        """A lane starting after its last applied record, whose effective time was `time`."""
        self.lanes[lane_id] = Lane(rank, partition, time)
        if time is not None and time > self.stream_time:
            self.stream_time = time

    def clear(self) -> None:
        """Forget every lane and what it holds (the runtime goes back to its last commit,
        and `add_lane` says where each lane stands there)."""
        self.lanes.clear()
        self.blocked = []
        self.stream_time = NO_TIME
        self.last = None

    def offer(self, lane_id: Hashable, offset: int, time: int | None, key: bytes, record: Any,
              received: float = 0.0) -> Entry:
        lane = self.lanes[lane_id]
        if time is not None and time > lane.time:
            lane.time = time
        lane.idle_at = None  # it held more than was known: emptiness must be seen again
        entry = Entry(lane.time, lane.rank, key, lane.partition, offset, record, received, time is not None)
        lane.pending.append(entry)
        return entry

    def idle(self, lane_id: Hashable, at: float) -> None:
        """The lane was found to hold nothing beyond what it was offered, at moment `at`."""
        self.lanes[lane_id].idle_at = at

    def end(self, lane_id: Hashable) -> None:
        self.lanes[lane_id].ended = True

    def next_time(self) -> int | None:
        """The effective time of the next instant to apply, None when nothing is pending."""
        heads = [lane.pending[0].time for lane in self.lanes.values() if lane.pending]
        return min(heads) if heads else None

    def pending(self) -> int:
        return sum(len(lane.pending) for lane in self.lanes.values())

    def take(self, limit: int) -> list[Entry]:
        """Whole instants whose turn has come, in order, until at least `limit` records
        (an instant is never split, so a batch may hold more). `blocked` then names the
        lanes the next instant waits for (empty when nothing is pending)."""
        taken: list[Entry] = []
        lanes = self.lanes.values()
        self.blocked = []
        while len(taken) < limit:
            heads = [lane.pending[0].time for lane in lanes if lane.pending]
            if not heads:
                break
            now = min(heads)
            arrived = max(
                entry.received for lane in lanes for entry in _run(lane.pending, now)
            )
            blocked = [
                lane_id for lane_id, lane in self.lanes.items()
                if not lane.passes(now, arrived, self.idle_bound)
            ]
            if blocked:
                self.blocked = blocked
                break
            instant = []
            for lane in lanes:
                pending = lane.pending
                if pending and pending[0].time == now:
                    while pending and pending[0].time == now:
                        instant.append(pending.popleft())
                    lane.taken = (instant[-1].offset, now)
            if len(instant) > 1:
                instant.sort(key=Entry.order)
            last = self.last
            for entry in instant:
                if not entry.timed:
                    continue  # refused whatever its place: it can be neither early nor late
                order = entry.order()
                if last is not None and order < last:
                    self.late += 1  # the log puts it before a record already applied
                    self.late_entries = [*self.late_entries[-9:], entry]
                else:
                    last = order
            self.last = last
            self.stream_time = max(self.stream_time, now)
            taken.extend(instant)
        return taken

    def ready_in(self, now: float) -> float:
        """How long until the next instant's records are old enough for a lane found empty
        to let them pass (the idle bound), from the runtime's moment `now`; 0 when they are."""
        upcoming = self.next_time()
        if upcoming is None or not self.idle_bound:
            return 0.0
        arrived = max(entry.received for lane in self.lanes.values() for entry in _run(lane.pending, upcoming))
        return max(0.0, arrived + self.idle_bound - now)


def _run(pending: deque[Entry], time: int) -> Iterable[Entry]:
    for entry in pending:
        if entry.time != time:
            break
        yield entry


# -- a log that is all there (a file, or topics read up to fixed offsets) ----------------------


def file_order(entries: Iterable[tuple[int | None, int, bytes, Any]]) -> list[Any]:
    """The records of a file in the order the Kafka worker applies the same events:
    `entries` are (event time or None, topic rank, key, record) in file order; the file is
    one lane (a time that goes back is raised to the latest before it), and equal instants
    go by rank, then key, then file order. For a log whose times never go back this is the
    order of the topics, whatever their partitions."""
    latest = NO_TIME
    keyed = []
    for line, (time, rank, key, record) in enumerate(entries):
        if time is not None and time > latest:
            latest = time
        keyed.append(((latest, rank, key, line), record))
    keyed.sort(key=lambda item: item[0])
    return [record for _, record in keyed]


def topic_ranks(topics) -> dict[str, int]:
    """Each input topic's tie-break rank among records of the same time (ROLES), by name."""
    return {getattr(topics, role): rank for role, rank in RANKS.items()}
