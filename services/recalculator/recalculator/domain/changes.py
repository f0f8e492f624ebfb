"""What the engine hands to persistence: the keys of the state rows an event changed."""

from __future__ import annotations


class Changes:
    """Keys of state rows changed since the last `take_changes()`, for persistence."""

    __slots__ = (
        "clock",
        "forget_before",
        "held",
        "incoming",
        "orders",
        "positions",
        "processed",
        "products",
        "settings",
        "skus",
        "stock",
        "waiting",
        "warehouses",
    )

    def __init__(self) -> None:
        self.orders: set[str] = set()
        self.stock: set[tuple[str, str]] = set()
        self.incoming: set[str] = set()  # SKUs whose supply on its way changed
        self.warehouses: set[str] = set()
        self.products: set[str] = set()
        self.skus: set[str] = set()  # SKUs whose published total changed
        self.positions: set[str] = set()  # SKUs whose published position changed
        self.settings = False
        self.held = False  # the values held back while the workflow is disabled changed
        self.waiting = False  # the manual actions waiting for their orders changed
        self.clock = False  # last_time moved
        # ((source, event id), applied at) of the events applied
        self.processed: list[tuple[tuple[str, str], int]] = []
        # ids applied before this business time were forgotten (the dedupe window)
        self.forget_before: int | None = None
