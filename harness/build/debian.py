"""Debian packages as build inputs: the package table of build/packages.toml,
version resolution through apt-cache, download with `apt-get download` into
a cache, and unpacking with dpkg-deb. Nothing is installed on the host."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from harness.artefact import sha256_file
from harness.build.tree import tree_digest
from harness.errors import UserError
from harness.log import logger
from harness.tools import run_tool

log = logger("build")


@dataclass(frozen=True)
class PackageSpec:
    """One row of build/packages.toml."""

    name: str
    into: str
    take: tuple[str, ...]
    metapackage: bool = False
    when: str = "always"


@dataclass(frozen=True)
class ResolvedPackage:
    spec: PackageSpec
    package: str  # the concrete package downloaded (metapackages resolved)
    version: str


def load_specs(path: Path, real_kubesolo: bool) -> list[PackageSpec]:
    """The package table, filtered for this build."""
    rows = tomllib.loads(path.read_text())["package"]
    specs = [
        PackageSpec(
            name=row["name"],
            into=row["into"],
            take=tuple(row["take"]),
            metapackage=row.get("metapackage", False),
            when=row.get("when", "always"),
        )
        for row in rows
    ]
    return [s for s in specs if s.when == "always" or (s.when == "real" and real_kubesolo)]


def parse_policy(text: str) -> dict[str, str]:
    """Candidate versions from `apt-cache policy a b c` output."""
    versions: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1].split(":")[0] if line.count(":") > 1 else line[:-1]
        elif current and line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            if candidate != "(none)":
                versions[current] = candidate
    return versions


def parse_depends(text: str) -> list[str]:
    """Packages a package Depends on, from `apt-cache depends` output."""
    return [m.group(1) for m in re.finditer(r"^\s+Depends: (\S+)", text, re.M)]


def parse_dependencies(text: str) -> dict[str, list[str]]:
    """package -> the packages it Depends or Pre-Depends on (every alternative,
    no virtual package), from `apt-cache depends a b c` output."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = line.strip()
            found[current] = []
            continue
        match = re.match(r"\s*\|?(?:Pre)?Depends: ([^<\s]\S*)", line)
        if current and match and match.group(1) not in found[current]:
            found[current].append(match.group(1))
    return found


def dependencies(packages: list[str]) -> dict[str, list[str]]:
    """What each package depends on, in one apt-cache call."""
    return parse_dependencies(run_tool(["apt-cache", "depends", *DEPENDS_ONLY, *packages]))


# apt-cache depends prints every kind of relation unless told not to.
DEPENDS_ONLY = (
    "--no-recommends",
    "--no-suggests",
    "--no-conflicts",
    "--no-breaks",
    "--no-replaces",
    "--no-enhances",
)


def metapackage_target(name: str, depends: list[str]) -> str:
    """The concrete package behind a metapackage such as linux-image-amd64."""
    stem = name.rsplit("-", 1)[0]  # linux-image
    for dep in depends:
        if dep.startswith(stem + "-") and dep != name:
            return dep
    raise UserError(f"cannot resolve Debian metapackage {name}: it depends on {depends}")


def resolve(specs: list[PackageSpec]) -> list[ResolvedPackage]:
    """Concrete package names and candidate versions, in one apt-cache call
    per kind of question."""
    concrete = {}
    for spec in specs:
        if spec.metapackage:
            concrete[spec.name] = metapackage_target(
                spec.name, parse_depends(run_tool(["apt-cache", "depends", spec.name]))
            )
        else:
            concrete[spec.name] = spec.name
    versions = parse_policy(run_tool(["apt-cache", "policy", *concrete.values()]))
    missing = [p for p in concrete.values() if p not in versions]
    if missing:
        raise UserError(
            f"Debian packages not found: {', '.join(missing)}; run `apt-get update` first"
        )
    return [ResolvedPackage(s, concrete[s.name], versions[concrete[s.name]]) for s in specs]


# What apt's answers depend on: the package lists and apt's configuration.
APT_STATE = (Path("/var/lib/apt/lists"), Path("/etc/apt"))


def apt_state() -> str:
    """A fingerprint of apt's package lists and configuration (names, sizes,
    mtimes): it changes with `apt-get update` or a new source."""
    digest = hashlib.sha256()
    for root in APT_STATE:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def remembered_pairs(
    memo: Path, key: str, compute: Callable[[], list[ResolvedPackage]]
) -> list[tuple[str, str]]:
    """(package, version) pairs of `compute()`, remembered in the JSON file `memo`
    under `key` (written to a temporary file, then renamed into place)."""
    try:
        saved = json.loads(memo.read_text())
        if saved["key"] == key:
            return [(str(name), str(version)) for name, version in saved["packages"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    pairs = [(p.package, p.version) for p in compute()]
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "packages": pairs}))
    tmp.replace(memo)
    return pairs


def resolve_memoized(specs: list[PackageSpec], memo: Path) -> list[ResolvedPackage]:
    """`resolve`, remembered in `memo` while apt's state stays the same:
    apt-cache takes about a second, which a cache-hit build cannot afford."""
    key = hashlib.sha256(
        json.dumps([asdict(s) for s in specs], sort_keys=True).encode() + apt_state().encode()
    ).hexdigest()
    pairs = remembered_pairs(memo, key, lambda: resolve(specs))  # the key covers the specs
    return [
        ResolvedPackage(spec, name, version)
        for spec, (name, version) in zip(specs, pairs, strict=True)
    ]


def deb_filename(package: str, version: str, arch: str = "amd64") -> str:
    """The file name apt-get download writes (the epoch colon is escaped)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


_APT_SHA256: dict[tuple[str, str], str] = {}  # (package, version) -> apt's SHA256


def parse_show(text: str) -> dict[tuple[str, str], str]:
    """(package, version) -> SHA256 of each record of `apt-cache show` output."""
    found = {}
    for record in text.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|SHA256): (\S+)$", record, re.M))
        if len(fields) == 3:
            found[(fields["Package"], fields["Version"])] = fields["SHA256"]
    return found


def apt_sha256s(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """apt's SHA256 of each (package, version), asked once per process in one
    apt-cache call; None for a version apt does not know."""
    unknown = [p for p in pairs if p not in _APT_SHA256]
    if unknown:
        shown = subprocess.run(
            ["apt-cache", "show", *(f"{name}={version}" for name, version in unknown)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        _APT_SHA256.update(parse_show(shown.stdout))
    return {p: _APT_SHA256.get(p) for p in pairs}


def download(pkg: ResolvedPackage, cache: Path) -> Path:
    """The .deb of a package, downloaded once into the cache and checked
    against apt's SHA256 for that version, on every use: a cached .deb that
    does not match (damaged, or put there by someone else) is downloaded
    again. apt-get writes into a private directory first and the file is
    renamed into place, so a killed or out-of-space download never leaves a
    truncated .deb behind, and concurrent builds never read each other's
    half-written files."""
    expected = apt_sha256s([(pkg.package, pkg.version)])[(pkg.package, pkg.version)]
    if expected is None:
        raise UserError(
            f"apt knows no {pkg.package} {pkg.version}, so its .deb cannot be checked: "
            "run apt-get update"
        )
    cache.mkdir(parents=True, exist_ok=True)
    for arch in ("amd64", "all"):
        path = cache / deb_filename(pkg.package, pkg.version, arch)
        if path.exists():
            if sha256_file(path) == expected:
                return path
            log.info(f"[build] {path.name} does not match apt's SHA256: downloading it again")
            path.unlink()
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        wanted = f"{pkg.package}={pkg.version}"
        run_tool(
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", wanted], cwd=Path(tmp)
        )
        for arch in ("amd64", "all"):
            name = deb_filename(pkg.package, pkg.version, arch)
            if (Path(tmp) / name).exists():
                if sha256_file(Path(tmp) / name) != expected:
                    raise UserError(f"apt-get download of {name} does not match apt's SHA256")
                os.replace(Path(tmp) / name, cache / name)
                return cache / name
    raise UserError(f"apt-get download of {pkg.package} wrote no file in {cache}")


def unpack(deb: Path, dest: Path) -> Path:
    """Extract a .deb's files (no maintainer scripts run)."""
    dest.mkdir(parents=True, exist_ok=True)
    run_tool(["dpkg-deb", "-x", str(deb), str(dest)])
    return dest


DONE = ".done"  # an unpacked tree's table of contents (harness.build.tree), made at unpacking


def unpacked(pkg: ResolvedPackage, cache: Path) -> Path:
    """A package's files, downloaded and unpacked once into the cache and shared
    by every build (a lock keeps two builds from unpacking it at once). On
    every use the tree is checked against the table made when it was
    unpacked: a changed, added or removed file means it is unpacked again."""
    deb = download(pkg, cache / "debs")
    dest = cache / "unpacked" / deb.stem
    with FileLock(str(dest) + ".lock"):
        if not _intact(dest):
            if (dest / DONE).exists():
                log.info(f"[build] unpacked {deb.stem} was changed: unpacking it again")
            shutil.rmtree(dest, ignore_errors=True)
            unpack(deb, dest)
            (dest / DONE).write_text(json.dumps(_contents(dest), sort_keys=True))
    return dest


def _contents(tree: Path) -> dict[str, str]:
    return {k: v for k, v in tree_digest(tree).items() if k != DONE}


def _intact(tree: Path) -> bool:
    try:
        table = json.loads((tree / DONE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(table, dict) and table == _contents(tree)
