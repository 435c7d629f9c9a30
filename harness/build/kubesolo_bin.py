"""The KubeSolo binary a user passes: a bare `kubesolo` ELF or a release
tarball `kubesolo-<ver>-linux-amd64[-musl][-offline].tar.gz` holding one.

Refused in one line: a release below v1.1.3 (older ones hard-code the systemd
cgroup driver and start no pod on this systemd-less OS), a release tarball
that is not an `-offline` asset (the default one pulls local-path-provisioner
at start and never gets Ready air-gapped), see docs/kubesolo.md "Images";
and a binary whose flags the image's flag table does not describe
(kubesolo_flags, docs/kubesolo.md "Command line")."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import elf
from harness.build.kubesolo_flags import check_binary
from harness.errors import UserError
from harness.log import logger

log = logger("build")
TARBALL_NAME = re.compile(
    r"^kubesolo-(?P<version>v?\d[\w.+-]*?)-linux-amd64(?P<musl>-musl)?(?P<offline>-offline)?\.tar\.gz$"
)
MINIMUM_VERSION = (1, 1, 3)
# A release number, preferably `v`-prefixed (`kubesolo --version` logs a line around it).
TAGGED_VERSION = re.compile(r"(?<![\w.])v(\d+)\.(\d+)\.(\d+)")
BARE_VERSION = re.compile(r"(?<![\w.])(\d+)\.(\d+)\.(\d+)(?![\d])")

Version = tuple[int, int, int]


@dataclass(frozen=True)
class KubeSoloBinary:
    data: bytes
    source: str
    version: str


def tarball_version(name: str) -> str | None:
    """The release version in a release asset's file name, or None."""
    match = TARBALL_NAME.match(name)
    return match.group("version") if match else None


def tarball_is_offline(name: str) -> bool:
    match = TARBALL_NAME.match(name)
    return bool(match and match.group("offline"))


def parse_version(text: str) -> Version | None:
    """The first release number in `text` (v1.2.1, or 1.2.1 when none is tagged)."""
    match = TAGGED_VERSION.search(text) or BARE_VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def version_supported(version: Version, minimum: Version = MINIMUM_VERSION) -> bool:
    return version >= minimum


def format_version(version: Version) -> str:
    return "v" + ".".join(str(part) for part in version)


def _from_tarball(path: Path) -> bytes:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            binaries = [m for m in members if Path(m.name).name == "kubesolo"]
            if len(binaries) != 1:
                raise UserError(f"{path}: a KubeSolo release tarball holds one file `kubesolo`")
            extracted = tar.extractfile(binaries[0])
            assert extracted is not None
            return extracted.read()
    except (tarfile.TarError, OSError) as err:
        raise UserError(f"{path}: not a readable .tar.gz ({err})") from err


def binary_version(path: Path) -> str:
    """`kubesolo --version`'s first line, or 'unknown' if it will not run here."""
    output = version_output(path)
    lines = output.strip().splitlines() if output is not None else []
    return lines[0] if lines else "unknown"


def version_output(path: Path) -> str | None:
    """All `kubesolo --version` printed (it logs to stderr), None unless it ran and exited 0.
    A copy runs, so a binary without its execute bit answers too."""
    with tempfile.TemporaryDirectory(prefix="kubesolo-version-") as scratch:
        probe = Path(scratch) / "kubesolo"
        shutil.copyfile(path, probe)
        probe.chmod(0o755)
        try:
            done = subprocess.run(
                [str(probe), "--version"], capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    return f"{done.stdout}\n{done.stderr}" if done.returncode == 0 else None


def check_version(what: str, version: Version) -> None:
    if not version_supported(version):
        raise UserError(
            f"--kubesolo-bin {what}: KubeSolo {format_version(version)} is too old: releases "
            f"before {format_version(MINIMUM_VERSION)} hard-code the systemd cgroup driver and "
            f"start no pod on this systemd-less OS; use {format_version(MINIMUM_VERSION)} "
            "or newer"
        )


def load(path: Path) -> KubeSoloBinary:
    """Read and check a binary or tarball; refuse anything else in one line."""
    if not path.is_file():
        raise UserError(f"--kubesolo-bin {path}: no such file")
    if path.name.endswith((".tar.gz", ".tgz")):
        return _load_tarball(path)
    data = path.read_bytes()
    _require_x86_64(path, data)
    output = version_output(path)
    version = parse_version(output) if output is not None else None
    if version is None:
        raise UserError(
            f"--kubesolo-bin {path}: cannot tell its KubeSolo version: pass the release "
            "tarball or a kubesolo binary that answers --version"
        )
    check_version(str(path), version)
    check_binary(str(path), data)
    log.warning(
        "--kubesolo-bin %s is a bare binary: whether it is the -offline build cannot be told; "
        "a default (online) build never gets Ready without network",
        path,
    )
    return KubeSoloBinary(data=data, source=str(path), version=format_version(version))


def _load_tarball(path: Path) -> KubeSoloBinary:
    name = tarball_version(path.name)
    version = parse_version(name) if name else None
    if name is None or version is None:
        raise UserError(
            f"--kubesolo-bin {path.name}: expected kubesolo-<version>-linux-amd64"
            "[-musl][-offline].tar.gz"
        )
    check_version(path.name, version)
    if not tarball_is_offline(path.name):
        raise UserError(
            f"--kubesolo-bin {path.name}: not an -offline release asset; the default one pulls "
            "local-path-provisioner at start and never gets Ready air-gapped: use "
            f"kubesolo-{name}-linux-amd64-musl-offline.tar.gz"
        )
    data = _from_tarball(path)
    _require_x86_64(path, data)
    check_binary(path.name, data)
    return KubeSoloBinary(data=data, source=str(path), version=name)


def _require_x86_64(path: Path, data: bytes) -> None:
    if not elf.is_x86_64(data[:20]):
        raise UserError(f"--kubesolo-bin {path}: not an x86-64 kubesolo binary or release tarball")
