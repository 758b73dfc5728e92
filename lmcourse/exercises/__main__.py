"""Command line: `python -m lmcourse.exercises student SRC OUT` | `selftest SRC` | `list` | `progress`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmcourse.exercises import REGISTRY, load_all, progress
from lmcourse.exercises.notebooks import write_student_copies
from lmcourse.exercises.selftest import selftest_all


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcourse.exercises", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="write student copies with the solutions removed")
    student.add_argument("chapters", type=Path)
    student.add_argument("out", type=Path)
    selftest = commands.add_parser("selftest", help="prove every checker passes the reference and fails stubs and wrong answers")
    selftest.add_argument("chapters", type=Path)
    commands.add_parser("list", help="list the exercises")
    commands.add_parser("progress", help="show the exercises passed, failed and not tried, per chapter")
    args = parser.parse_args(argv)

    if args.command == "student":
        for path in write_student_copies(args.chapters, args.out):
            print(f"wrote {path}")
        return 0
    if args.command == "progress":
        shown = progress()
        print(shown)
        return 1 if shown.problem else 0
    if args.command == "list":
        load_all()
        for name in sorted(REGISTRY):
            print(name)
        return 0
    results = selftest_all(args.chapters)
    width = max((len(r.exercise) for r in results), default=10)
    print(f"{'exercise':<{width}}  reference passes  stub fails  wrong answers caught")
    for r in results:
        if r.summary:
            print(f"{r.exercise:<{width}}  {r.summary}")
            for problem in r.problems:
                print("    " + problem)
            continue
        caught = f"{r.wrong_answers_caught} of {r.wrong_answers}"
        print(f"{r.exercise:<{width}}  {_yes(r.reference_passes):<16}  {_yes(r.stub_fails):<10}  {caught}")
        for problem in r.problems:
            print("    " + problem.replace("\n", "\n    "))
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
