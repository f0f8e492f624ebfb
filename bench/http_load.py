"""An open-loop HTTP/1.1 load generator on raw asyncio streams, light enough to share the
machine with the server it measures (bench/api_bench.py).

Request i is due at start + i / rate; it is written on a free keep-alive connection (a new
one is opened when none is free) and its latency is counted from when it was due, so a
server that falls behind shows it in the figures instead of slowing the sender down. Only
what the benchmark needs of HTTP: GET, a response with Content-Length."""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass, field


class HttpError(Exception):
    pass


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class Run:
    """What one steady run measured: latencies in ms, from when each request was due."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int | str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    connections: int = 0
    cpu_seconds: float = 0.0  # this process's CPU (user + system) over the run

    def summary(self) -> dict:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")

        return {"requests": len(ordered), "errors": self.errors, "statuses": self.statuses,
                "served_per_s": len(ordered) / self.elapsed if self.elapsed else 0.0,
                "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": ordered[-1] if ordered else None,
                "connections": self.connections, "generator_cpu_s": self.cpu_seconds}


async def _response(conn: Connection) -> int:
    head = await conn.reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise HttpError("a response without Content-Length")
    await conn.reader.readexactly(length)
    return status


class Client:
    """Keep-alive connections to one host:port, each carrying one request at a time, at
    most `limit` of them (a request finding none free waits for one, as a browser's or a
    proxy's would: the wait counts in its latency)."""

    def __init__(self, host: str, port: int, limit: int = 64) -> None:
        self.host, self.port = host, port
        self.free: list[Connection] = []
        self.opened = 0
        self.slots = asyncio.Semaphore(limit)

    async def get(self, path: str) -> int:
        async with self.slots:
            request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode()
            if self.free:
                # A kept connection the server closed meanwhile (its keep-alive timeout)
                # fails before any answer: the request goes again on a new one, as HTTP
                # clients do for a GET.
                conn = self.free.pop()
                try:
                    return await self._exchange(conn, request)
                except (ConnectionError, asyncio.IncompleteReadError) as error:
                    if getattr(error, "partial", b""):
                        raise
            return await self._exchange(await self._open(), request)

    async def _exchange(self, conn: Connection, request: bytes) -> int:
        try:
            conn.writer.write(request)
            status = await _response(conn)
        except BaseException:
            conn.writer.close()
            raise
        self.free.append(conn)
        return status

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        return Connection(reader, writer)

    async def close(self) -> None:
        for conn in self.free:
            conn.writer.close()
        self.free.clear()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def steady(client: Client, paths: list[str], rate: float, seconds: float) -> Run:
    """`rate * seconds` requests, open loop, cycling through `paths`."""
    count = int(rate * seconds)
    run = Run()
    opened, cpu = client.opened, _cpu()
    start = time.perf_counter() + 0.05
    tasks = []

    async def one(i: int, due: float) -> None:
        try:
            status = await client.get(paths[i % len(paths)])
        except (OSError, asyncio.IncompleteReadError, HttpError, ValueError) as error:
            run.errors += 1
            kind = type(error).__name__
            run.statuses[kind] = run.statuses.get(kind, 0) + 1
            return
        run.latencies.append((time.perf_counter() - due) * 1000)
        run.statuses[status] = run.statuses.get(status, 0) + 1
        if status != 200:
            run.errors += 1

    for i in range(count):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    run.elapsed = time.perf_counter() - start
    run.connections = client.opened - opened
    run.cpu_seconds = _cpu() - cpu
    return run
