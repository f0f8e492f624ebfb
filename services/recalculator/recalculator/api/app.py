"""The read-only HTTP API over the recalculator's state (`backorders serve`, docs/api.md).

Every request reads the state tables the runtimes write, embedded SQLite or PostgreSQL:
searches are queries over the searchable columns (adapters/search.py, the same as
`backorders search`); one order and one SKU are answered from an engine loaded from the
state in one snapshot (`Repository.load`, as `backorders explain` does). That engine is
kept between requests only as long as the state's version (changed by every batch written)
is the one it was loaded at, so an answer is always the state as it is."""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Annotated, Literal

from backorder_events.limits import LATEST_TIME, MAX_ID_LENGTH, MAX_SKU_LENGTH
from backorders_platform.database import make_engine
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from ..adapters import tables as t
from ..adapters.repository import VERSION_KEY, Repository
from ..adapters.search import ORDER_FILTERS, ORDER_SORTS, PRODUCT_SORTS, OrderFilter
from ..adapters.search import order_count, order_query, product_count, product_query
from ..domain.engine import Engine
from ..domain.model import to_us
from . import models
from .reads import StateReads
from .views import QueueSums, iso, order_view, sku_view
from .wiring import Services, register_extensions

TITLE = "backorders API"
VERSION = "1"
MAX_PAGE = 500
MAX_QUEUE = 10_000
API_CONNECTIONS = 8  # kept per server process on PostgreSQL (as many again for a while)
MAX_TOTALS = 10_000  # totals kept per state version (then counted again)
MAX_QTY = 2**62  # fits a 64-bit column: larger bounds are refused, not sent to the database
# Identifiers: the contract's lengths, and no control character (PostgreSQL text cannot hold NUL).
IDENTIFIER = r"^[^\x00-\x1f\x7f]+$"

Identifier = Annotated[str, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=IDENTIFIER)]
Sku = Annotated[str, Query(min_length=1, max_length=MAX_SKU_LENGTH, pattern=IDENTIFIER)]
Moment = Annotated[str, Query(max_length=40, description="ISO 8601 date or date-time (UTC when no offset)",
                              examples=["2025-05-01", "2025-05-01T12:00:00Z"])]
BackorderFilter = Literal[tuple(sorted(ORDER_FILTERS))]  # type: ignore[valid-type]


PROBLEMS = {422: {"model": models.Problem, "description": "invalid parameters"},
            503: {"model": models.Problem, "description": "the database does not answer"}}


def _sort_choices(columns) -> list[str]:
    return [*columns, *(f"-{c}" for c in columns)]


OrderSort = Literal[tuple(_sort_choices(ORDER_SORTS))]  # type: ignore[valid-type]
ProductSort = Literal[tuple(_sort_choices(PRODUCT_SORTS))]  # type: ignore[valid-type]


def _moment(name: str, value: str | None, end_of_day: bool) -> int | None:
    """µs of an ISO date or date-time; a plain date is the start of that day (UTC), or with
    `end_of_day` its last microsecond."""
    if value is None:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
            if end_of_day:
                moment += timedelta(days=1, microseconds=-1)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise HTTPException(422, f"{name}: {value!r} is not an ISO 8601 date or date-time") from None
    if not datetime(1, 1, 2, tzinfo=UTC) <= moment < LATEST_TIME:
        raise HTTPException(422, f"{name}: {value!r} is out of range (before {LATEST_TIME.year})")
    return to_us(moment)


def _problem_text(error: dict) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "path"))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


def create_app(url: str, schema: str | None = None, *, services: Services | None = None) -> FastAPI:
    """The API over the state at `url` (`schema`: its PostgreSQL schema). Opens no connection
    until a request comes; the caller brings the schema up to date first
    (`Repository.create_schema`, as `backorders serve` does). `services`: the token, the
    input log actions are published to, and the readers of the operations routes
    (wiring.py); none given: reads only, actions disabled."""
    services = services or Services()
    # PostgreSQL: enough connections kept for bursts of requests (a connection opened for
    # a burst and closed after it costs the requests waiting for it milliseconds).
    db = make_engine(url, schema, pool_size=API_CONNECTIONS)
    repository = Repository(db, schema)
    reads = StateReads(db)
    dialect = db.dialect.name
    registry = CollectorRegistry()
    requests = Counter("backorders_api_requests", "HTTP requests answered, by route and status",
                       ["method", "route", "status"], registry=registry)
    latency = Histogram("backorders_api_request_seconds", "time to answer a request, by route",
                        ["route"], registry=registry,
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    async def lifespan(_app):
        await services.start()
        yield
        await services.close()
        reads.dispose()
        await db.dispose()

    app = FastAPI(title=TITLE, version=VERSION, lifespan=lifespan, dependencies=[Depends(services.guard.reader)],
                  description=(
        "The backorder service's state: the seed's order and product searches, one order with "
        "its explanation, one SKU's position and queue; the Manage Orders actions, published "
        "to the input log; operations (lag, outbox, dead letters); the web console at /console."))
    app.state.db = db
    app.state.reads = reads

    app.add_middleware(Measured, requests=requests, latency=latency)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError):
        problems = [_problem_text(e) for e in error.errors()]
        return JSONResponse({"detail": "; ".join(problems), "errors": jsonable_errors(error)}, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def unavailable(_request: Request, _error: Exception):
        return JSONResponse({"detail": "the database is not answering; try again"}, status_code=503)

    # The engine loaded at the state's version: a request finding the same version uses it,
    # one finding another loads the state again (in one snapshot, which gives its version);
    # one load at a time, the requests arriving meanwhile using what it loaded.
    loaded: dict[str, object] = {}
    loading = asyncio.Lock()
    version_query = select(t.meta.c.value).where(t.meta.c.key == VERSION_KEY)

    def read_version(conn) -> str | None:
        return conn.execute(version_query).scalar()

    async def load() -> Engine:
        version = await reads.read(read_version)
        if version is not None and loaded.get("version") == version:
            return loaded["engine"]
        async with loading:
            if version is not None and loaded.get("version") == version:
                return loaded["engine"]
            engine = Engine()
            version = await repository.load(engine)
            loaded.update(version=version, engine=engine, sums=QueueSums(), loads=loaded.get("loads", 0) + 1)
            _out_of_collections()
            return engine

    app.state.loaded = loaded

    # Totals counted at the state's version, by search: the same search finds its total
    # here until the next batch is written (a total counts every match: milliseconds on a
    # large state, more than the page itself). Reads run on several threads (SQLite): the
    # version is part of the key, so a total is only ever given for the snapshot it counted.
    totals: dict[tuple[str, object], int] = {}
    totals_lock = threading.Lock()

    def total_of(conn, version: str | None, search, count) -> int:
        if version is None:  # a state written before versions existed
            return conn.execute(count).scalar_one()
        with totals_lock:
            total = totals.get((version, search))
        if total is None:
            total = conn.execute(count).scalar_one()
            with totals_lock:
                if len(totals) >= MAX_TOTALS or any(kept != version for kept, _ in islice(totals, 1)):
                    totals.clear()
                totals[(version, search)] = total
        return total

    async def page(query, count, search) -> tuple[list[dict], int]:
        """A page and the total over every page, in one snapshot."""
        def work(conn):
            version = read_version(conn)
            result = conn.execute(query)
            keys = list(result.keys())
            items = [dict(zip(keys, row)) for row in result]
            return items, total_of(conn, version, search, count)
        return await reads.read(work)

    register_extensions(app, db, services)

    @app.get("/orders", response_model=models.OrderPage, responses=PROBLEMS, tags=["orders"],
             summary="Search orders by published backorder status, company, SKU and order date")
    async def search_orders(
        backorder: Annotated[BackorderFilter | None, Query(
            description="full (Full), partial (Partial), full-or-partial, none (Not BackOrder), "
            "not-full (Not Full BackOrder: Partial or None)")] = None,
        company_id: Identifier | None = None,
        sku: Sku | None = None,
        placed_from: Moment | None = None,
        placed_to: Annotated[str | None, Query(max_length=40, description="inclusive; a plain date means its whole day")] = None,
        sort: Annotated[OrderSort, Query(description="a column, `-` first for descending")] = "order_date",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_QTY)] = 0,
    ):
        start, end = _moment("placed_from", placed_from, False), _moment("placed_to", placed_to, True)
        found = OrderFilter(backorder, company_id, sku, start, end)
        column, descending = sort.lstrip("-"), sort.startswith("-")
        items, total = await page(order_query(dialect, found, column, descending, limit, offset),
                                  order_count(dialect, found), found)
        for item in items:
            item["order_date"] = iso(item["order_date"])
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    @app.get("/orders/{order_id}", response_model=models.OrderDetail, tags=["orders"],
             summary="One order: its lines, published backorders, expected dates and why",
             responses={**PROBLEMS, 404: {"model": models.Problem, "description": "no such order in the state"}})
    async def get_order(order_id: Annotated[str, Path(max_length=MAX_ID_LENGTH, pattern=IDENTIFIER)]):
        engine = await load()
        view = order_view(engine, order_id, loaded["sums"])
        if view is None:
            raise HTTPException(404, f"unknown order {order_id!r}")
        return view

    @app.get("/products", response_model=models.ProductPage, responses=PROBLEMS, tags=["products"],
             summary="Search SKUs by total published backorder quantity")
    async def search_products(
        backorder_from: Annotated[int, Query(ge=0, le=MAX_QTY)] = 1,
        backorder_to: Annotated[int | None, Query(ge=0, le=MAX_QTY, description="no upper bound when absent")] = None,
        sort: Annotated[ProductSort, Query(description="a column, `-` first for descending")] = "-backorder_qty",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_QTY)] = 0,
    ):
        if backorder_to is not None and backorder_to < backorder_from:
            raise HTTPException(422, f"backorder_to ({backorder_to}) is below backorder_from ({backorder_from})")
        column, descending = sort.lstrip("-"), sort.startswith("-")
        items, total = await page(product_query(backorder_from, backorder_to, column, descending, limit, offset),
                                  product_count(backorder_from, backorder_to),
                                  ("products", backorder_from, backorder_to))
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    @app.get("/skus/{sku}", response_model=models.SkuPosition, tags=["products"],
             summary="One SKU's position: stock, available, backordered, on order, and its queue",
             responses={**PROBLEMS, 404: {"model": models.Problem, "description": "the state knows nothing of this SKU"}})
    async def get_sku(
        sku: Annotated[str, Path(max_length=MAX_SKU_LENGTH, pattern=IDENTIFIER)],
        queue_limit: Annotated[int, Query(ge=0, le=MAX_QUEUE)] = 100,
    ):
        view = sku_view(await load(), sku, queue_limit)
        if view is None:
            raise HTTPException(404, f"unknown SKU {sku!r}")
        return view

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _out_of_collections() -> None:
    """Move every object alive now (the engine just loaded) out of the cyclic collector's
    reach, after collecting the engine it replaced. The engine of the large day is 290,000
    objects that every full collection would walk, about 170 ms during which no request
    is answered; frozen, a full collection walks only what requests leave behind."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Measured:
    """Counts and times every request by route (a plain ASGI middleware: Starlette's
    `BaseHTTPMiddleware` ran each request in a task group of its own, about a tenth of a
    millisecond each)."""

    def __init__(self, app, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "(unmatched)")
            self.requests.labels(scope["method"], route, str(status[0])).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)


def jsonable_errors(error: RequestValidationError) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in error.errors()]
