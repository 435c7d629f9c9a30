"""Package resolution from apt-cache output, and the package table."""

from pathlib import Path

import pytest

from harness.build import debian
from harness.errors import UserError

REPO = Path(__file__).resolve().parents[2]

POLICY = """\
busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+deb12u1+b1
  Version table:
     1:1.35.0-4+deb12u1+b1 500
linux-image-6.1.0-56-amd64:
  Installed: (none)
  Candidate: 6.1.192-2
nothing-here:
  Installed: (none)
  Candidate: (none)
"""

DEPENDS = """\
linux-image-amd64
  Depends: linux-image-6.1.0-56-amd64
  Recommends: firmware-linux-free
"""


def test_candidate_versions_are_parsed():
    assert debian.parse_policy(POLICY) == {
        "busybox-static": "1:1.35.0-4+deb12u1+b1",
        "linux-image-6.1.0-56-amd64": "6.1.192-2",
    }


def test_the_kernel_metapackage_resolves_to_its_abi_package():
    depends = debian.parse_depends(DEPENDS)
    assert depends == ["linux-image-6.1.0-56-amd64"]
    assert debian.metapackage_target("linux-image-amd64", depends) == "linux-image-6.1.0-56-amd64"


def test_an_unresolvable_metapackage_is_a_clear_error():
    with pytest.raises(UserError, match="cannot resolve"):
        debian.metapackage_target("linux-image-amd64", ["libc6"])


def test_deb_file_names_escape_the_epoch():
    assert (
        debian.deb_filename("busybox-static", "1:1.35.0-4")
        == "busybox-static_1%3a1.35.0-4_amd64.deb"
    )


def test_the_package_table_adds_ctr_only_for_a_real_kubesolo():
    table = REPO / "build" / "packages.toml"
    standin = {s.name for s in debian.load_specs(table, real_kubesolo=False)}
    real = {s.name for s in debian.load_specs(table, real_kubesolo=True)}
    assert {"linux-image-amd64", "busybox-static", "isolinux", "iptables"} <= standin
    assert real - standin == {"containerd"}


def _memo_setup(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "Packages").write_text("one")
    monkeypatch.setattr(debian, "APT_STATE", (lists,))
    calls = []

    def resolve(specs):
        calls.append(specs)
        return [debian.ResolvedPackage(s, s.name, f"1.{len(calls)}") for s in specs]

    monkeypatch.setattr(debian, "resolve", resolve)
    specs = [debian.PackageSpec("busybox-static", "rootfs", ("bin/busybox",))]
    return lists, calls, specs


def test_apt_answers_are_remembered_while_apt_state_is_unchanged(tmp_path, monkeypatch):
    _, calls, specs = _memo_setup(tmp_path, monkeypatch)
    memo = tmp_path / "memo.json"
    first = debian.resolve_memoized(specs, memo)
    again = debian.resolve_memoized(specs, memo)
    assert again == first and len(calls) == 1


def test_apt_answers_are_asked_again_after_apt_get_update(tmp_path, monkeypatch):
    lists, calls, specs = _memo_setup(tmp_path, monkeypatch)
    memo = tmp_path / "memo.json"
    debian.resolve_memoized(specs, memo)
    (lists / "Packages").write_text("a newer list")
    assert debian.resolve_memoized(specs, memo)[0].version == "1.2"
    other = [debian.PackageSpec("isolinux", "iso", ("isolinux.bin",))]
    assert debian.resolve_memoized(other, memo)[0].package == "isolinux"
    assert len(calls) == 3


def test_a_damaged_memo_is_ignored(tmp_path, monkeypatch):
    _, calls, specs = _memo_setup(tmp_path, monkeypatch)
    memo = tmp_path / "memo.json"
    memo.write_text("{not json")
    assert debian.resolve_memoized(specs, memo)[0].version == "1.1"
    assert len(calls) == 1


APT_DEPENDS = """\
nginx
  Depends: libc6
  Depends: libssl3
  Depends: nginx-common
  Depends: nginx-common
libssl3
  PreDepends: libc6
iproute2
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
    debconf
  Depends: libbpf1
busybox-static
"""


def test_dependencies_of_several_packages_are_parsed_from_one_answer():
    assert debian.parse_dependencies(APT_DEPENDS) == {
        "nginx": ["libc6", "libssl3", "nginx-common"],  # each once
        "libssl3": ["libc6"],  # Pre-Depends count
        "iproute2": ["debconf", "libbpf1"],  # every alternative, no virtual package
        "busybox-static": [],
    }
