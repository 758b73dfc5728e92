"""``python -m lmcourse.diagrams OUTDIR``: write every diagram of the book to OUTDIR as SVG."""

from __future__ import annotations

import sys

from lmcourse.diagrams import write_all


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lmcourse.diagrams OUTDIR   (the book's are in chapters/figures)", file=sys.stderr)
        return 2
    for path in write_all(argv[0]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
