"""KubeSolo's flag grammar as the image carries it, in one table
(build/rootfs/usr/lib/kubesolo-os/kubesolo-flags, docs/kubesolo.md "Command
line"), and the build's check that a --kubesolo-bin is a KubeSolo the table
describes: its `--help-long` (kingpin v2's long help) must list exactly the
table's flags, each taking a value or not as the table says, each with the
table's environment variable. Stage 90 merges flags by that table and the
stand-in parses by it, so a binary with other flags would get command lines
nobody checked."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

TABLE_IN_REPO = "build/rootfs/usr/lib/kubesolo-os/kubesolo-flags"
TABLE = Path(__file__).resolve().parents[2] / TABLE_IN_REPO
KINDS = frozenset({"bool", "string", "int", "list"})
HELP_TIMEOUT = 20  # seconds; kingpin prints its help before KubeSolo starts anything

# A flag's row in kingpin's two-column help: two spaces, a short flag or its
# four-blank stand-in, then --[no-]NAME for a bool (--NAME in kingpin before
# v2.3), --NAME=PLACEHOLDER (FLAG, or a "quoted" default) for a value, " ..."
# for a repeatable one; the help follows after two blanks or on the next
# lines. Wrapped help lines are indented further and never match.
FLAG_ROW = re.compile(
    r"^  (?:-\w, |    )?--(?:\[no-\])?(?P<name>\w[\w.-]*)"
    r'(?P<value>=(?:"(?:[^"\\]|\\.)*"|\S+))?(?P<repeat> \.\.\.)?(?: {2,}|$)'
)
ENVVAR = re.compile(r"\(\$(?P<name>\w+)\)\s*$")


@dataclass(frozen=True)
class Flag:
    """One flag. `kind` is the table's; kingpin's help tells only whether a
    value is taken: int and string (and our list) look alike there."""

    name: str
    kind: str
    envvar: str | None
    repeatable: bool = False

    @property
    def takes_value(self) -> bool:
        return self.kind != "bool"


def parse_table(text: str) -> dict[str, Flag]:
    """The table's flags by name: `NAME KIND ENVVAR` lines, # comments."""
    flags: dict[str, Flag] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 3 or fields[1] not in KINDS or fields[0] in flags:
            raise ValueError(f"{TABLE_IN_REPO} line {number}: expected a new NAME KIND ENVVAR")
        name, kind, envvar = fields
        flags[name] = Flag(name, kind, None if envvar == "-" else envvar)
    return flags


def load_table(path: Path = TABLE) -> dict[str, Flag]:
    return parse_table(path.read_text())


def parse_help(text: str) -> dict[str, Flag]:
    """The flags a kingpin v2 help text lists (its "Flags:" section), with
    `kind` "bool" or "value" and the environment variable of its help."""
    rows: list[tuple[re.Match[str], list[str]]] = []
    in_flags = False
    for line in text.splitlines():
        if line.rstrip() == "Flags:":
            in_flags = True
        elif in_flags and (not line.strip() or not line.startswith(" ")):
            in_flags = False  # a blank line or the next section ends it
        elif in_flags and (row := FLAG_ROW.match(line)):
            rows.append((row, [line[row.end() :]]))
        elif in_flags and rows:
            rows[-1][1].append(line)
    flags = {}
    for row, help_lines in rows:
        envvar = ENVVAR.search(" ".join(part.strip() for part in help_lines))
        flags[row["name"]] = Flag(
            row["name"],
            "value" if row["value"] else "bool",
            envvar["name"] if envvar else None,
            repeatable=bool(row["repeat"]),
        )
    return flags


def differences(table: Mapping[str, Flag], listed: Mapping[str, Flag]) -> list[str]:
    """What the table does not describe of a binary's flags, one phrase a flag.
    Kinds compare as bool or takes-a-value: kingpin's help shows no more (an
    int and a string both read --NAME=NAME), so the table's int is checked by
    flags.go's fixture (tests/unit), not here. Environment variables compare
    when the help shows any (kingpin before v2.3 printed none)."""
    with_envvars = any(flag.envvar for flag in listed.values())
    found = []
    for name in sorted(set(table) | set(listed)):
        ours, theirs = table.get(name), listed.get(name)
        if ours is None:
            found.append(f"--{name} is new")
        elif theirs is None:
            found.append(f"--{name} is gone")
        elif ours.takes_value != theirs.takes_value:
            what = "takes a value" if theirs.takes_value else "takes no value"
            found.append(f"--{name} {what} (the table: {ours.kind})")
        elif theirs.repeatable:
            found.append(f"--{name} is repeatable")
        elif with_envvars and ours.envvar != theirs.envvar:
            found.append(f"--{name} reads {_envvar(theirs)} (the table: {_envvar(ours)})")
    return found


def _envvar(flag: Flag) -> str:
    return f"${flag.envvar}" if flag.envvar else "no variable"


def probe_env(table: Mapping[str, Flag], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment `--help-long` runs in: the host's, less the flags' own
    variables (kingpin reads them while parsing: a host's KUBESOLO_DEBUG=x
    would fail the parse before any help)."""
    ours = {flag.envvar for flag in table.values()}
    return {k: v for k, v in (os.environ if base is None else base).items() if k not in ours}


def help_long(data: bytes, env: Mapping[str, str]) -> str | None:
    """All `kubesolo --help-long` printed (stdout, then stderr), None unless it
    ran and exited 0. A copy runs, so the image's bytes are what is checked."""
    with tempfile.TemporaryDirectory(prefix="kubesolo-help-") as scratch:
        probe = Path(scratch) / "kubesolo"
        probe.write_bytes(data)
        probe.chmod(0o755)
        try:
            done = subprocess.run(
                [str(probe), "--help-long"],
                capture_output=True,
                text=True,
                errors="replace",
                env=dict(env),
                timeout=HELP_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    return f"{done.stdout}\n{done.stderr}" if done.returncode == 0 else None


def check_binary(
    what: str, data: bytes, table_path: Path = TABLE, env: Mapping[str, str] | None = None
) -> None:
    """Refuse, in one line, a KubeSolo whose flags the table does not describe."""
    table = load_table(table_path)
    output = help_long(data, probe_env(table, env))
    if output is None:
        raise UserError(
            f"--kubesolo-bin {what}: `kubesolo --help-long` did not run here, so its flags "
            f"cannot be checked against {TABLE_IN_REPO}: pass a KubeSolo for this host"
        )
    listed = parse_help(output)
    if not listed:
        raise UserError(
            f"--kubesolo-bin {what}: `kubesolo --help-long` listed no flags "
            "(not kingpin's help): not a KubeSolo binary?"
        )
    found = differences(table, listed)
    if found:
        raise UserError(
            f"--kubesolo-bin {what}: its flags are not the ones {TABLE_IN_REPO} describes "
            f"({'; '.join(found)}): describe its grammar there (docs/kubesolo.md "
            '"Command line") or pass the KubeSolo the table describes'
        )
