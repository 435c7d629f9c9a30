"""The KubeSolo binary a user passes: a bare `kubesolo` ELF or a release
tarball `kubesolo-<ver>-linux-amd64[-musl][-offline].tar.gz` holding one."""

from __future__ import annotations

import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness import elf
from harness.errors import UserError

TARBALL_NAME = re.compile(
    r"^kubesolo-(?P<version>v?\d[\w.+-]*?)-linux-amd64(?P<musl>-musl)?(?P<offline>-offline)?\.tar\.gz$"
)


@dataclass(frozen=True)
class KubeSoloBinary:
    data: bytes
    source: str
    version: str


def tarball_version(name: str) -> str | None:
    """The release version in a release asset's file name, or None."""
    match = TARBALL_NAME.match(name)
    return match.group("version") if match else None


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
    """`kubesolo --version`, or 'unknown' if it will not run here."""
    try:
        done = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    out = (done.stdout or done.stderr).strip().splitlines()
    return out[0] if done.returncode == 0 and out else "unknown"


def load(path: Path) -> KubeSoloBinary:
    """Read and check a binary or tarball; refuse anything else in one line."""
    if not path.is_file():
        raise UserError(f"--kubesolo-bin {path}: no such file")
    version = tarball_version(path.name)
    if path.name.endswith((".tar.gz", ".tgz")):
        if version is None:
            raise UserError(
                f"--kubesolo-bin {path.name}: expected kubesolo-<version>-linux-amd64"
                "[-musl][-offline].tar.gz"
            )
        data = _from_tarball(path)
    else:
        data = path.read_bytes()
    if not elf.is_x86_64(data[:20]):
        raise UserError(f"--kubesolo-bin {path}: not an x86-64 kubesolo binary or release tarball")
    return KubeSoloBinary(data=data, source=str(path), version=version or "")
