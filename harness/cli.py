"""`kubesolo-harness` (also `python -m harness`): build images from the shell."""

from __future__ import annotations

import argparse
import sys

from harness.bench import main_bench
from harness.image import FLAVOURS, main_build


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubesolo-harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a KubeSolo OS image directory (cached)")
    b.add_argument("--flavour", choices=FLAVOURS, default="test")
    b.add_argument(
        "--kubesolo-bin",
        metavar="PATH",
        help="a kubesolo binary or release tarball (default: the stand-in)",
    )
    b.add_argument("--out", metavar="DIR", help="also put the image files in DIR")
    bench = sub.add_parser("bench", help="measure build, boot and test-shell speed on this host")
    bench.add_argument("--runs", type=int, default=3, help="boots per measure (default: 3)")
    bench.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "build":
        return main_build(args.flavour, args.kubesolo_bin, args.out)
    return main_bench(args.runs, args.accel, args.json)


if __name__ == "__main__":
    sys.exit(main())
