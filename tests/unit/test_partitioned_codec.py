"""The partitioned tasks' messages and protocol state through their codecs
(recalculator.adapters.partitioned_codec): the simulation of the equivalence test, with
every message between tasks encoded to bytes and decoded on the other side, and every
task's protocol state written to JSON and read back after each step, ends as the engine
does; each message decodes to what was sent and encodes again to the same bytes."""

from __future__ import annotations

import random
from collections import defaultdict, deque

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from partitioned_simulation import Simulation, assert_equal
from recalculator.adapters.partitioned_codec import (
    allocation_state,
    assembly_state,
    decode_allocation,
    decode_partial_message,
    decode_transfer,
    encode_allocation,
    encode_partial_message,
    encode_transfer,
    load_allocation_state,
    load_assembly_state,
    load_route_state,
    route_state,
)
from recalculator.domain.partitioned import Envelope, PartialMessage
from support import generated_events, parsed
from test_allocation_properties import event_logs, parse_all
from test_partitioned_equivalence import SHAPES, partitioned_log, run
from test_partitioned_tasks import EARLY_TRANSFER, MERGE_THEN_SPLIT, TWO_MOVES, run_log


class Encoded(deque):
    """A channel that carries bytes: what is appended is encoded, what is taken decoded."""

    def __init__(self, encode, decode) -> None:
        super().__init__()
        self.encode, self.decode = encode, decode
        self.sent = 0

    def append(self, message) -> None:
        payload = self.encode(message)
        decoded = self.decode(payload)
        if isinstance(message, Envelope | PartialMessage):
            assert decoded == message
        assert self.encode(decoded) == payload
        self.sent += 1
        super().append(payload)

    def popleft(self):
        return self.decode(super().popleft())


STATES = [
    ("route_tasks", route_state, load_route_state),
    ("allocation", allocation_state, load_allocation_state),
    ("assembly", assembly_state, load_assembly_state),
]


class EncodedSimulation(Simulation):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.to_allocation = defaultdict(lambda: Encoded(encode_allocation, decode_allocation))
        self.transfers = defaultdict(lambda: Encoded(encode_transfer, decode_transfer))
        self.to_assembly = defaultdict(lambda: Encoded(encode_partial_message, decode_partial_message))
        self.states_kept = 0

    def stepped(self) -> None:
        """Every task's protocol state replaced by what its JSON reads back as."""
        for name, dump, load in STATES:
            for task in getattr(self, name):
                text = dump(task)
                load(task, text)
                assert dump(task) == text
                self.states_kept += not task.idle()


def sent(simulation: EncodedSimulation) -> int:
    return sum(queue.sent for channels in (simulation.to_allocation, simulation.transfers,
                                           simulation.to_assembly) for queue in channels.values())


def outcome(events, shape, seed, simulation_class):
    """What a run ends with: its error, or its verdicts, publications, lines and orders."""
    try:
        simulation, engine, _ = run(events, shape, random.Random(seed), simulation_class)
    except Exception as error:  # noqa: BLE001 - compared with the run without codecs
        return repr(error), None
    return (simulation.verdicts, simulation.published, simulation.line_backorders(),
            simulation.assembled()), (simulation, engine)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_logs(max_size=60), st.sampled_from(SHAPES), st.integers(0, 2**32))
def test_the_tasks_through_their_codecs_in_any_interleaving(log, shape, seed):
    """The same run (same scheduler choices) with and without the codecs ends the same,
    and equals the engine as the equivalence test holds it."""
    events = parse_all(partitioned_log(log))
    plain, _ = outcome(events, shape, seed, Simulation)
    encoded, ran = outcome(events, shape, seed, EncodedSimulation)
    assert encoded == plain
    if ran is not None:
        assert_equal(*ran, every_line=False)


def test_a_generated_day_through_the_codecs():
    events = generated_events(11, 300)
    simulation, engine, _ = run(events, (3, 6, 3), random.Random(3), EncodedSimulation)
    assert_equal(simulation, engine, every_line=False)
    assert sent(simulation) > 1000
    assert simulation.states_kept  # some state was held, waiting or parked meanwhile


class RouteStatesKept(EncodedSimulation):
    """Which parts of a route task's state were ever kept (written and read back) non-empty."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kept = set()

    def stepped(self) -> None:
        super().stepped()
        for task in self.route_tasks:
            self.kept.update(name for name, value in orjson.loads(route_state(task)).items() if value)


def test_a_split_off_order_meeting_merges_through_the_codecs():
    """The scenarios of a split-off order meeting group merges (test_partitioned_tasks.py):
    transfers held for merges, merges remembered, split times of orders taken in."""
    kept = set()
    for log, order in (TWO_MOVES, MERGE_THEN_SPLIT, EARLY_TRANSFER):
        kept |= run_log(log, order, RouteStatesKept).kept
    assert {"merges", "moves", "transfers_waiting", "taken_in"} <= kept


def test_an_input_travels_as_its_own_bytes():
    raw = (b'{"specversion":"1.0","id":"w-1","source":"/wms","type":"InventoryAdjusted",'
           b'"time":"2030-01-01T00:00:00Z","data":{"sku":"A", "warehouse_id":"W1","set_to":3}}')
    event = parsed(orjson.loads(raw))
    envelope = Envelope("route0", event.id, event.type, 0, True, event)
    payload = encode_allocation(envelope, lambda item: raw if item is event else None)
    assert orjson.loads(orjson.loads(payload)["item"]["record"])["event"] == raw.decode()
    assert decode_allocation(payload) == envelope


class MemoizedSimulation(Simulation):
    """Checks, after every step, that an allocation task's state written with the memo of
    parked envelopes (kept from its previous writes) is the state written without it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.memos = [{} for _ in self.allocation]
        self.reused = 0

    def stepped(self) -> None:
        for task, memo in zip(self.allocation, self.memos):
            before = {key for key, (env, _) in memo.items()}
            assert allocation_state(task, memo) == allocation_state(task)
            self.reused += len(before & set(memo))


def test_parked_envelopes_written_from_the_memo_as_without_it():
    events = generated_events(11, 300)
    simulation, engine, _ = run(events, (3, 6, 3), random.Random(3), MemoizedSimulation)
    assert_equal(simulation, engine, every_line=False)
    assert simulation.reused  # envelopes stayed parked across steps and were not encoded again
