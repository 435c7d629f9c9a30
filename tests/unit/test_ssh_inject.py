"""inject-ssh's checks before it builds anything (docs/architecture.md "SSH"):
one public key line, never a private key; test images only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.artefact import Image
from harness.build.ssh import inject_ssh, public_key
from harness.dev.command import ssh_command
from harness.errors import UserError

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcD7c1Y5nS2vLjHx8pAqkS0pT3qM0C1tq7oFb0sR5aK me@host"


def test_a_public_key_line_is_taken(tmp_path):
    path = tmp_path / "id.pub"
    path.write_text(f"\n{KEY}\n")
    assert public_key(path) == KEY


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n", r"is a private key: give the public one"),
        ("", "not one OpenSSH public key line"),
        (f"{KEY}\n{KEY}\n", "not one OpenSSH public key line"),
        ("ssh-dss AAAAB3 x\n", "not one OpenSSH public key line"),
        ("ssh-ed25519\n", "not one OpenSSH public key line"),
    ],
)
def test_anything_else_is_one_line(tmp_path, text, message):
    path = tmp_path / "key"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        public_key(path)
    assert "\n" not in str(err.value)


def test_a_missing_key_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match="cannot read it"):
        public_key(tmp_path / "nope.pub")


def _image(directory: Path, flavour: str) -> Image:
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"flavour": flavour, "cache_key": "k"}))
    return Image(directory)


def test_a_release_image_never_gets_ssh(tmp_path):
    key = tmp_path / "id.pub"
    key.write_text(KEY)
    with pytest.raises(UserError, match="never a release"):
        inject_ssh(_image(tmp_path / "img", "release"), key, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_copy_goes_elsewhere(tmp_path):
    key = tmp_path / "id.pub"
    key.write_text(KEY)
    image = _image(tmp_path / "img", "test")
    with pytest.raises(UserError, match="another directory"):
        inject_ssh(image, key, tmp_path / "img")


def test_the_printed_command_names_the_private_key_and_port():
    assert ssh_command(Path("/k/id_ed25519.pub"), 40022) == (
        "ssh -i /k/id_ed25519 -p 40022 -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null root@127.0.0.1"
    )
