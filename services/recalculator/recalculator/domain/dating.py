"""Expected dates of the waiting lines, kept by the roles that allocate (`Engine`, a SKU
shard) over the SKUs' schedules (`schedule.py`; docs/behaviour.md, "Expected date per line").

During an event the lines whose published backorder, pool or priority changed, and the
SKUs whose incoming supply changed, are only noted; once the event's recalculation is done
(`_update_dates`) each noted line is put in, moved in or taken out of its SKU's schedule,
and each SKU touched is cut by its arrivals again. With `publish_expected_date_changes`,
the orders of lines whose date now differs from the one last published for them are
touched, so that they are published.
"""

from __future__ import annotations

from .incoming import arrivals
from .model import Line
from .schedule import Schedule


class ExpectedDates:
    def _init_dates(self) -> None:
        self.schedules: dict[str, Schedule] = {}
        self._dated_lines: set[Line] = set()
        self._dated_skus: set[str] = set()

    def _dates_line(self, line: Line) -> None:
        self._dated_lines.add(line)

    def _supply_changed(self, skus) -> None:
        self._dated_skus.update(skus)

    def expected_date(self, line: Line) -> int | None:
        """The line's expected date (µs), None when it does not wait or nothing covers it."""
        waiting = line.waiting
        if waiting is None:
            return None
        return self.schedules[waiting[0]].date_of(waiting[1])

    def _update_dates(self) -> None:
        lines, skus = self._dated_lines, self._dated_skus
        if not lines and not skus:
            return
        self._dated_lines, self._dated_skus = set(), set()
        schedules = self.schedules
        for line in lines:
            wanted = (
                (line.sku, line.key, line.published)
                if line.live and line.pool is not None and line.published > 0 else None
            )
            waiting = line.waiting
            if wanted == waiting:
                continue
            if waiting is not None:
                schedule = schedules.get(waiting[0])
                if schedule is not None:  # a SKU handed to another shard took its schedule
                    schedule.remove(waiting[1])
                skus.add(waiting[0])
            if wanted is not None:
                schedule = schedules.get(line.sku)
                if schedule is None:
                    schedule = schedules[line.sku] = Schedule()
                schedule.add(line.key, line.published, line)
                skus.add(line.sku)
            line.waiting = wanted
        publish = self._follows_date_moves()
        containers = self.settings.use_shipping_containers_for_po
        for sku in skus:
            schedule = schedules.get(sku)
            if schedule is None:
                continue
            if not schedule.lines:
                del schedules[sku]
                continue
            starts, dates = schedule.starts, schedule.dates
            schedule.segment(arrivals(self.incoming.get(sku), containers))
            if publish:
                for key in schedule.changed_between(starts, dates):
                    self._date_moved(schedule.lines[key])
        if publish:
            for line in lines:
                self._date_moved(line)

    def _follows_date_moves(self) -> bool:
        """Whether orders whose dates moved are touched (and so published)."""
        return self.settings.publish_expected_date_changes

    def _date_moved(self, line: Line) -> None:
        if line.live and self.expected_date(line) != line.published_date:
            self._touch(line.order)

    def _reset_dates(self) -> None:
        """Every schedule again from the lines and the supply (after pools were rebuilt)."""
        self.schedules.clear()
        for order in self.orders.values():
            for line in order.lines.values():
                line.waiting = None
                self._dated_lines.add(line)
        self._dated_skus.update(self.incoming)
        self._update_dates()
