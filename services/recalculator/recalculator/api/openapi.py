"""Write the API's OpenAPI document to services/recalculator/openapi.json (`make schemas`).

    python -m recalculator.api.openapi            # (re)write the file
    python -m recalculator.api.openapi --check    # exit 1 when it is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .app import create_app
from .operations import DownstreamReaders
from .wiring import Services

TARGET = Path(__file__).resolve().parents[2] / "openapi.json"


def render() -> str:
    # No connection is opened to describe the routes; the routes over the other services'
    # stores are described too (present when `serve` is given their databases).
    async def absent(*_args):
        return []

    readers = DownstreamReaders(notifier_failures=absent, notifier_resend=absent, channel_failures=absent)
    app = create_app("sqlite+aiosqlite://", services=Services(readers=readers))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run `make schemas`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
