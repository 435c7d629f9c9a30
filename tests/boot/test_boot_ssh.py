"""SSH for debugging (docs/architecture.md "SSH"): an image made by
inject-ssh lets in its key, and only its key, over port 22 forwarded to
127.0.0.1, after stage 90 as before; a wrong key and a password are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from boot_guest import wait_for_kubesolo

from harness import guest
from harness.build.ssh import inject_ssh

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only("builds an image of its own")]

SSH_TIMEOUT = 120  # one login under TCG, the host key made at the first connection


def keypair(directory: Path, name: str) -> Path:
    """A new ed25519 key pair made by OpenSSH's ssh-keygen; the private key's path."""
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def ssh(port: int, *options: str, command: str = "true") -> subprocess.CompletedProcess[str]:
    """Debian's OpenSSH client, never asking anything (BatchMode)."""
    return subprocess.run(
        [
            "ssh", "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=60",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", *options, "root@127.0.0.1", command,
        ],
        capture_output=True, text=True, timeout=SSH_TIMEOUT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def ssh_node(kubesolo_image, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ssh")
    key = keypair(directory, "right")
    return inject_ssh(kubesolo_image, key.with_suffix(".pub"), directory / "image"), key


def test_the_key_logs_in_and_others_do_not(machine_factory, ssh_node, tmp_path):
    """docs/architecture.md "SSH": the right key runs a command as root after stage
    90 (KubeSolo, here the stand-in, runs); a wrong key is refused; the
    server offers no password login at all, and root has no password."""
    image, key = ssh_node
    vm = machine_factory(image=image, forwards=(22,))
    vm.start()
    wait_for_kubesolo(vm)
    port = vm.host_port(22)
    command = f"echo logged-in; id -u; cat {guest.KUBESOLO_PROC}/comm"
    good = ssh(port, "-i", str(key), command=command)
    assert good.returncode == 0, good.stderr
    assert good.stdout.split() == ["logged-in", "0", "kubesolo"]

    wrong = ssh(port, "-i", str(keypair(tmp_path, "wrong")))
    assert wrong.returncode == 255
    assert "Permission denied (publickey)" in wrong.stderr

    password = ssh(port, "-v", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1")
    assert password.returncode == 255
    offered = [line for line in password.stderr.splitlines() if "can continue:" in line]
    assert offered and all(line.endswith("can continue: publickey") for line in offered)
    # no password hash anywhere: passwd says "see shadow", and there is no shadow
    assert vm.succeed("grep ^root: /etc/passwd").split(":")[1] == "x"
    assert vm.execute("test -e /etc/shadow")[0] != 0
