"""The initramfs tree, put together from its parts (docs/boot-flow.md): the
base directories and device nodes, the packages' files, busybox's applet
links, the OS's own files (build/rootfs), KubeSolo (or the stand-in) and the
kernel modules the boot and stage 30 load."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from harness import guest
from harness.build import cpio, kmod
from harness.build.kubesolo_bin import KubeSoloBinary, binary_version
from harness.log import logger
from harness.tools import run_tool

HARNESS = Path(__file__).resolve().parent.parent
REPO = HARNESS.parent
BUILD_DIR = REPO / "build"
KUBESOLO_IN_IMAGE = guest.KUBESOLO_IN_IMAGE.lstrip("/")
BASE_DIRS = [
    "bin",
    "sbin",
    "etc",
    "root",
    "proc",
    "sys",
    "dev",
    "tmp",
    "run",
    "mnt",
    "mnt/data",
    "opt",
    "usr/bin",
    "usr/sbin",
    "usr/local",
    "var/lib",
    "var/log",
    "var/lib/kubesolo",
    "var/lib/containerd",
    "etc/kubesolo",
    "etc/containerd",
    "lib",
    "lib64",
    "usr/lib/kubesolo-os/bin",
]
DEVICE_NODES = (("dev/console", 5, 1, 0o600), ("dev/null", 1, 3, 0o666))
log = logger("build")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob where ** crosses directories and * does not."""
    out = ""
    for part in re.split(r"(\*\*|\*|\?)", pattern):
        out += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(out + r"\Z")


def words(text: str) -> list[str]:
    """Whitespace-separated words of a list file, # comments removed."""
    return [w for line in text.splitlines() for w in line.split("#", 1)[0].split()]


class Rootfs:
    """The initramfs tree as cpio entries; parents are created on demand."""

    def __init__(self) -> None:
        self.entries: dict[str, cpio.Entry] = {}

    def add(self, entry: cpio.Entry) -> None:
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                self.entries[parent] = cpio.Entry.directory(parent)
        self.entries[entry.path] = entry

    def add_path(self, rel: str, path: Path) -> None:
        if path.is_symlink():
            self.add(cpio.Entry.symlink(rel, os.readlink(path)))
        elif path.is_dir():
            self.add(cpio.Entry.directory(rel, stat.S_IMODE(path.stat().st_mode)))
        else:
            perm = 0o755 if os.access(path, os.X_OK) else 0o644
            self.add(cpio.Entry.file(rel, path.read_bytes(), perm))

    def add_tree(self, root: Path, prefix: str = "") -> None:
        for path in sorted(root.rglob("*")):
            self.add_path(prefix + path.relative_to(root).as_posix(), path)

    def __contains__(self, rel: str) -> bool:
        return rel in self.entries

    def archive(self) -> bytes:
        return cpio.archive(self.entries[k] for k in sorted(self.entries))


def add_os_tree(rootfs: Rootfs, build_dir: Path = BUILD_DIR) -> None:
    """The OS's own files, laid over the packages' (build/rootfs); the test
    flavour's layer goes over everything (harness.build.test_layer). The dev
    VM's fast rebuild lays them again over a built image."""
    rootfs.add_tree(build_dir / "rootfs")


def add_base_tree(rootfs: Rootfs) -> None:
    """The directories every image has, and the device nodes init needs before devtmpfs."""
    for d in BASE_DIRS:
        rootfs.add(cpio.Entry.directory(d))
    rootfs.add(cpio.Entry.directory("tmp", 0o1777))
    rootfs.add(cpio.Entry.directory("root", 0o700))
    for path, major, minor, perm in DEVICE_NODES:
        rootfs.add(cpio.Entry.char_device(path, major, minor, perm))


def take_files(rootfs: Rootfs, root: Path, patterns: tuple[str, ...]) -> None:
    regexes = [glob_regex(p) for p in patterns]
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() and not path.is_symlink():
            continue
        if any(r.match(rel) for r in regexes):
            rootfs.add_path(rel, path)


# Applets that stage 00 links itself (docs/boot-flow.md "Stage 00 — Early
# Mount"): without /sbin/modprobe the kernel's own requests before /init (its
# built-in crypto templates) fail at once instead of each running busybox.
LINKED_BY_STAGE_00 = frozenset({"sbin/modprobe"})


def add_busybox_links(rootfs: Rootfs, busybox: Path) -> None:
    """/bin/busybox and a link for every applet where busybox installs it,
    but those stage 00 links."""
    rootfs.add(cpio.Entry.file("bin/busybox", busybox.read_bytes(), 0o755))
    for applet in run_tool([str(busybox), "--list-full"]).split():
        if applet not in rootfs and applet not in LINKED_BY_STAGE_00 | {"bin/busybox"}:
            rootfs.add(cpio.Entry.symlink(applet, "/bin/busybox"))


def add_kubesolo(
    rootfs: Rootfs, kubesolo: KubeSoloBinary | None, standin: bool, work: Path
) -> tuple[str, str | None]:
    """The image's KubeSolo at KUBESOLO_IN_IMAGE (stage 20 links it into
    /usr/local/bin): the real one, else the stand-in if `standin` (the test
    flavour, or a release check's request)."""
    if kubesolo:
        probe = work / "kubesolo"
        probe.write_bytes(kubesolo.data)
        probe.chmod(0o755)
        version = kubesolo.version or binary_version(probe)
        rootfs.add(cpio.Entry.file(KUBESOLO_IN_IMAGE, kubesolo.data, 0o755))
        return "real", version
    if standin:
        rootfs.add_path(KUBESOLO_IN_IMAGE, BUILD_DIR / "standin" / "kubesolo")
        return "standin", None
    return "none", None


def add_modules(rootfs: Rootfs, kernel_root: Path, version: str) -> list[str]:
    moddir = kernel_root / "lib/modules" / version
    available = kmod.scan_modules(moddir)
    builtin_file = moddir / "modules.builtin"
    builtin = builtin_file.read_text().split() if builtin_file.exists() else []
    boot = words((BUILD_DIR / "boot-modules.list").read_text())
    stage30 = words((BUILD_DIR / "rootfs/usr/lib/kubesolo-os/modules.list").read_text())
    needed, missing = kmod.closure(boot + stage30, available, builtin)
    if missing:
        log.info(f"[build] modules neither in the package nor built in: {', '.join(missing)}")
    prefix = f"lib/modules/{version}/"
    for name in needed:
        rootfs.add_path(prefix + available[name].path, moddir / available[name].path)
    rootfs.add(
        cpio.Entry.file(prefix + "modules.dep", kmod.modules_dep(needed, available).encode())
    )
    rootfs.add(
        cpio.Entry.file(prefix + "modules.alias", kmod.modules_alias(needed, available).encode())
    )
    rootfs.add(cpio.Entry.file(prefix + "modules.builtin", "\n".join(builtin).encode() + b"\n"))
    rootfs.add(
        cpio.Entry.file("usr/lib/kubesolo-os/boot-modules.list", (" ".join(boot) + "\n").encode())
    )
    return needed
