"""Record the golden artifacts: `python -m tests.golden.write [case ...]` (all by default)."""

from __future__ import annotations

import json
import sys

from tests.golden import cases, path, record


def main(names: list[str]) -> None:
    known = cases()
    for name in names or sorted(known):
        text = json.dumps(record(known[name]()), indent=1, sort_keys=True) + "\n"
        path(name).write_text(text, encoding="utf-8")
        print(f"wrote {path(name)}")


if __name__ == "__main__":
    main(sys.argv[1:])
