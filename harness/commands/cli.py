"""`kubesolo-harness` (also `python -m harness`): build images and measure
speed from the shell. Progress lines are the harness's log (harness.log),
printed to stdout; errors are one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from harness.artefact import FLAVOURS, Image
from harness.boottime import gate as boot_gate
from harness.build.builder import BuildRequest, build
from harness.build.kernel_audit import main_kernel_audit
from harness.build.ssh import inject_ssh
from harness.build.workload_images import build_workload_images
from harness.build.workload_recipes import REFS
from harness.commands.bench import main_bench
from harness.commands.boot_timeline import main_timeline
from harness.commands.release_check import main_release_check
from harness.commands.soak import main_soak
from harness.dev.command import add_arguments as add_dev_arguments
from harness.dev.command import main_dev
from harness.errors import UserError
from harness.log import ROOT
from harness.private import PRIVATE_UMASK
from harness.process import keep_grpc_out_of_forks


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the input (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="kubesolo-harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    b = sub.add_parser("build", help="build a KubeSolo OS image directory (cached)")
    b.add_argument("--flavour", choices=FLAVOURS, default="test")
    b.add_argument(
        "--kubesolo-bin",
        metavar="PATH",
        help="a kubesolo binary or release tarball (default: the stand-in)",
    )
    b.add_argument("--out", metavar="DIR", help="also put the image files in DIR")
    ssh = sub.add_parser(
        "inject-ssh", help="a copy of a test or dev image with SSH (dropbear, key-only)"
    )
    ssh.add_argument("image", metavar="IMAGE_DIR", help="a test image directory")
    ssh.add_argument("--key", metavar="PUBKEY", required=True, help="the public key to let in")
    ssh.add_argument("--out", metavar="DIR", required=True, help="where to write the new image")
    images = sub.add_parser(
        "images", help="build the workload images (nginx, busybox) as OCI archives (cached)"
    )
    images.add_argument("--out", metavar="DIR", required=True, help="where to put <name>.tar")
    soak = sub.add_parser(
        "soak", help="run the boot and persistence suites N times; per-test failure rates"
    )
    soak.add_argument("runs", type=positive_int, help="how many runs")
    soak.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        help="after --: pytest arguments (default: tests/boot tests/persistence)",
    )
    bench = sub.add_parser("bench", help="measure build, boot and test-shell speed on this host")
    bench.add_argument(
        "--runs", type=positive_int, default=3, help="boots per measure (default: 3)"
    )
    bench.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    bench.add_argument(
        "--no-peer", action="store_true", help="skip labgrid's column (its boots double the time)"
    )
    add_timeline(sub)
    add_dev_arguments(
        sub.add_parser("dev", help="an interactive KubeSolo OS VM: console, menu (Ctrl-]), --watch")
    )
    k = sub.add_parser(
        "kernel-audit",
        help="check the image's kernel configuration for what the node needs (exit 1: missing)",
    )
    k.add_argument("image", nargs="?", metavar="IMAGE", help="an image directory (default: build)")
    k.add_argument("--config", metavar="FILE", help="audit this kernel .config instead")
    k.add_argument("--json", metavar="FILE", help="also write the findings as JSON")
    r = sub.add_parser(
        "release-check",
        help="upgrade, release-image suite, firmware x medium matrix and boot-time gate: "
        "artifacts/release-report.html",
    )
    r.add_argument(
        "--previous",
        required=True,
        metavar="DIR_OR_GIT_REV",
        help="the previous release: its image directory or git revision",
    )
    r.add_argument("--baseline", metavar="FILE", help="a boot-time baseline (timeline --save)")
    r.add_argument("--boots", type=positive_int, default=5, help="boots for the gate (default: 5)")
    r.add_argument("--artifacts", default="artifacts", metavar="DIR")
    return p


def add_timeline(sub: Any) -> None:
    t = sub.add_parser(
        "timeline", help="boot N times: write a boot-time baseline, or check against one"
    )
    t.add_argument("--boots", type=positive_int, default=5, help="cold boots (default: 5)")
    t.add_argument("--save", metavar="FILE", help="write the medians as a baseline")
    t.add_argument("--compare", metavar="FILE", help="exit 1 when slower than this baseline")
    t.add_argument(
        "--clock", choices=(boot_gate.GUEST, boot_gate.WALL), default=boot_gate.GUEST,
        help="guest: the guest's own clock, counting instructions (the gate's); wall: "
        "when each stage reached the host, as in pytest's runs (default: guest)",
    )  # fmt: skip
    t.add_argument(
        "--threshold", type=float, help="share slower that fails (guest 0.03, wall 0.25)"
    )
    t.add_argument("--min-seconds", type=float, help="and seconds slower (guest 0.03, wall 0.5)")
    t.add_argument("--chart", metavar="SVG", default="boot-chart.svg", help="the median chart")
    t.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")


def show_progress() -> None:
    """The harness's INFO lines on stdout, as they come."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger(ROOT)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main_build(flavour: str, kubesolo_bin: str | None, out: str | None) -> int:
    """`kubesolo-harness build`: one line per step, one line on error."""
    request = BuildRequest(
        flavour=flavour,
        kubesolo_bin=Path(kubesolo_bin) if kubesolo_bin else None,
        out=Path(out) if out else None,
    )
    image = build(request)
    print(image.path)
    return 0


def main_inject_ssh(image: str, key: str, out: str) -> int:
    """`kubesolo-harness inject-ssh`: the new image directory's path."""
    print(inject_ssh(Image.open(Path(image)), Path(key), Path(out)).path)
    return 0


def main_images(out: str) -> int:
    """`kubesolo-harness images`: one line per archive, its path and references."""
    for name, archive in build_workload_images(Path(out)).items():
        print(archive, *REFS[name])
    return 0


def run_timeline(args: argparse.Namespace) -> int:
    if not (args.save or args.compare):
        raise UserError("say --save FILE, --compare FILE or both")
    return main_timeline(
        args.boots, args.accel, args.save, args.compare,
        args.threshold, args.min_seconds, args.chart, args.clock,
    )  # fmt: skip


def run_kernel_audit(args: argparse.Namespace) -> int:
    """The image named, or (without one or --config) the default image, built."""
    if args.config:
        return main_kernel_audit(None, Path(args.config), args.json)
    image = Image.open(Path(args.image)) if args.image else build(BuildRequest())
    return main_kernel_audit(image, None, args.json)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "build": lambda a: main_build(a.flavour, a.kubesolo_bin, a.out),
    "images": lambda a: main_images(a.out),
    "inject-ssh": lambda a: main_inject_ssh(a.image, a.key, a.out),
    "soak": lambda a: main_soak(a.runs, [x for x in a.pytest_args if x != "--"]),
    "release-check": lambda a: main_release_check(
        a.previous, a.baseline, a.boots, Path(a.artifacts)
    ),
    "timeline": run_timeline,
    "kernel-audit": run_kernel_audit,
    "dev": main_dev,
    "bench": lambda a: main_bench(a.runs, a.accel, a.json, peer=not a.no_peer),
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.umask(PRIVATE_UMASK)  # what it writes is ours alone (harness.private)
    keep_grpc_out_of_forks()  # for the QEMUs it forks (harness.process)
    show_progress()
    try:
        return COMMANDS[args.command](args)
    except (UserError, OSError) as err:
        print(f"kubesolo-harness {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
