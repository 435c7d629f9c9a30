"""Host files into the guest through its test shell, as shell commands
(pure: tested without a guest). The bytes travel as base64 in the commands,
in chunks a command line carries easily, to a partial file that is renamed
into place once whole, so a copy cut short never looks complete."""

from __future__ import annotations

import base64
import io
import shlex
import tarfile
from pathlib import Path

from harness.errors import UserError

CHUNK = 48 * 1024  # bytes per command: 64 KiB of base64
PARTIAL_SUFFIX = ".copy-part"


def write_file_command(path: str, content: str | bytes) -> str:
    """A guest command writing `content` to `path` byte for byte (base64 through the shell)."""
    data = content.encode() if isinstance(content, str) else content
    b64 = base64.b64encode(data).decode()
    quoted = shlex.quote(path)
    return f'mkdir -p "$(dirname {quoted})" && echo {b64} | base64 -d > {quoted}'


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """In the guest a copied tree is root's, as a copied file is."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _tar_of(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(directory.rglob("*")):
            name = str(path.relative_to(directory))
            tar.add(path, arcname=name, recursive=False, filter=_as_root)
    return buffer.getvalue()


def _refuse(test: str, message: str) -> str:
    """A guest command that fails with `message` on stderr when `test` holds."""
    return f"if {test}; then echo {shlex.quote(message)} >&2; exit 1; fi"


def copy_commands(source: Path, target: str) -> list[str]:
    """Guest commands that copy host file or directory `source` to guest path
    `target`: a file with its permission bits (replacing a file there, never
    a directory), or a directory's tree, owned by root, to a `target` that
    does not exist yet. Either appears only once whole."""
    if source.is_symlink() or not (source.is_file() or source.is_dir()):
        raise UserError(f"copy_from_host {source}: not a file or a directory")
    if not target.startswith("/") or target.endswith("/"):
        raise UserError(f"copy_from_host {target}: give an absolute guest path, not ending in /")
    is_file = source.is_file()
    data = source.read_bytes() if is_file else _tar_of(source)
    part, quoted = shlex.quote(target + PARTIAL_SUFFIX), shlex.quote(target)
    refusal = (
        _refuse(f"[ -d {quoted} ]", f"copy_from_host {target}: is a directory")
        if is_file
        else _refuse(f"[ -e {quoted} ] || [ -L {quoted} ]", f"copy_from_host {target}: exists")
    )
    commands = [f'{refusal}; mkdir -p "$(dirname {part})" && : > {part}']
    for start in range(0, len(data), CHUNK):
        b64 = base64.b64encode(data[start : start + CHUNK]).decode()
        commands.append(f"echo {b64} | base64 -d >> {part}")
    if is_file:
        mode = source.stat().st_mode & 0o7777
        commands.append(f"chmod {mode:o} {part} && mv -f {part} {quoted}")
    else:
        tree = shlex.quote(target + PARTIAL_SUFFIX + ".d")
        commands.append(
            f"rm -rf {tree} && mkdir {tree} && tar -xf {part} -C {tree} && rm -f {part} "
            f"&& mv {tree} {quoted}"
        )
    return commands


def listening_command(port: int) -> str:
    """A guest command that exits 0 while a TCP socket listens on `port` (IPv4
    or IPv6, any address), 1 while none does: the kernel's own table, so no
    client is needed."""
    if not 1 <= port <= 65535:
        raise UserError(f"port {port}: use 1-65535")
    return (
        f'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk \'$4 == "0A" && '
        f'substr($2, length($2) - 3) == "{port:04X}" {{ found = 1 }} END {{ exit !found }}\''
    )
