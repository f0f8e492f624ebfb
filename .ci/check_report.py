"""Fail CI when the integration or end-to-end tests did not run: a green pytest that
skipped or never collected them proves nothing about the runtime."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

REQUIRED = ("tests.integration.", "tests.e2e.")


def main(path: str) -> int:
    root = ET.parse(path).getroot()
    ran = {prefix: 0 for prefix in REQUIRED}
    skipped = {prefix: 0 for prefix in REQUIRED}
    for case in root.iter("testcase"):
        name = case.get("classname", "")
        for prefix in REQUIRED:
            if name.startswith(prefix):
                if case.find("skipped") is not None:
                    skipped[prefix] += 1
                else:
                    ran[prefix] += 1
    ok = True
    for prefix in REQUIRED:
        print(f"{prefix.rstrip('.')}: {ran[prefix]} ran, {skipped[prefix]} skipped")
        if ran[prefix] == 0 or skipped[prefix]:
            ok = False
    if not ok:
        print("integration or end-to-end tests did not all run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "var/test-report.xml"))
