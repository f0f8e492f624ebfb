"""Small inline SVG charts for a SKU's page, like Odoo's forecasted report: its supply
against the demand of its queue, line after line in priority order, and the supply on its
way by expected date. Plain SVG, no script; every text is escaped."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 560, 180, 34


def _scale(values: list[int]) -> int:
    return max([1, *values])


def supply_vs_demand(pool: dict) -> str:
    """Cumulative demand of the queue (a step per line: allocated part green, backordered
    part red) against the pool's supply (a line)."""
    queue = pool.get("queue") or []
    supply = int(pool.get("supply") or 0)
    total = sum(int(line["qty"]) for line in queue)
    top = _scale([supply, total])
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    y = lambda units: PAD + inner_h - inner_h * units / top  # noqa: E731
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>supply {supply} against the demand of '
             f'{len(queue)} queued lines ({total} units)</title>']
    parts.append(f'<line x1="{PAD}" y1="{PAD + inner_h}" x2="{WIDTH - PAD}" y2="{PAD + inner_h}" stroke="#888"/>')
    step = inner_w / max(1, len(queue))
    cumulative = 0
    for index, line in enumerate(queue):
        qty, allocated = int(line["qty"]), int(line.get("allocated") or 0)
        x = PAD + index * step
        base = cumulative
        cumulative += qty
        label = escape(f"#{line['place']} {line['order_id']} / {line['line_id']}: {qty} wanted, "
                       f"{allocated} allocated, {line.get('backorder', 0)} backordered")
        if allocated:
            parts.append(f'<rect class="allocated" x="{x:.1f}" y="{y(base + allocated):.1f}" width="{max(step - 1, 1):.1f}" '
                         f'height="{y(base) - y(base + allocated):.1f}" fill="#3a8d4f"><title>{label}</title></rect>')
        if qty - allocated:
            parts.append(f'<rect class="short" x="{x:.1f}" y="{y(cumulative):.1f}" width="{max(step - 1, 1):.1f}" '
                         f'height="{y(base + allocated) - y(cumulative):.1f}" fill="#c0392b"><title>{label}</title></rect>')
    parts.append(f'<line class="supply" x1="{PAD}" y1="{y(supply):.1f}" x2="{WIDTH - PAD}" y2="{y(supply):.1f}" '
                 f'stroke="#1f5fa8" stroke-width="2" stroke-dasharray="6 3"/>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{max(y(supply) - 4, 10):.1f}" text-anchor="end" font-size="11" '
                 f'fill="#1f5fa8">supply {supply}</text>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11">queue order →  demand {total}</text>')
    parts.append("</svg>")
    return "".join(parts)


def incoming_by_date(arrivals: list[dict], backordered: int) -> str:
    """Open supply per expected date (bars) and its running total (a line), against the
    units backordered now (a dashed line)."""
    dated: dict[str, int] = {}
    for arrival in arrivals:
        key = arrival.get("date") or "undated"
        dated[key] = dated.get(key, 0) + int(arrival["qty"])
    days = sorted(d for d in dated if d != "undated") + (["undated"] if "undated" in dated else [])
    running, points = 0, []
    for d in days:
        running += dated[d]
        points.append(running)
    top = _scale([*points, backordered])
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    y = lambda units: PAD + inner_h - inner_h * units / top  # noqa: E731
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{running} units on their way over {len(days)} dates, '
             f'{backordered} backordered</title>']
    parts.append(f'<line x1="{PAD}" y1="{PAD + inner_h}" x2="{WIDTH - PAD}" y2="{PAD + inner_h}" stroke="#888"/>')
    step = inner_w / max(1, len(days))
    path = []
    for index, d in enumerate(days):
        x = PAD + index * step
        parts.append(f'<rect class="arrival" x="{x + 2:.1f}" y="{y(dated[d]):.1f}" width="{max(step - 4, 1):.1f}" '
                     f'height="{PAD + inner_h - y(dated[d]):.1f}" fill="#7fa7d9"><title>{escape(d)}: {dated[d]} '
                     f'units</title></rect>')
        if len(days) <= 12:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 20}" font-size="9" text-anchor="middle">'
                         f'{escape(d[5:] if d != "undated" else d)}</text>')
        path.append(f"{x + step / 2:.1f},{y(points[index]):.1f}")
    if path:
        parts.append(f'<polyline class="running" points="{" ".join(path)}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
    parts.append(f'<line x1="{PAD}" y1="{y(backordered):.1f}" x2="{WIDTH - PAD}" y2="{y(backordered):.1f}" '
                 f'stroke="#c0392b" stroke-dasharray="6 3"/>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{max(y(backordered) - 4, 10):.1f}" text-anchor="end" font-size="11" '
                 f'fill="#c0392b">backordered {backordered}</text>')
    parts.append("</svg>")
    return "".join(parts)
