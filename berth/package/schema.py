"""The package schema, generated from the code: ``python -m berth.package.schema --write`` writes
``plugin/schema.json`` (checked in; ``tests/unit/test_package.py`` fails when it differs), without
``--write`` it prints it."""

from __future__ import annotations

import sys

from berth.package import PLUGIN_DIR
from berth.package.provider import schema_text

SCHEMA = PLUGIN_DIR / "schema.json"


def main(argv: list[str]) -> int:
    text = schema_text()
    if "--write" in argv:
        SCHEMA.write_text(text)
        print(f"wrote {SCHEMA} ({len(text)} bytes)")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
