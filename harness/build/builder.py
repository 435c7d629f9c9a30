"""The image builder: build/ + Debian packages (+ a KubeSolo binary) -> an
image directory with vmlinuz, initramfs, kubesolo-os.iso, data.qcow2 and
manifest.json, cached under the hash of every input and built once under a
file lock (pytest-xdist workers share it). The root file system is put
together by harness.build.rootfs, the media by harness.build.media."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.artefact import FLAVOURS, IMAGE_FILES, Image, cache_root, file_digest, sha256_file
from harness.build import cpio, debian, prune
from harness.build.disk_image import guid
from harness.build.kubesolo_bin import KubeSoloBinary
from harness.build.kubesolo_bin import load as load_kubesolo
from harness.build.media import make_media
from harness.build.rootfs import (
    BUILD_DIR,
    HARNESS,
    Rootfs,
    add_base_tree,
    add_busybox_links,
    add_kubesolo,
    add_modules,
    add_os_tree,
    take_files,
)
from harness.build.test_layer import add_test_layer
from harness.build.tree import tree_digest
from harness.disk import copy_sparse, ext4_qcow2
from harness.errors import UserError
from harness.log import logger
from harness.log import step as log_step

DATA_DISK_SIZE = "8G"
log = logger("build")


def cache_key(inputs: dict) -> str:
    """The hash of every input: equal inputs share one cached image."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]


# ---- the build ----------------------------------------------------------------


@dataclass(frozen=True)
class BuildRequest:
    flavour: str = "test"
    kubesolo_bin: Path | None = None
    out: Path | None = None
    # a release image with the stand-in as its KubeSolo: the release checks
    # where the real binary cannot be had (the test flavour always has it)
    standin: bool = False


@contextmanager
def step(name: str) -> Iterator[None]:
    """A build step, logged with its duration (harness.log)."""
    with log_step(log, f"[build] {name}"):
        yield


def builder_digest() -> dict[str, str]:
    """The builder's code: the whole harness.build package and the shared modules
    beneath it (every harness/*.py), so no file the build runs can be left out."""
    return {
        **{f"build/{k}": v for k, v in tree_digest(HARNESS / "build").items() if k.endswith(".py")},
        **{p.name: sha256_file(p) for p in sorted(HARNESS.glob("*.py"))},
    }


def build_inputs(
    request: BuildRequest, packages: list[debian.ResolvedPackage], kubesolo: KubeSoloBinary | None
) -> dict:
    return {
        "flavour": request.flavour,
        "standin": request.standin,
        "build": tree_digest(BUILD_DIR),
        "builder": builder_digest(),
        "packages": [[p.spec.name, p.package, p.version] for p in packages],
        "kubesolo": hashlib.sha256(kubesolo.data).hexdigest() if kubesolo else None,
    }


def os_inputs(
    request: BuildRequest, packages: list[debian.ResolvedPackage], kubesolo: KubeSoloBinary | None
) -> dict:
    """The inputs of the OS itself, which both flavours share: the test
    flavour is the release image plus its layer, and /etc/os-release's
    BUILD_ID is the same in both."""
    return {
        k: v
        for k, v in build_inputs(request, packages, kubesolo).items()
        if k not in ("flavour", "standin")
    }


def build(request: BuildRequest) -> Image:
    """Build (or find in the cache) the image of a request."""
    if request.flavour not in FLAVOURS:
        raise UserError(f"unknown flavour {request.flavour!r}: use one of {', '.join(FLAVOURS)}")
    kubesolo = load_kubesolo(request.kubesolo_bin) if request.kubesolo_bin else None
    if request.flavour == "release" and kubesolo is None and not request.standin:
        log.info(
            "[build] warning: a release image without --kubesolo-bin has no KubeSolo; "
            "its stage 90 will fail"
        )
    started = time.monotonic()
    specs = debian.load_specs(BUILD_DIR / "packages.toml", real_kubesolo=kubesolo is not None)
    packages = debian.resolve_memoized(specs, cache_root() / "apt-resolution.json")
    key = cache_key(build_inputs(request, packages, kubesolo))
    images = cache_root() / "images"
    images.mkdir(parents=True, exist_ok=True)
    target = images / f"{request.flavour}-{key}"
    with FileLock(str(target) + ".lock"):
        damaged = (target / "manifest.json").is_file() and Image(target).problem()
        if damaged:  # a cache entry is checked as any image directory is
            log.info(f"[build] the cached {target.name} is damaged ({damaged}): building it again")
        if (target / "manifest.json").is_file() and not damaged:
            prune.touch(target)
            log.info(f"[build] cache hit: {target} ({time.monotonic() - started:.2f}s)")
        else:
            remove_leftovers(target)
            with out_of_space_is_one_line(images):
                _build_into(target, key, request, packages, kubesolo)
            log.info(f"[build] image ready: {target} ({time.monotonic() - started:.1f}s)")
            for old in prune.prune(images):
                log.info(f"[build] removed an old cached image: {old.name}")
    if request.out:
        with out_of_space_is_one_line(request.out):
            return export(Image(target), request.out)
    return Image(target)


def remove_leftovers(target: Path) -> None:
    """Work directories of earlier builds of the same image that were killed
    (SIGKILL skips their clean-up); the caller holds the image's lock."""
    for stale in target.parent.glob(f"{target.name}.*"):
        if stale.is_dir():
            log.info(f"[build] removing the leftovers of a killed build: {stale.name}")
            shutil.rmtree(stale, ignore_errors=True)
    if target.exists() and not (target / "manifest.json").is_file():
        shutil.rmtree(target, ignore_errors=True)


@contextmanager
def out_of_space_is_one_line(where: Path) -> Iterator[None]:
    """A full disk is a user's problem with a clear fix, not a traceback. The
    build writes into a work directory renamed into place only when complete,
    so nothing half-written stays in the cache."""
    try:
        yield
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise UserError(
            f"no space left on the device of {where}: free some space, or point "
            "XDG_CACHE_HOME at a larger file system"
        ) from None


def export(image: Image, out: Path) -> Image:
    """Put copies of an image's files in `out` (a user may edit or boot them:
    a hard link would change the cache's entry with them), sparse where the
    file is, readable by everyone (an image holds no secret)."""
    if not out.exists():
        out.mkdir(parents=True)
        out.chmod(0o755)
    for name in IMAGE_FILES:
        src, dst = image.path / name, out / name
        dst.unlink(missing_ok=True)
        copy_sparse(src, dst)
        dst.chmod(0o644)
    return Image(out)


def _build_into(
    target: Path,
    key: str,
    request: BuildRequest,
    packages: list[debian.ResolvedPackage],
    kubesolo: KubeSoloBinary | None,
) -> None:
    cache = cache_root()
    work = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        unpacked: dict[str, Path] = {}
        inputs = []
        with step(f"fetch {len(packages)} Debian packages"):
            for pkg in packages:
                unpacked[pkg.spec.name] = debian.unpacked(pkg, cache)
                deb = debian.download(pkg, cache / "debs")  # already there: its path
                inputs.append(
                    {
                        "name": pkg.spec.name,
                        "package": pkg.package,
                        "version": pkg.version,
                        "sha256": sha256_file(deb),
                    }
                )
        kernel_root = unpacked["linux-image-amd64"]
        kernel_version = next((kernel_root / "lib/modules").iterdir()).name
        rootfs = Rootfs()
        with step("assemble the root file system"):
            add_base_tree(rootfs)
            for pkg in packages:
                if pkg.spec.into == "rootfs":
                    take_files(rootfs, unpacked[pkg.spec.name], pkg.spec.take)
            add_busybox_links(rootfs, unpacked["busybox-static"] / "bin/busybox")
            add_os_tree(rootfs)
            standin = request.flavour == "test" or request.standin
            kubesolo_kind, kubesolo_version = add_kubesolo(rootfs, kubesolo, standin, work)
            os_id = cache_key({**os_inputs(request, packages, kubesolo), "kubesolo": kubesolo_kind})
            rootfs.add(
                cpio.Entry.file(
                    "etc/os-release",
                    f'NAME="KubeSolo OS"\nID=kubesolo-os\nBUILD_ID={os_id}\n'.encode(),
                )
            )
        with step("select kernel modules"):
            modules = add_modules(rootfs, kernel_root, kernel_version)
        if request.flavour == "test":
            with step("lay the test layer"):
                add_test_layer(rootfs, BUILD_DIR)
        with step("pack the initramfs"):
            # Uncompressed: under TCG the kernel's gunzip of it cost 0.3 to 0.9 s
            # of every boot (docs/architecture.md "Speed").
            (work / "initramfs").write_bytes(rootfs.archive())
            shutil.copy2(next((kernel_root / "boot").glob("vmlinuz-*")), work / "vmlinuz")
        with step("make the ISO and the disk image"):
            menu = make_media(work, key, unpacked, BUILD_DIR, request.flavour)
        with step("make the blank data disk"):
            ext4_qcow2(work / "data.qcow2", DATA_DISK_SIZE, uuid=guid(key, "data.qcow2"))
        manifest = {
            "flavour": request.flavour,
            "cache_key": key,
            "kubesolo": kubesolo_kind,
            "kubesolo_version": kubesolo_version,
            "kernel_version": kernel_version,
            "default_label": menu.default,
            "labels": menu.labels,
            "menu_locked": menu.locked,
            "packages": inputs,
            "kubesolo_source": kubesolo.source if kubesolo else None,
            "kubesolo_sha256": hashlib.sha256(kubesolo.data).hexdigest() if kubesolo else None,
            "modules": modules,
            "files": {n: file_digest(work / n) for n in IMAGE_FILES if n != "manifest.json"},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for leftover in set(os.listdir(work)) - set(IMAGE_FILES):
            stale = work / leftover
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
