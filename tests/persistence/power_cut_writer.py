"""What the power-cut test writes in the guest (docs/boot-flow.md "Stage 20 —
Persistent Mount", "Disk faults"): numbered files, each written and fsynced
and then announced on the console, and an unsynced append log under each
persistent path. The host knows every numbered file's content, so a file
announced before the cut must read back with the same sha256."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from persistence_state import PERSISTENT_PATHS

# Sizes cycle independently of the five paths: partial blocks, whole blocks, several
# extents, an empty-ish file.
SIZES = (100, 4096, 5000, 65536, 200_000, 1, 12288)
SYNCED = r"KSOLO-SYNCED (\d+) (\d+)"  # cut number, file index: its fsync returned
APPEND_SYNCED = r"KSOLO-APPEND-SYNCED (\d+) (\S+) (\d+)"  # cut, path, appends fsynced
APPEND_LOG = "powercut-append.log"
APPENDS_PER_BURST = 10  # lines per 0.1 s per path: load, without starving the writer
SYNC_EVERY = 100  # appends between two fsyncs of an append log (about a second)
SUBDIR = "powercut"


@dataclass(frozen=True)
class NumberedFile:
    cut: int
    index: int

    @property
    def directory(self) -> str:
        return PERSISTENT_PATHS[self.index % len(PERSISTENT_PATHS)]

    @property
    def size(self) -> int:
        return SIZES[(self.index // len(PERSISTENT_PATHS)) % len(SIZES)]

    @property
    def path(self) -> str:
        return f"{self.directory}/{SUBDIR}/c{self.cut}-{self.index}.dat"

    @property
    def content(self) -> bytes:
        """What `yes c<cut>-<index> | head -c <size>` writes."""
        line = f"c{self.cut}-{self.index}\n".encode()
        return (line * (self.size // len(line) + 1))[: self.size]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def writers_script(cut: int) -> str:
    """Start, detached from the test shell, one appender per persistent path (lines
    `append CUT N`, the log fsynced and announced every SYNC_EVERY lines) and
    the numbered-file writer: each file is written by `dd conv=fsync` (which exits
    after fsync(2) returned), its directory fsynced (`sync DIR`), and only then
    announced on the console. Paths cycle with the index, sizes every five."""
    paths = " ".join(PERSISTENT_PATHS)
    sizes = " ".join(str(size) for size in SIZES)
    burst = " ".join(str(k) for k in range(APPENDS_PER_BURST))
    log = f'"$2/{APPEND_LOG}"'
    appender = (
        f"n=0; while :; do for k in {burst}; do n=$((n + 1)); "
        f'echo "append $1 $n" >> {log}; done; '
        f"[ $((n % {SYNC_EVERY})) = 0 ] && sync {log} && "
        'echo "KSOLO-APPEND-SYNCED $1 $2 $n" > /dev/console; sleep 0.1; done'
    )
    writer = f"""
        i=0
        while :; do
            for size in {sizes}; do
                for dir in {paths}; do
                    yes "c{cut}-$i" | head -c "$size" |
                        dd of="$dir/{SUBDIR}/c{cut}-$i.dat" bs=65536 conv=fsync 2>/dev/null &&
                        sync "$dir/{SUBDIR}" && echo "KSOLO-SYNCED {cut} $i" > /dev/console
                    i=$((i + 1))
                done
            done
        done"""
    return f"""
        for dir in {paths}; do
            mkdir -p "$dir/{SUBDIR}" && sync "$dir"
            setsid sh -c '{appender}' sh {cut} "$dir" </dev/null >/dev/null 2>&1 &
        done
        setsid sh -c '{writer}' </dev/null >/dev/null 2>&1 &
    """


def synced_files(console: str, cut: int) -> list[NumberedFile]:
    """The numbered files of one cut whose fsync returned: announced on the console."""
    return [NumberedFile(cut, int(i)) for c, i in re.findall(SYNCED, console) if int(c) == cut]


def sha256_command() -> str:
    """sha256sum of every numbered file on the data partition."""
    dirs = " ".join(f"{path}/{SUBDIR}" for path in PERSISTENT_PATHS)
    return f"find {dirs} -name '*.dat' -type f 2>/dev/null | xargs -r sha256sum"


def synced_appends(console: str, cut: int) -> dict[str, int]:
    """path -> how many appends of one cut were fsynced: announced on the console."""
    counts: dict[str, int] = {}
    for c, path, count in re.findall(APPEND_SYNCED, console):
        if int(c) == cut:
            counts[path] = max(counts.get(path, 0), int(count))
    return counts


def appends_command(paths: tuple[str, ...] = PERSISTENT_PATHS) -> str:
    """Per append log and cut: `PATH CUT N`, N the number of appends
    `append CUT 1`, `append CUT 2`, ... that it holds from the first on (one
    pass over each log; a cut with no `append CUT 1` is not listed). An
    append is read at the end of its line with NUL bytes removed: after a
    cut, the unsynced tail of the log may read back as NULs or as a torn
    line, and the next cut's first append then continues that line."""
    count = (
        f"tr -d '\\000' < \"$dir/{APPEND_LOG}\" "
        "| sed -n 's/.*append \\([0-9][0-9]*\\) \\([0-9][0-9]*\\)$/\\1 \\2/p' "
        "| awk '$2 == ($1 in n ? n[$1] : 0) + 1 { n[$1] = $2 } END { for (c in n) print c, n[c] }'"
    )
    return f"""
        for dir in {" ".join(paths)}; do
            [ -f "$dir/{APPEND_LOG}" ] || continue
            {count} | sed "s|^|$dir |"
        done"""


def append_log_command() -> str:
    """Per append log: its path, bytes, NUL bytes, lines that are not whole appends."""
    return f"""
        for dir in {" ".join(PERSISTENT_PATHS)}; do
            f=$dir/{APPEND_LOG}
            [ -f "$f" ] || continue
            size=$(wc -c < "$f")
            nuls=$((size - $(tr -d '\\000' < "$f" | wc -c)))
            echo "$f $size $nuls $(grep -cv '^append [0-9]* [0-9]*$' "$f")"
        done"""
