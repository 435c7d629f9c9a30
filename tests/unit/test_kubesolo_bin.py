"""Recognising a KubeSolo binary or release tarball, refusing anything else."""

import io
import tarfile

import pytest

from harness.build import kubesolo_bin
from harness.errors import UserError

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + b"\x3e\x00" + b"\0" * 100


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("kubesolo-v1.2.2-linux-amd64.tar.gz", "v1.2.2"),
        ("kubesolo-v1.2.2-linux-amd64-musl-offline.tar.gz", "v1.2.2"),
        ("kubesolo-v1.2.2-linux-amd64-offline.tar.gz", "v1.2.2"),
        ("kubesolo-v1.2.2-linux-arm64.tar.gz", None),
        ("kubesolo.tar.gz", None),
    ],
)
def test_release_asset_names(name, version):
    assert kubesolo_bin.tarball_version(name) == version


def make_tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_release_tarball_yields_its_binary(tmp_path):
    path = tmp_path / "kubesolo-v1.2.2-linux-amd64-musl-offline.tar.gz"
    make_tarball(path, {"kubesolo": ELF})
    loaded = kubesolo_bin.load(path)
    assert loaded.data == ELF
    assert loaded.version == "v1.2.2"


def test_a_bare_binary_is_accepted(tmp_path):
    path = tmp_path / "kubesolo"
    path.write_bytes(ELF)
    assert kubesolo_bin.load(path).data == ELF


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("kubesolo", b"#!/bin/sh\necho hi\n", "not an x86-64 kubesolo binary"),
        ("kubesolo-v1-linux-arm64.tar.gz", b"", "expected kubesolo-<version>"),
        ("kubesolo-v1.0.0-linux-amd64.tar.gz", b"not a tarball", "not a readable"),
    ],
)
def test_anything_else_is_refused_in_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as err:
        kubesolo_bin.load(path)
    assert "\n" not in str(err.value)


def test_a_tarball_without_kubesolo_is_refused(tmp_path):
    path = tmp_path / "kubesolo-v1.0.0-linux-amd64.tar.gz"
    make_tarball(path, {"README": b"x"})
    with pytest.raises(UserError, match="one file `kubesolo`"):
        kubesolo_bin.load(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        kubesolo_bin.load(tmp_path / "nope")
