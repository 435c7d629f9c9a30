"""KubeSolo's flag table (docs/kubesolo.md "Command line"): it is flags.go's
flags exactly, it lands in both flavours' images, and the build refuses in
one line a --kubesolo-bin whose --help-long lists other flags, read with a
parser tested on kingpin's own help text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.build import kubesolo_flags
from harness.build.kubesolo_flags import Flag
from harness.build.rootfs import Rootfs, add_os_tree
from harness.errors import UserError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FLAGS_GO = FIXTURES / "kubesolo-flags-go-develop.txt"
HELP_LONG = FIXTURES / "kubesolo-help-long-develop.txt"  # kingpin v2.4's format
HELP_LONG_OLD = FIXTURES / "kubesolo-help-long-develop-kingpin-2.2.6.txt"
STANDIN = Path(__file__).resolve().parents[2] / "build/standin/kubesolo"
KINGPINS_OWN = {"help": Flag("help", "bool", None)}  # kingpin.New adds it


def table_rows() -> list[tuple[str, str, str | None]]:
    return [(f.name, f.kind, f.envvar) for f in kubesolo_flags.load_table().values()]


def flags_go_rows() -> list[tuple[str, str, str | None]]:
    rows = [line.split() for line in FLAGS_GO.read_text().splitlines() if not line.startswith("#")]
    return [(name, kind, None if env == "-" else env) for name, kind, env in rows]


def test_the_fixture_names_its_source():
    header = FLAGS_GO.read_text().splitlines()[0]
    assert "portainer/kubesolo internal/config/flags/flags.go" in header
    assert "after release v1.2.1" in header


def test_the_table_is_flags_go_exactly():
    """Every flag of flags.go, in its order, with its kind (our list is a
    .String() to kingpin) and its .Envar(); plus kingpin's own --help."""
    kingpin_view = [
        (name, "string" if kind == "list" else kind, env)
        for name, kind, env in table_rows()
        if name not in KINGPINS_OWN
    ]
    assert kingpin_view == flags_go_rows()
    assert {name for name, *_ in table_rows()} - {name for name, *_ in flags_go_rows()} == {"help"}


def test_the_table_lands_at_usr_lib_kubesolo_os_in_both_flavours():
    """Both: it is the OS's tree, which the test layer only adds to."""
    rootfs = Rootfs()
    add_os_tree(rootfs)
    entry = rootfs.entries["usr/lib/kubesolo-os/kubesolo-flags"]
    assert entry.data == kubesolo_flags.TABLE.read_bytes()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("debug boolean -\n", "line 1"),
        ("debug bool\n", "line 1"),
        ("# ok\ndebug bool -\ndebug string -\n", "line 3"),
    ],
)
def test_a_bad_table_line_is_refused(text, problem):
    with pytest.raises(ValueError, match=problem):
        kubesolo_flags.parse_table(text)


def test_kingpins_long_help_is_read_flag_by_flag():
    """The recorded help: bools as --[no-]NAME, values as --NAME=NAME or
    --NAME="default", help wrapped below a long first column, a wrapped line
    that starts with --cpu-manager-policy=static (not a flag), envars last."""
    listed = kubesolo_flags.parse_help(HELP_LONG.read_text())
    assert listed == {
        name: Flag(name, "bool" if kind == "bool" else "value", env)
        for name, kind, env in table_rows()
    }
    assert kubesolo_flags.differences(kubesolo_flags.load_table(), listed) == []


def test_an_older_kingpins_help_is_read_without_envars():
    listed = kubesolo_flags.parse_help(HELP_LONG_OLD.read_text())
    assert {f.envvar for f in listed.values()} == {None}
    assert kubesolo_flags.differences(kubesolo_flags.load_table(), listed) == []


def test_only_the_flags_section_counts():
    text = "log: --debug on\nusage: x [<flags>]\n\nFlags:\n  --[no-]a  A.\n\nArgs:\n  --b=B  no\n"
    assert kubesolo_flags.parse_help(text) == {"a": Flag("a", "bool", None)}


TABLE_AB = {"a": Flag("a", "bool", None), "b": Flag("b", "int", None)}
A, B = Flag("a", "bool", None), Flag("b", "value", None)


@pytest.mark.parametrize(
    ("listed", "found"),
    [
        ([A, B], []),
        ([A], ["--b is gone"]),
        ([A, B, Flag("c", "bool", None)], ["--c is new"]),
        ([Flag("a", "value", None), B], ["--a takes a value (the table: bool)"]),
        ([A, Flag("b", "bool", None)], ["--b takes no value (the table: int)"]),
        ([A, Flag("b", "value", None, repeatable=True)], ["--b is repeatable"]),
        ([Flag("a", "bool", "KUBESOLO_A"), B], ["--a reads $KUBESOLO_A (the table: no variable)"]),
    ],
)
def test_differences_name_each_flag(listed, found):
    by_name = {flag.name: flag for flag in listed}
    assert kubesolo_flags.differences(TABLE_AB, by_name) == found


def test_the_probe_runs_without_the_flags_own_variables():
    env = kubesolo_flags.probe_env(
        kubesolo_flags.load_table(), {"KUBESOLO_DEBUG": "x", "PATH": "/bin", "KUBESOLO_X": "1"}
    )
    assert env == {"PATH": "/bin", "KUBESOLO_X": "1"}


# ---- the check on a binary: the stand-in is a KubeSolo whose --help-long is the table's


def standin_copy(tmp_path: Path, edit) -> tuple[bytes, dict[str, str]]:
    """The stand-in's bytes and an environment in which it reads a copy of
    the table changed by `edit` (lines -> lines)."""
    lines = kubesolo_flags.TABLE.read_text().splitlines()
    copied = tmp_path / "kubesolo-flags"
    copied.write_text("\n".join(edit(lines)) + "\n")
    return STANDIN.read_bytes(), {**os.environ, "KUBESOLO_FLAGS_TABLE": str(copied)}


def test_the_standin_as_the_binary_passes(tmp_path):
    data, env = standin_copy(tmp_path, lambda lines: lines)
    kubesolo_flags.check_binary("standin", data, env=env)


def with_wasm(lines):
    return [*lines, "wasm bool KUBESOLO_WASM"]


def without_pprof_server(lines):
    return [line for line in lines if not line.startswith("pprof-server ")]


def with_debug_a_string(lines):
    return [line.replace("bool", "string") if line.startswith("debug ") else line for line in lines]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (with_wasm, "--wasm is new"),
        (without_pprof_server, "--pprof-server is gone"),
        (with_debug_a_string, "--debug takes a value (the table: bool)"),
    ],
)
def test_a_binary_the_table_does_not_describe_is_refused_in_one_line(tmp_path, edit, named):
    data, env = standin_copy(tmp_path, edit)
    with pytest.raises(UserError) as refused:
        kubesolo_flags.check_binary("kubesolo-next", data, env=env)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("--kubesolo-bin kubesolo-next: its flags are not the ones ")
    assert f"({named})" in message and kubesolo_flags.TABLE_IN_REPO in message


@pytest.mark.parametrize(
    ("script", "said"),
    [("#!/bin/sh\nexit 1\n", "did not run here"), ("#!/bin/sh\necho v1.2.3\n", "listed no flags")],
)
def test_a_binary_without_kingpins_help_is_refused(script, said):
    with pytest.raises(UserError, match=said):
        kubesolo_flags.check_binary("x", script.encode())
