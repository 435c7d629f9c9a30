"""The container-runtime tools of the runtime suite: Debian's containerd (with
ctr and the runc v2 shim), crun, runc and the four CNI plugins KubeSolo embeds,
plus the shared libraries they need beyond those the image already carries.
They never enter an image: the builder unpacks them into a tree that test
machines mount as a read-only 9p share. Cached under the hash of its inputs
and built once under a file lock, like images."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness import elf
from harness.artefact import cache_root, sha256_file
from harness.build import debian, prune
from harness.build.rootfs import BUILD_DIR, glob_regex
from harness.errors import UserError
from harness.log import logger, step

# (Debian package, file in the package, directory of the tree it goes to)
TOOLS = (
    ("containerd", "usr/bin/containerd", "bin"),
    ("containerd", "usr/bin/ctr", "bin"),
    ("containerd", "usr/bin/containerd-shim-runc-v2", "bin"),
    ("crun", "usr/bin/crun", "bin"),
    ("runc", "usr/sbin/runc", "bin"),
    ("containernetworking-plugins", "usr/lib/cni/bridge", "cni"),
    ("containernetworking-plugins", "usr/lib/cni/host-local", "cni"),
    ("containernetworking-plugins", "usr/lib/cni/portmap", "cni"),
    ("containernetworking-plugins", "usr/lib/cni/loopback", "cni"),
)
# Packages that may hold the libraries the tools link against (crun:
# libsystemd, libseccomp, libcap, libyajl; libsystemd: lz4, lzma, zstd, gcrypt).
# The closure below takes only the files some tool really needs.
LIBRARY_PACKAGES = (
    "libyajl2",
    "libseccomp2",
    "libcap2",
    "libsystemd0",
    "libgcrypt20",
    "libgpg-error0",
    "liblzma5",
    "libzstd1",
    "liblz4-1",
)
MANIFEST = "manifest.json"
LIB_DIRS = ("lib/", "usr/lib/")

log = logger("build")


@dataclass(frozen=True)
class RuntimeTools:
    """A built tools tree: bin/, cni/, lib/ and manifest.json."""

    path: Path

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / MANIFEST).read_text())


# ---- pure parts -----------------------------------------------------------------


def library_closure(
    roots: Mapping[str, Iterable[str]],
    libraries: Mapping[str, Iterable[str]],
    provided: Iterable[str],
) -> tuple[list[str], dict[str, list[str]]]:
    """(sonames to ship, soname -> who needs it for those nobody has).

    `roots`: tool -> its DT_NEEDED; `libraries`: soname -> its DT_NEEDED, for
    every library the candidate packages hold; `provided`: sonames the image
    already carries (libc and friends), which are neither shipped nor followed."""
    have = set(provided)
    ship: set[str] = set()
    missing: dict[str, list[str]] = {}
    queue = [(name, soname) for name, needs in roots.items() for soname in needs]
    while queue:
        needer, soname = queue.pop()
        if soname in have or soname in ship:
            continue
        if soname not in libraries:
            missing.setdefault(soname, [])
            if needer not in missing[soname]:
                missing[soname].append(needer)
            continue
        ship.add(soname)
        queue.extend((soname, dep) for dep in libraries[soname])
    return sorted(ship), {k: sorted(v) for k, v in sorted(missing.items())}


def shared_objects(root: Path, rel_paths: Iterable[str]) -> dict[str, Path]:
    """soname-like file name -> the real file, for the *.so* files among rel_paths
    (symlinks such as libcap.so.2 -> libcap.so.2.66 count under their own name)."""
    found: dict[str, Path] = {}
    for rel in sorted(rel_paths):
        name = rel.rsplit("/", 1)[-1]
        if ".so" in name and rel.startswith(LIB_DIRS):
            path = root / rel
            if path.resolve().is_file():
                found.setdefault(name, path.resolve())
    return found


def cache_key(inputs: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:24]


# ---- the build ----------------------------------------------------------------------


def _spec(
    name: str, into: str = "runtime-tools", take: tuple[str, ...] = ("**",)
) -> debian.PackageSpec:
    return debian.PackageSpec(name=name, into=into, take=take)


def _unpacked(pkg: debian.ResolvedPackage) -> Path:
    """A package unpacked once into the shared cache (the builder's layout)."""
    deb = debian.download(pkg, cache_root() / "debs")
    dest = cache_root() / "unpacked" / deb.stem
    if not (dest / ".done").exists():
        shutil.rmtree(dest, ignore_errors=True)
        debian.unpack(deb, dest)
        (dest / ".done").touch()
    return dest


def _files(root: Path, take: Iterable[str] = ("**",)) -> list[str]:
    regexes = [glob_regex(p) for p in take]
    out = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if (path.is_symlink() or not path.is_dir()) and any(r.match(rel) for r in regexes):
            out.append(rel)
    return out


def _image_sonames() -> tuple[set[str], list[debian.ResolvedPackage]]:
    """Library names the image's root file system carries (build/packages.toml)."""
    specs = [
        s
        for s in debian.load_specs(BUILD_DIR / "packages.toml", real_kubesolo=False)
        if s.into == "rootfs"
    ]
    packages = debian.resolve_memoized(specs, cache_root() / "apt-resolution-runtime-base.json")
    names: set[str] = set()
    for pkg in packages:
        root = _unpacked(pkg)
        names.update(shared_objects(root, _files(root, pkg.spec.take)))
    return names, packages


def builder_digest() -> dict[str, str]:
    here = Path(__file__).resolve()
    code = [here, here.parent / "debian.py", here.parent.parent / "elf.py"]
    return {p.name: sha256_file(p) for p in code}


def build_runtime_tools() -> RuntimeTools:
    """The tools tree (from the cache when its inputs are unchanged)."""
    tool_names = sorted({package for package, _, _ in TOOLS})
    specs = [_spec(n) for n in (*tool_names, *LIBRARY_PACKAGES)]
    packages = debian.resolve_memoized(specs, cache_root() / "apt-resolution-runtime-tools.json")
    provided, image_packages = _image_sonames()
    key = cache_key(
        {
            "packages": [[p.package, p.version] for p in packages],
            "image": [[p.package, p.version, list(p.spec.take)] for p in image_packages],
            "builder": builder_digest(),
        }
    )
    trees = cache_root() / "runtime-tools"
    trees.mkdir(parents=True, exist_ok=True)
    target = trees / key
    with FileLock(str(target) + ".lock"):
        if (target / MANIFEST).is_file():
            prune.touch(target)
        else:
            with step(log, f"[build] runtime tools {key}"):
                _build_into(target, packages, provided)
            prune.prune(trees, keep=3)
    return RuntimeTools(target)


def _build_into(target: Path, packages: list[debian.ResolvedPackage], provided: set[str]) -> None:
    roots = {p.package: _unpacked(p) for p in packages}
    libraries: dict[str, Path] = {}
    for name in LIBRARY_PACKAGES:
        for soname, path in shared_objects(roots[name], _files(roots[name])).items():
            libraries.setdefault(soname, path)
    tools = {f"{where}/{rel.rsplit('/', 1)[-1]}": roots[pkg] / rel for pkg, rel, where in TOOLS}
    for dest, src in tools.items():
        if not src.is_file():
            raise UserError(f"Debian's package no longer ships {src.name} ({dest}): update TOOLS")
    ship, missing = library_closure(
        {dest: elf.needed(src.read_bytes()) for dest, src in tools.items()},
        {soname: elf.needed(path.read_bytes()) for soname, path in libraries.items()},
        provided,
    )
    if missing:
        what = "; ".join(f"{so} (needed by {', '.join(by)})" for so, by in missing.items())
        raise UserError(
            f"runtime tools need libraries neither the image nor LIBRARY_PACKAGES has: {what}"
        )
    work = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        files = {**tools, **{f"lib/{soname}": libraries[soname] for soname in ship}}
        for dest, src in files.items():
            (work / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, work / dest)
            os.chmod(work / dest, 0o755 if dest.startswith(("bin/", "cni/")) else 0o644)
        manifest = {
            "packages": {p.package: p.version for p in packages},
            "files": {dest: sha256_file(work / dest) for dest in sorted(files)},
            "libraries": ship,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
