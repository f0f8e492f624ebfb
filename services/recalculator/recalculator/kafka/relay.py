"""The outbox relay: publishes what the recalculator committed to its outbox to Kafka.

Events leave the outbox in commit order; after each batch is acknowledged by the broker
(acks=all, idempotent producer) the relay stores the last sequence number it sent. A relay
killed between the broker's acknowledgement and that write sends the last batch again on
restart: delivery is at least once, and every event keeps the id it was given when it was
decided (derived from its cause), so consumers drop repeats by id.

Dead letters go the same way to the dead-letter topic: one JSON record each (the raw input,
the reason, and the topic, partition and offset it was read at), keyed by that place, so a
repeat is recognisable by its key.

On PostgreSQL the relay polls and stores its positions over a connection of its own, in
autocommit and without waiting for the disk: a poll is then one round trip, where a pooled
connection costs a checkout (which pings the server), a BEGIN and a ROLLBACK. At 2,000
inputs/s those polls were about a third of the relay's CPU.

One relay is active per state: that connection holds an advisory lock named after the
schema (`relay:<schema>`), taken before anything is read. A second relay waits for it as a
standby and takes over when the first one stops or dies (the lock goes with its
connection); each time it takes the lock it reads the positions again, since the other
relay moved them meanwhile. Positions are only written over that connection, so only the
relay holding the lock writes them, and the write never lowers a stored position
(`Repository.save_position`).
While running, the relay also prunes what it has sent: every `prune_every_seconds` it
deletes the outbox rows and dead letters at or before its stored positions that are older
than their retention (`RetentionSettings`), in small transactions of their own.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer
from backorder_events import DeadLetter
from backorder_events.topics import OutputTopics
from backorders_platform import locks, logs
from backorders_platform.kafka_settings import KafkaSettings
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..adapters.repository import DEAD_LETTER_RELAY_SOURCE, OUTBOX_RELAY_SOURCE, Repository
from ..config import RetentionSettings

RELAY_SOURCE = OUTBOX_RELAY_SOURCE
# While running, dead letters (rare) are looked for at most this often; the outbox at every
# poll.
DEAD_LETTER_POLL_SECONDS = 0.25
log = logs.get("recalculator.relay")


def lock_id(schema: str | None) -> int:
    """One active relay per state: the lock is named after the schema holding the outbox."""
    return locks.key("relay", schema)


class OutboxRelay:
    def __init__(
        self,
        repository: Repository,
        kafka: KafkaSettings | None = None,
        topics: OutputTopics | None = None,
        *,
        batch_size: int = 500,
        retention: RetentionSettings | None = None,
    ) -> None:
        self.repository = repository
        self.kafka = kafka or KafkaSettings()
        self.topics = topics or OutputTopics()
        self.batch_size = batch_size
        self.retention = retention or RetentionSettings()
        self.producer: AIOKafkaProducer | None = None
        # Positions as last stored by this relay: read from the database once the lock is
        # taken, then kept here, saving a query per poll.
        self._after: dict[str, int] = {}
        self._conn: AsyncConnection | None = None
        self.lock_id = lock_id(repository.schema)
        self._stop: asyncio.Event | None = None  # ends a wait for the lock (see `run`)

    async def _connection(self) -> AsyncConnection | None:
        """The relay's own connection on PostgreSQL, holding the relay's lock (None
        elsewhere: pooled connections). Made when there is none: a relay that another one
        holds the lock of waits here, as a standby."""
        if self._conn is None and self.repository.db.dialect.name == "postgresql":
            db = self.repository.db
            taken, conn = await locks.try_hold(db, self.lock_id)
            if not taken:
                log.info("relay_waiting_for_lock", schema=self.repository.schema)
                conn = await locks.hold(db, self.lock_id, stop=self._stop)
                log.info("relay_lock_acquired", schema=self.repository.schema)
            try:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("SET synchronous_commit TO off"))
            except BaseException:
                await self._discard(conn)
                raise
            self._conn = conn
            self._after = {}  # another relay may have moved them while this one did not hold the lock
        return self._conn

    @staticmethod
    async def _discard(conn: AsyncConnection) -> None:
        # Not back to the pool: its session settings would go with it (or it is dead).
        with contextlib.suppress(Exception):
            await conn.invalidate()
            await conn.close()

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._discard(conn)

    async def start(self) -> OutboxRelay:
        self.producer = AIOKafkaProducer(
            **self.kafka.client_options(), acks="all", enable_idempotence=True, linger_ms=5
        )
        await self.producer.start()
        return self

    async def stop(self) -> None:
        await self._drop_connection()
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def __aenter__(self) -> OutboxRelay:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def relay_batch(self) -> int:
        """Send the next batch of the outbox and of the dead letters; returns how many records
        were sent (0: both are drained)."""
        return await self._guarded(self._relay_outbox) + await self._guarded(self._relay_dead_letters)

    async def _guarded(self, work):
        """Run a step; on failure the relay's connection is dropped (it may be dead: the
        server restarted) and made again on the next step."""
        try:
            return await work()
        except BaseException:
            await self._drop_connection()
            raise

    async def _position(self, source: str) -> int:
        if source not in self._after:
            self._after[source] = await self.repository.position(source) or 0
        return self._after[source]

    async def _save(self, source: str, position: int, conn: AsyncConnection | None) -> None:
        try:
            stored = await self.repository.save_position(source, position, conn=conn)
        except BaseException:
            self._after.pop(source, None)  # read it again next time
            raise
        self._after[source] = stored

    async def _relay_dead_letters(self) -> int:
        conn = await self._connection()  # the lock first, then the position
        after = await self._position(DEAD_LETTER_RELAY_SOURCE)
        rows = await self.repository.dead_letter_rows(after, self.batch_size, conn)
        if not rows:
            return 0
        sends = []
        for row in rows:
            record = DeadLetter.model_validate(dict(row._mapping))
            place = f"{record.source}:{record.partition}:{record.position}"
            headers = [("dlq_reason", record.reason.encode()), ("dlq_source", record.source.encode())]
            if record.event_id is not None:
                headers.append(("ce_id", record.event_id.encode()))
            sends.append(await self.producer.send(
                self.topics.dead_letters, key=place.encode(),
                value=record.model_dump_json().encode(), headers=headers,
            ))
        await asyncio.gather(*sends)
        await self._save(DEAD_LETTER_RELAY_SOURCE, rows[-1].seq, conn)
        log.info("dead_letters_relayed", count=len(rows), last_seq=rows[-1].seq)
        return len(rows)

    async def _relay_outbox(self) -> int:
        conn = await self._connection()  # the lock first, then the position
        after = await self._position(RELAY_SOURCE)
        rows = await self.repository.outbox_rows(after, self.batch_size, conn)
        if not rows:
            return 0
        sends = [
            await self.producer.send(
                self.topics.for_type(row.event_type),
                key=row.subject.encode(),
                value=row.payload.encode(),
                headers=[("ce_id", row.event_id.encode()), ("ce_type", row.event_type.encode())],
            )
            for row in rows
        ]
        await asyncio.gather(*sends)  # every one acknowledged before the position moves
        await self._save(RELAY_SOURCE, rows[-1].seq, conn)
        log.info("relayed", count=len(rows), last_seq=rows[-1].seq)
        return len(rows)

    async def relay_all(self, stop: asyncio.Event | None = None) -> int:
        """Relay until the outbox and the dead letters are drained (or `stop` is set);
        returns how many records were sent. Waits first while another relay holds the lock
        (until `stop`: WaitStopped)."""
        total = 0
        self._stop = stop
        while not (stop is not None and stop.is_set()) and (sent := await self.relay_batch()):
            total += sent
        return total

    async def relay_rest_if_holding(self) -> int:
        """What a stage leaving its shard or role relays on its way out: the rest, when this
        relay holds its lock; nothing otherwise. It never waits for the lock: the worker that
        took the stage over holds it and relays the rest, and waiting for it would hold up
        the leaving worker for as long as the other one runs."""
        if self._conn is None and self.repository.db.dialect.name == "postgresql":
            return 0
        return await self.relay_all()

    async def prune(self) -> None:
        """Delete what was sent and is older than its retention (logged, never fatal: the
        next period tries again)."""
        retention = self.retention
        try:
            pruned = await self.repository.prune(retention.outbox_retention, retention.dead_letter_retention)
        except (SQLAlchemyError, OSError) as error:
            log.warning("prune_failed", error=str(error).splitlines()[0] if str(error) else repr(error))
            return
        if pruned.outbox or pruned.dead_letters:
            log.info("pruned", outbox=pruned.outbox, dead_letters=pruned.dead_letters)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.2, wake: asyncio.Event | None = None) -> None:
        """Relay until `stop` is set, polling the outbox when it is drained (or, with `wake`,
        reading it again when `wake` is set, polling only every `idle_seconds`), and pruning
        every `prune_every_seconds`. While another relay holds the lock this one waits, as a
        standby, until it can take it or `stop`."""
        loop = asyncio.get_running_loop()
        dead_letters_due = 0.0
        every = self.retention.prune_every_seconds
        prune_due = loop.time() + every
        self._stop = stop
        try:
            while not stop.is_set():
                if wake is not None:
                    wake.clear()  # before reading: a write after this read sets it again
                sent = await self._guarded(self._relay_outbox)
                if loop.time() >= dead_letters_due:
                    sent += await self._guarded(self._relay_dead_letters)
                    dead_letters_due = loop.time() + DEAD_LETTER_POLL_SECONDS
                if every and loop.time() >= prune_due:
                    await self.prune()
                    prune_due = loop.time() + every
                if not sent:
                    await wait_either(stop, wake, idle_seconds)
        except locks.WaitStopped:
            log.info("relay_stopped_while_waiting_for_lock")


async def wait_either(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Until `stop` or `wake` is set, or `seconds` passed."""
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
