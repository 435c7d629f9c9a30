"""`kubesolo-harness` (also `python -m harness`): build images from the shell."""

from __future__ import annotations

import argparse
import sys

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "build":
        return main_build(args.flavour, args.kubesolo_bin, args.out)
    return 2


if __name__ == "__main__":
    sys.exit(main())
